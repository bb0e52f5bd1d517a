/**
 * One payer's WebSocket on the payee server: frames in, the service's replies out.
 *
 * - **Pipelined, in order.** Each text frame is decoded here, once, from its bytes as it arrives
 *   (a payment by the codec's byte path, wire-bytes.ts; acks go out as bytes too), and handed to
 *   `service.handle` in arrival order, without waiting for the previous one's reply; the service
 *   serializes per channel. Frames being processed are bounded by `maxInFlightMessages`.
 * - **Backpressure both ways.** Reading stops (the socket is paused, so TCP pushes back on the
 *   payer) while more than `highWaterMarkBytes` of replies wait to be written, or while
 *   `maxInFlightMessages` frames are being processed; it restarts when replies drain below
 *   `lowWaterMarkBytes` and processing catches up. Frames already read when reading stops are
 *   still processed (at most one socket read, 64 KiB), so the bounds are approximate by that much.
 * - **Refusals are protocol errors.** A frame over the rate limit gets `error` RATE_LIMITED, a
 *   binary frame `error` MALFORMED_MESSAGE, a frame that does not decode the codec's error (through
 *   the one error mapping, error-reply.ts); none reaches the service. Oversized frames are
 *   refused by `ws` itself (close 1009), invalid UTF-8 too (close 1007).
 * - **Liveness.** A ping every `pingIntervalMs`; a peer silent (no frame, no pong) for
 *   `idleTimeoutMs` is closed with 1001, and cut if it does not answer the close in `closeGraceMs`.
 * - **Strangers until proven.** The first frame on every connection is a `challenge` (32 random
 *   bytes, the link's `challenge`), which a payer signs to authenticate for its channels
 *   (src/protocol/auth.ts). A connection the service has not called `proven` on (see
 *   PeerLink.proven: a verified `auth`, a funding the node took) within `authDeadlineMs` is closed
 *   with 1008: a stranger's idle socket holds a slot of the unauthenticated budget for that long
 *   at most (payee-server.ts). Until then its opening messages have a small budget of their own
 *   (`openingMessagesPerSecond`, PeerLink.admitOpening): each costs the service real work.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { WebSocket, type RawData } from 'ws';
import { SETTLED } from '../driver/effect-runner.js';
import { CHALLENGE_BYTES } from '../protocol/auth.js';
import { errorMessage, msg, type Message } from '../protocol/messages.js';
import { decodeMessageBytes, WireIds } from '../protocol/wire-bytes.js';
import { errorReply } from './error-reply.js';
import { FrameSlab, TEXT_FRAME } from './frame-slab.js';
import type { PeerLink } from './link.js';
import type { PayeeMetrics } from './metrics.js';
import { PaymentLatency } from './payment-latency.js';
import type { ServerLimits } from './server-limits.js';
import { FrameCorker } from './cork.js';
import { TokenBucket } from './token-bucket.js';

/** What a connection needs from the payee service: the frames it read, decoded. */
export interface MessageHandler {
  /**
   * Handles one decoded wire message and answers on `link`; never rejects (see
   * PayeeService.handle). Which service a message is for is decided on its type (see
   * app/duplex-routes.ts), never by reading its text again.
   */
  handle(message: Message, link: PeerLink): Promise<void>;
}

export interface PayeeConnectionOptions {
  readonly service: MessageHandler;
  readonly limits: ServerLimits;
  readonly metrics: PayeeMetrics;
  /** The remote address, given to the service as the link's `peer` (per-peer limits). */
  readonly peer?: string;
  readonly log?: (line: string) => void;
  /**
   * Told when the service calls the link's `proven`: once with `first` true (the connection is a
   * payer's now), and for each channel it proves this connection for (see PeerLink.proven).
   */
  readonly onProven?: (channel: string | undefined, first: boolean) => void;
}

/** Frames handed to the service per event-loop turn: ~2.4 ms of verification at most. */
const FRAMES_PER_TURN = 32;

/** WebSocket close codes this server uses (RFC 6455 §7.4.1). */
export const CLOSE_GOING_AWAY = 1001;
/** Policy violation: the connection did not authenticate (or start an opening) in time. */
export const CLOSE_POLICY = 1008;

