/**
 * The payee's network face: one node:http server carrying the payer WebSocket at `/v1/ws` and
 * the plain-HTTP routes of ./http-routes.ts.
 *
 * Connection limits are checked on the upgrade request, before the WebSocket handshake, so a
 * refused client costs an HTTP error and nothing else (503 TOO_MANY_CONNECTIONS, 429
 * TOO_MANY_CONNECTIONS_FROM_ADDRESS; 404 for an upgrade on any other path). Everything a
 * connection does after that is ./payee-connection.ts. Limits and their defaults are
 * ./server-limits.ts.
 *
 * Two budgets share `maxConnections`: connections that proved to be a payer's (see
 * `PeerLink.proven`) and strangers (not yet), at most `maxUnauthenticatedConnections`. When
 * either the stranger budget or the total is full, a new connection still gets in, and the
 * oldest stranger is cut to make room: so strangers' idle sockets never keep a payer from
 * connecting and authenticating, and a stranger keeps its slot at most `authDeadlineMs` anyway.
 * Only when every connection is a payer's is an upgrade refused with 503.
 *
 * `ws` runs without its own HTTP server (`noServer`) so the HTTP routes, including routes the
 * application adds later (`extraRoutes`), share the port; without per-message compression, which
 * costs CPU and memory per connection and buys little on ~300-byte messages.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { MAX_MESSAGE_BYTES } from '../protocol/messages.js';
import { refuseUpgrade } from './http-replies.js';
import type { CorsPolicy } from './cors.js';
import { boundBodyIdleness } from './request-body.js';
import { pathOf, payeeRequestHandler, type ChannelDirectory, type ExtraRoutes } from './http-routes.js';
import { PayeeMetrics } from './metrics.js';
import { CLOSE_GOING_AWAY, PayeeConnection, type MessageHandler } from './payee-connection.js';
import { serverLimits, type ServerLimits } from './server-limits.js';
import { addressGroup } from './address-group.js';
import { clientAddress, isLoopback } from './client-address.js';

/** The path of the payer WebSocket. */
export const PAYEE_WS_PATH = '/v1/ws';

/**
 * Takes an upgrade request on another path than the payer WebSocket's (e.g. the proxy's
 * WebSockets); returns true if it took the socket, false to let the server answer 404.
 */
