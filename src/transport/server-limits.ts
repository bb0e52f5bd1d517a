/**
 * The payee server's resource limits, their defaults, and their validation.
 *
 * Every limit bounds what one remote party can make the payee hold or do: sockets, memory for
 * unsent replies and unanswered messages, signature checks per second, and time spent on peers
 * that went silent. Defaults suit one payee process serving many payers directly; behind a
 * reverse proxy every payer shares the proxy's address, so raise `maxConnectionsPerAddress`.
 */

export interface ServerLimits {
  /**
   * WebSocket connections open at once, in total. A new connection beyond it evicts the oldest
   * unauthenticated one; only when every connection is a payer's does the upgrade get HTTP 503.
   * Default 1024.
   */
  readonly maxConnections: number;
  /**
   * Connections that have not yet proven to be a payer's (see `PeerLink.proven`: a verified
   * `auth`, a funding the node took) open at once. A new connection beyond it is still accepted, and the oldest
   * unauthenticated one is cut to make room: strangers holding idle sockets cannot keep a payer
   * from connecting long enough to authenticate (one round trip). Default 256 (or
   * `maxConnections` if lower).
   */
  readonly maxUnauthenticatedConnections: number;
  /**
   * Time (ms) a connection has, from its upgrade, to prove to be a payer's (see
   * `PeerLink.proven`); then it is closed with 1008. A payer that is opening a channel must have
   * its funding taken within it, or it is cut and reconnects (openings hold no state: it resumes
   * where it was). Default 10,000.
   */
  readonly authDeadlineMs: number;
  /**
   * Connections proven for one channel kept at once (an `auth`, or its funding): proving one
   * more closes the oldest of them (1008). Without it a payer with one cheap channel (even a
   * closed one) could authenticate every connection slot and lock every other payer out (found
   * from outside). Default 4: a payer reconnecting while its old socket lingers needs two.
   */
  readonly maxProvenConnectionsPerChannel: number;
  /** WebSocket connections open at once from one remote IP address. Beyond it: HTTP 429. Default 16. */
  readonly maxConnectionsPerAddress: number;
  /**
   * TCP sockets of any kind open at once from one address (an IPv4 address, an IPv6 /64: see
   * address-group.ts); the excess is closed at accept. Without it one address could hold every
   * socket `maxSockets` allows with idle HTTP connections, and no payer could connect (found
   * from outside). Default 128 (room for a NAT's many users). Behind a reverse proxy on the same
   * machine every client shares the proxy's address: raise it (and `maxConnectionsPerAddress`).
   */
  readonly maxSocketsPerAddress: number;
  /**
   * TCP sockets of any kind (plain HTTP and WebSocket), enforced by node:http, which drops the
   * excess at accept. Default 2 × `maxConnections` + 64, so HTTP probes still get through when
   * WebSockets are at their limit.
   */
  readonly maxSockets: number;
  /**
   * Sustained frames per second per connection (token bucket). A frame over the rate is not
   * processed; it is answered with `error` RATE_LIMITED (action `reject`). Default 20,000:
   * each payment costs the payee a signature check (~50 µs native), so one connection can take
   * about one core — a single payer streaming payments is the normal case.
   */
  readonly messagesPerSecond: number;
  /** Frames a connection may send at once after a quiet period (the bucket's size). Default 40,000. */
  readonly messageBurst: number;
  /**
   * Opening messages (hello, refund-request, funding) per second from a connection that has not
   * proven to be a payer's; past it each is answered RATE_LIMITED, unprocessed. Each costs the
   * payee a key derivation and MAC (~0.1 ms) and, for a funding, transaction checks and a
   * broadcast; a payer opens a channel with two or three of them. Default 20.
   */
  readonly openingMessagesPerSecond: number;
  /** Opening messages an unproven connection may send at once (the bucket's size). Default 40. */
  readonly openingMessageBurst: number;
  /**
   * Opening messages per second from a connection proven to be a payer's. Bounded too: proof
   * comes cheap (any channel, even a closed one, or one funding the node took), and each funding
   * is a broadcast to the node that the tip poll and the closer then queue behind (found from
   * outside). Default 200: a payer opening channels back to back needs two or three per channel.
   */
  readonly provenOpeningMessagesPerSecond: number;
  /** Opening messages a proven connection may send at once. Default 400. */
  readonly provenOpeningMessageBurst: number;
  /**
   * Frames of one connection being processed at once (pipelining depth). At the limit the
   * server stops reading that socket until replies catch up, so memory for pending messages is
   * bounded and TCP pushes back on the payer. Default 1024.
   */
  readonly maxInFlightMessages: number;
  /**
   * Bytes queued for a connection but not yet written to the network. Above it the server stops
   * reading that socket (a payer that does not read its replies cannot make the payee buffer
   * them without bound), and reads again when it falls to `lowWaterMarkBytes`. Default 1 MiB.
   */
  readonly highWaterMarkBytes: number;
  /** See `highWaterMarkBytes`. Default 256 KiB. */
  readonly lowWaterMarkBytes: number;
  /** A ping is sent this often, in ms. Default 20,000. */
  readonly pingIntervalMs: number;
  /**
   * A connection from which neither a frame nor a pong arrived for this long (ms) is closed with
   * 1001. A payer that answers pings is kept even if it sends nothing: it may pay later, and
   * `maxConnections` bounds how many such peers there are. Default 60,000.
   */
  readonly idleTimeoutMs: number;
  /**
   * Time (ms) for a client to send the headers of an HTTP request, including a WebSocket upgrade
   * request (node:http `headersTimeout`; checked every second). A body is bounded by idleness
   * instead (request-body.ts: 60 s without a byte), so a long upload is not cut. Default 10,000.
   */
  readonly handshakeTimeoutMs: number;
  /** How long `close()` waits for payers to answer the close handshake before cutting them. Default 2,000. */
  readonly closeGraceMs: number;
}