export class PayeeConnection {
  /** The link the service answers on: replies go out on this socket, or are dropped once it closed. */
  readonly link: PeerLink;
  private readonly bucket: TokenBucket;
  /** Opening messages of an unproven connection (see ServerLimits.openingMessagesPerSecond). */
  private readonly openingBucket: TokenBucket;
  /** Opening messages once proven (ServerLimits.provenOpeningMessagesPerSecond); made when proven. */
  private provenOpeningBucket: TokenBucket | null = null;
  private readonly corker: FrameCorker;
  /** Frames read but not yet handed to the service (see drainPending), decoded or refused. */
  private readonly pending: (Message | Error)[] = [];
  /** Channel ids of this connection's frames, interned (a payment does not allocate its id). */
  /**
   * Bounded small: a stranger chooses the ids it sends, before the service has looked at them; a
   * payer's connection pays a few channels (the bench's, 125).
   */
  private readonly ids = new WireIds(256);
  /** This connection's own frames (a shared slab would let one stalled reader pin everyone's). */
  private readonly frames = new FrameSlab();
  /** Where payments' acks are encoded (bytes, no string per ack). */
  private draining = false;
  private readonly latency: PaymentLatency;
  private lastHeardMs = performance.now();
  private inFlight = 0;
  private backpressured = false;
  private readonly pingTimer: NodeJS.Timeout;
  private idleTimer: NodeJS.Timeout | null = null;
  private killTimer: NodeJS.Timeout | null = null;
  private authTimer: NodeJS.Timeout | null;
  private provenAt: number | null = null;
  /** Resolves when the socket is closed (whichever side closed it). */
  readonly closed: Promise<void>;

  constructor(
    private readonly ws: WebSocket,
    private readonly options: PayeeConnectionOptions,
  ) {
    const { limits } = options;
    const challenge = new Uint8Array(randomBytes(CHALLENGE_BYTES));
    this.link = {
      send: (message) => this.send(message),
      peer: options.peer,
      isOpen: () => ws.readyState === WebSocket.OPEN,
      challenge,
      proven: (channel) => this.markProven(channel),
      admitOpening: () => (this.provenOpeningBucket ?? this.openingBucket).take(performance.now()),
      close: () => void this.close(CLOSE_GOING_AWAY, 'channel served elsewhere: reconnect'),
    };
    this.corker = new FrameCorker(ws);
    this.bucket = new TokenBucket(limits.messagesPerSecond, limits.messageBurst, performance.now());
    this.openingBucket = new TokenBucket(limits.openingMessagesPerSecond, limits.openingMessageBurst, performance.now());
    this.latency = new PaymentLatency(limits.maxInFlightMessages * 2);
    this.closed = new Promise((resolve) => ws.once('close', () => resolve()));
    void this.closed.then(() => this.dispose());
    ws.on('message', (data, isBinary) => this.onFrame(data, isBinary));
    ws.on('pong', () => (this.lastHeardMs = performance.now()));
    // ws closes the socket after an error (1009 oversized, 1007 bad UTF-8, ECONNRESET); only log.
    ws.on('error', (err) => this.options.log?.(`websocket error: ${err.message}`));
    this.pingTimer = setInterval(() => {
      if (ws.readyState === WebSocket.OPEN) ws.ping();
    }, limits.pingIntervalMs);
    this.scheduleIdleCheck(limits.idleTimeoutMs);
    this.authTimer = setTimeout(() => {
      this.authTimer = null;
      if (this.provenAt === null) void this.close(CLOSE_POLICY, 'not authenticated in time');
    }, limits.authDeadlineMs);
    this.send(msg('challenge', { challenge }));
  }

  /** Whether the service saw this peer prove it is a payer (see PeerLink.proven). */
  get proven(): boolean {
    return this.provenAt !== null;
  }

  private markProven(channel: string | undefined): void {
    if (this.provenAt !== null) {
      this.options.onProven?.(channel, false);
      return;
    }
    this.provenAt = performance.now();
    this.provenOpeningBucket = new TokenBucket(this.options.limits.provenOpeningMessagesPerSecond, this.options.limits.provenOpeningMessageBurst, this.provenAt);
    if (this.authTimer) clearTimeout(this.authTimer);
    this.authTimer = null;
    this.options.onProven?.(channel, true);
  }

  /** Ends the connection because newer ones of its channel's payer took its place. */
  displace(): void {
    void this.close(CLOSE_POLICY, 'newer connections of this channel took its place');
  }

  /** Cuts the connection at once (no close handshake): for strangers evicted to make room. */
  terminate(): void {
    this.ws.terminate();
  }

  /** Frames being processed by the service right now. */
  get inFlightMessages(): number {
    return this.inFlight;
  }