export type UpgradeRoutes = (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;

/** What the server needs from the payee service (PayeeService has all of it). */
export type PayeeEndpoint = MessageHandler & ChannelDirectory;

export interface PayeeServerOptions {
  readonly service: PayeeEndpoint;
  /** Default 127.0.0.1: listening on all interfaces is a decision to make explicitly. */
  readonly host?: string;
  /** Default 0: a free port (read it from `url`). */
  readonly port?: number;
  /** `GET /readyz` answers 200 when this resolves true; default: ready once listening. */
  readonly ready?: () => Promise<boolean> | boolean;
  /** Application routes, tried after the built-in ones and before the 404. */
  readonly extraRoutes?: ExtraRoutes;
  /** CORS for pages on other origins (see http-routes.ts). Default none. */
  readonly cors?: CorsPolicy;
  /** Application upgrades on other paths than {@link PAYEE_WS_PATH}; without it they get 404. */
  readonly upgradeRoutes?: UpgradeRoutes;
  /**
   * Default: a fresh PayeeMetrics. Pass the one whose `onPayment` the service was given, or
   * `paychan_payments_total` and `paychan_payment_sats_total` stay at 0.
   */
  readonly metrics?: PayeeMetrics;
  /** Overrides of {@link ServerLimits}' defaults. */
  readonly limits?: Partial<ServerLimits>;
  /**
   * A reverse proxy on this machine (a TLS terminator) forwards the clients: the per-address
   * limits count a loopback socket's client by its `X-Forwarded-For` (client-address.ts), and a
   * loopback socket is capped per address under the client of its first request. Default false.
   */
  readonly trustProxy?: boolean;
  readonly log?: (line: string) => void;
}

export interface PayeeServer {
  /** `http://host:port` */
  readonly url: string;
  /** `ws://host:port/v1/ws` */
  readonly wsUrl: string;
  readonly limits: ServerLimits;
  readonly metrics: PayeeMetrics;
  /** Open WebSocket connections. */
  connections(): number;
  /**
   * Stops accepting, closes every WebSocket with 1001 (cutting those that do not answer within
   * `closeGraceMs`) and every HTTP connection, and resolves when the server is closed.
   * Idempotent. In-flight messages may still be answered into closed sockets (the replies are
   * dropped); the service's own state is not touched.
   */
  close(): Promise<void>;
}

/**
 * Starts the payee server and resolves once it listens.
 * @throws TypeError/RangeError for invalid limits (see {@link serverLimits}).
 * @throws Error from node:net if it cannot listen (e.g. EADDRINUSE), after releasing everything.
 */
export async function startPayeeServer(options: PayeeServerOptions): Promise<PayeeServer> {
  const limits = serverLimits(options.limits);
  const metrics = options.metrics ?? new PayeeMetrics();
  const host = options.host ?? '127.0.0.1';
  const { log, service } = options;
  const trustProxy = options.trustProxy ?? false;
  const open = new Set<PayeeConnection>();
  /** Connections counted against the budgets: open ones not evicted. */
  const members = new Set<PayeeConnection>();
  /** Members not yet proven to be a payer's, oldest first (a Set keeps insertion order). */
  const strangers = new Set<PayeeConnection>();
  const perAddress = new Map<string, number>();
  /** Proven connections by the channel they were proven for, oldest first. */
  const provenFor = new Map<string, PayeeConnection[]>();
  /** The channels each connection was proven for (to forget it when it closes). */
  const channelsOf = new Map<PayeeConnection, Set<string>>();
  const onProven = (connection: PayeeConnection, channel: string | undefined, first: boolean): void => {
    if (first) strangers.delete(connection);
    // A proof can come after its socket closed (a funding's broadcast and save take a while):
    // forget() ran already, so a closed connection must not enter the maps.
    if (channel === undefined || !open.has(connection)) return;
    let mine = channelsOf.get(connection);
    if (mine?.has(channel)) return;
    if (!mine) channelsOf.set(connection, (mine = new Set()));
    mine.add(channel);
    const list = provenFor.get(channel) ?? [];
    list.push(connection);
    provenFor.set(channel, list);
    // The oldest beyond the cap give way: the newest is the one its payer is using.
    while (list.length > limits.maxProvenConnectionsPerChannel) list.shift()!.displace();
  };
  const forget = (connection: PayeeConnection): void => {
    for (const channel of channelsOf.get(connection) ?? []) {
      const list = provenFor.get(channel)?.filter((c) => c !== connection) ?? [];
      if (list.length > 0) provenFor.set(channel, list);
      else provenFor.delete(channel);
    }
    channelsOf.delete(connection);
  };
  let closing: Promise<void> | null = null;

  metrics.observe({ channels: () => service.channelTypes(), connections: () => open.size });

  const server: Server = createServer({
    headersTimeout: limits.handshakeTimeoutMs,
    // Not the whole body: an upload streamed through the proxy may take longer (request-body.ts).
    requestTimeout: 0,
    // Node checks the two timeouts above on this period (default 30 s, too coarse for them).
    connectionsCheckingInterval: Math.min(1_000, limits.handshakeTimeoutMs),
  });
  server.maxConnections = limits.maxSockets;
  // Sockets of any kind per address group: one address must not hold every socket (see
  // ServerLimits.maxSocketsPerAddress). Counted at accept, before any byte is read; behind a
  // trusted local proxy (every socket loopback) counted per forwarded client at the socket's
  // first request or upgrade instead, before anything is routed.
  const socketsPerAddress = new Map<string, number>();
  /** Loopback sockets (trustProxy) already counted under the client of their first request. */
  const countedLoopback = new WeakSet<Socket>();
  let lastCapLogMs = -Infinity;
  /** Counts `socket` for `address`; false (and the socket destroyed) past the cap. */
  const countSocket = (socket: Socket, address: string): boolean => {
    const group = addressGroup(address);
    const count = (socketsPerAddress.get(group) ?? 0) + 1;
    if (count > limits.maxSocketsPerAddress) {
      socket.destroy();
      // Behind a reverse proxy this machine does not trust, every client is one address: say so, once a minute.
      const now = Date.now();
      if (now - lastCapLogMs > 60_000) {
        lastCapLogMs = now;
        log?.(`refused sockets from ${group}: more than maxSocketsPerAddress (${limits.maxSocketsPerAddress}) open from it`);
      }
      return false;
    }
    socketsPerAddress.set(group, count);
    socket.once('close', () => {
      const left = (socketsPerAddress.get(group) ?? 1) - 1;
      if (left > 0) socketsPerAddress.set(group, left);
      else socketsPerAddress.delete(group);
    });
    return true;
  };
  server.on('connection', (socket: Socket) => {
    if (trustProxy && isLoopback(socket.remoteAddress)) return; // counted at its first request
    countSocket(socket, socket.remoteAddress ?? '');
  });
  /** A trusted proxy's socket, counted under the client of its first request; false if refused. */
  const admitForwarded = (req: IncomingMessage): boolean => {
    const socket = req.socket as Socket;
    if (!trustProxy || countedLoopback.has(socket) || !isLoopback(socket.remoteAddress)) return true;
    countedLoopback.add(socket);
    return countSocket(socket, clientAddress(req, true));
  };
  const boundBody = boundBodyIdleness();
  const handleRequest = payeeRequestHandler({ service, metrics, ready: options.ready, extraRoutes: options.extraRoutes, cors: options.cors, log });
  server.on('request', (req, res) => {
    if (!admitForwarded(req)) return;
    boundBody(req);
    handleRequest(req, res);
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES, perMessageDeflate: false, clientTracking: false });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (closing) return refuseUpgrade(socket, 'TOO_MANY_CONNECTIONS', 'the payee is shutting down');
    if (!admitForwarded(req)) return;
    if (pathOf(req) !== PAYEE_WS_PATH && options.upgradeRoutes?.(req, socket, head)) return;
    if (pathOf(req) !== PAYEE_WS_PATH) return refuseUpgrade(socket, 'NOT_FOUND', `the payer WebSocket is at ${PAYEE_WS_PATH}`);
    const address = clientAddress(req, trustProxy);
    // Counted per IPv4 address, per IPv6 /64 (one host's usual share: address-group.ts).
    const group = addressGroup(address);
    if ((perAddress.get(group) ?? 0) >= limits.maxConnectionsPerAddress) return refuseUpgrade(socket, 'TOO_MANY_CONNECTIONS_FROM_ADDRESS');
    if (members.size >= limits.maxConnections || strangers.size >= limits.maxUnauthenticatedConnections) {
      const oldest = strangers.values().next();
      if (oldest.done) return refuseUpgrade(socket, 'TOO_MANY_CONNECTIONS');
      // Cut at once (no close handshake): its slot is needed now, and it never proved anything.
      strangers.delete(oldest.value);
      members.delete(oldest.value);
      oldest.value.terminate();
    }
    // Without verifyClient, ws completes (or refuses) the handshake synchronously, so the counts
    // checked above cannot be overtaken by another upgrade before the callback runs.
    wss.handleUpgrade(req, socket, head, (ws) => {
      const connection: PayeeConnection = new PayeeConnection(ws, { service, limits, metrics, log, peer: address, onProven: (channel, first) => onProven(connection, channel, first) });
      open.add(connection);
      members.add(connection);
      if (!connection.proven) strangers.add(connection);
      perAddress.set(group, (perAddress.get(group) ?? 0) + 1);
      void connection.closed.then(() => {
        open.delete(connection);
        members.delete(connection);
        strangers.delete(connection);
        forget(connection);
        const left = (perAddress.get(group) ?? 1) - 1;
        if (left > 0) perAddress.set(group, left);
        else perAddress.delete(group);
      });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((err: unknown) => {
    wss.close();
    server.close();
    throw err;
  });
  server.on('error', (err) => log?.(`http server error: ${err.message}`));

  const { port } = server.address() as AddressInfo;
  const authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;

  return {
    url: `http://${authority}`,
    wsUrl: `ws://${authority}${PAYEE_WS_PATH}`,
    limits,
    metrics,
    connections: () => open.size,
    close() {
      closing ??= (async () => {
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        await Promise.all([...open].map((c) => c.close(CLOSE_GOING_AWAY, 'payee shutting down')));
        server.closeAllConnections();
        wss.close();
        await serverClosed;
      })();
      return closing;
    },
  };
}