export const DEFAULT_MAX_CONNECTIONS = 1024;

/** The defaults documented on {@link ServerLimits}. */
export const DEFAULT_SERVER_LIMITS: ServerLimits = Object.freeze({
  maxConnections: DEFAULT_MAX_CONNECTIONS,
  maxUnauthenticatedConnections: 256,
  authDeadlineMs: 10_000,
  maxConnectionsPerAddress: 16,
  maxProvenConnectionsPerChannel: 4,
  maxSocketsPerAddress: 128,
  maxSockets: 2 * DEFAULT_MAX_CONNECTIONS + 64,
  // A payer streaming payments on one connection is the normal case: one verification costs
  // ~50 µs, so 20,000/s is about what one core can verify. Above it, RATE_LIMITED.
  messagesPerSecond: 20_000,
  messageBurst: 40_000,
  openingMessagesPerSecond: 20,
  openingMessageBurst: 40,
  provenOpeningMessagesPerSecond: 200,
  provenOpeningMessageBurst: 400,
  maxInFlightMessages: 1024,
  highWaterMarkBytes: 1024 * 1024,
  lowWaterMarkBytes: 256 * 1024,
  pingIntervalMs: 20_000,
  idleTimeoutMs: 60_000,
  handshakeTimeoutMs: 10_000,
  closeGraceMs: 2_000,
});

/**
 * Fills in defaults and checks every limit.
 * @throws TypeError for a key that is not a limit (a typo would otherwise be ignored).
 * @throws RangeError naming the first limit that is not a positive integer, or inconsistent
 *   (`lowWaterMarkBytes` above `highWaterMarkBytes`, a per-address or unauthenticated limit above the total,
 *   an idle timeout not longer than the ping interval, which would close healthy peers).
 */
export function serverLimits(overrides: Partial<ServerLimits> = {}): ServerLimits {
  for (const key of Object.keys(overrides)) {
    if (!Object.hasOwn(DEFAULT_SERVER_LIMITS, key)) throw new TypeError(`unknown server limit ${JSON.stringify(key)}`);
  }
  const maxConnections = overrides.maxConnections ?? DEFAULT_SERVER_LIMITS.maxConnections;
  const limits: ServerLimits = {
    ...DEFAULT_SERVER_LIMITS,
    maxSockets: 2 * maxConnections + 64,
    maxUnauthenticatedConnections: Math.min(DEFAULT_SERVER_LIMITS.maxUnauthenticatedConnections, maxConnections),
    ...withoutUndefined(overrides),
  };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || (value as number) < 1) throw new RangeError(`${name} must be a positive integer, got ${String(value)}`);
  }
  if (limits.maxConnectionsPerAddress > limits.maxConnections) throw new RangeError('maxConnectionsPerAddress must be ≤ maxConnections');
  if (limits.maxUnauthenticatedConnections > limits.maxConnections) throw new RangeError('maxUnauthenticatedConnections must be ≤ maxConnections');
  if (limits.maxSockets < limits.maxConnections) throw new RangeError('maxSockets must be ≥ maxConnections');
  if (limits.maxSocketsPerAddress < limits.maxConnectionsPerAddress) throw new RangeError('maxSocketsPerAddress must be ≥ maxConnectionsPerAddress');
  if (limits.lowWaterMarkBytes > limits.highWaterMarkBytes) throw new RangeError('lowWaterMarkBytes must be ≤ highWaterMarkBytes');
  if (limits.idleTimeoutMs <= limits.pingIntervalMs) {
    throw new RangeError('idleTimeoutMs must exceed pingIntervalMs, or a peer could be closed before it had a chance to answer a ping');
  }
  return Object.freeze(limits);
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