  /**
   * Starts the close handshake with `code`; if the peer does not answer within `closeGraceMs`
   * the socket is destroyed. Resolves when it is closed.
   */
  close(code: number, reason: string): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, reason);
    this.killTimer ??= setTimeout(() => this.ws.terminate(), this.options.limits.closeGraceMs);
    return this.closed;
  }

  private onFrame(data: RawData, isBinary: boolean): void {
    const now = performance.now();
    this.lastHeardMs = now;
    if (!this.bucket.take(now)) {
      this.send(errorMessage('RATE_LIMITED', `more than ${this.options.limits.messagesPerSecond} messages per second; this one was not processed`, 'reject'));
      return;
    }
    if (isBinary) {
      this.send(errorMessage('MALFORMED_MESSAGE', 'binary frames are not part of the protocol: send each message as one text frame', 'reject'));
      return;
    }
    // Decoded as it arrives (a payment by the codec's byte path, wire-bytes.ts), so that the
    // latency timer starts at the frame; a frame that does not decode is answered in its turn.
    let message: Message | Error;
    try {
      message = decodeMessageBytes(rawBytes(data), this.ids);
      if (message.type === 'payment') this.latency.frameIn(message.channelId, message.totalSat, now);
    } catch (err) {
      message = err instanceof Error ? err : new Error(String(err));
    }
    this.inFlight++;
    this.updateReading();
    // While draining, frames wait their turn behind the queued ones (order is kept).
    if (!this.draining && this.handedThisTurn < FRAMES_PER_TURN) {
      // A short burst goes to the service at once; a long one is spread over turns.
      if (this.handedThisTurn === 0) setImmediate(() => (this.handedThisTurn = 0));
      this.handedThisTurn++;
      this.handOver(message);
      return;
    }
    this.pending.push(message);
    if (this.draining) return;
    this.draining = true;
    setImmediate(this.drainPending);
  }

  /** Frames handed to the service in the current turn (reset on the next turn). */
  private handedThisTurn = 0;

  private handOver(message: Message | Error): void {
    if (message instanceof Error) {
      // Refused at the boundary: the service never sees what it cannot trust.
      this.send(errorReply(message, undefined, this.options.log));
      this.onHandled();
      return;
    }
    let handled: Promise<void>;
    try {
      handled = this.options.service.handle(message, this.link);
    } catch (err) {
      handled = Promise.reject(err);
    }
    // A message stepped at once (every payment; its reply waits for the store in the service)
    // comes back as the settled promise: done now, without a then() and its promise (Node's
    // queueMicrotask costs more still: an async resource and a bound function per call).
    if (handled === SETTLED) this.onHandled();
    else handled.then(this.onHandled, this.onHandleFailed); // bound callbacks, one derived promise
  }

  private readonly onHandled = (): void => {
    this.inFlight--;
    this.updateReading();
  };

  private readonly onHandleFailed = (err: unknown): void => {
    this.options.log?.(`service.handle failed (it should not): ${String(err)}`);
    this.onHandled();
  };

  /**
   * Hands queued frames to the service, at most FRAMES_PER_TURN per event-loop turn. One socket
   * read can carry hundreds of frames; verifying them all in one turn (75 µs each) would hold
   * back the store's commit and every acknowledgement behind them for tens of milliseconds.
   */
  private readonly drainPending = (): void => {
    for (const message of this.pending.splice(0, FRAMES_PER_TURN)) this.handOver(message);
    if (this.pending.length > 0) setImmediate(this.drainPending);
    else this.draining = false;
  };

  private send(message: Message): void {
    if (this.ws.readyState !== WebSocket.OPEN) return; // PeerLink contract: a closed link drops
    if (message.type === 'payment-ack') {
      const seconds = this.latency.ackOut(message.channelId, message.totalSat, performance.now());
      if (seconds !== undefined) this.options.metrics.paymentLatency.observe(seconds);
    } else if (message.type === 'error') {
      this.options.metrics.rejected.inc(1, { code: message.code });
    }
    this.corker.beforeSend();
    this.ws.send(this.frames.wireFrame(message), TEXT_FRAME, this.afterWrite);
    if (!this.backpressured && this.ws.bufferedAmount > this.options.limits.highWaterMarkBytes) {
      this.backpressured = true;
      this.updateReading();
    }
  }

  /** Called by ws once each reply is written to the socket (or failed because it closed). */
  private readonly afterWrite = (): void => {
    if (this.backpressured && this.ws.bufferedAmount <= this.options.limits.lowWaterMarkBytes) {
      this.backpressured = false;
      this.updateReading();
    }
  };

  private updateReading(): void {
    const stop = this.backpressured || this.inFlight >= this.options.limits.maxInFlightMessages;
    if (stop && !this.ws.isPaused) this.ws.pause();
    else if (!stop && this.ws.isPaused) this.ws.resume();
  }

  // One timer re-armed lazily, rather than reset on every frame (thousands per second).
  private scheduleIdleCheck(delayMs: number): void {
    this.idleTimer = setTimeout(() => {
      // While frames are being processed the peer is waiting on us, not silent.
      if (this.inFlight > 0) this.lastHeardMs = performance.now();
      const quietMs = performance.now() - this.lastHeardMs;
      const idleTimeoutMs = this.options.limits.idleTimeoutMs;
      if (quietMs >= idleTimeoutMs) void this.close(CLOSE_GOING_AWAY, 'idle timeout');
      else this.scheduleIdleCheck(idleTimeoutMs - quietMs);
    }, delayMs);
  }

  private dispose(): void {
    clearInterval(this.pingTimer);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.killTimer) clearTimeout(this.killTimer);
    if (this.authTimer) clearTimeout(this.authTimer);
  }
}

/** A text frame's bytes (ws checked they are UTF-8). */
function rawBytes(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
