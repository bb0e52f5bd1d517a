/**
 * The payer's end of the WebSocket to a payee: a {@link PeerLink} that stays up across drops.
 *
 * - **Reconnects** after any drop (and after a failed first attempt) with exponential backoff
 *   and jitter, so a payee restart is not met by every payer at the same instant.
 * - **Queues while down.** Messages sent while disconnected are kept (up to `maxQueuedMessages`)
 *   and sent, in order, as soon as the next connection opens, before `onOpen` runs.
 * - **Why resending is safe.** A payment carries the channel's new *total*, signed, not a delta:
 *   delivering one late, or twice, can never make the payer pay more than its newest total, and
 *   the payee acknowledges its newest payment again if it sees it twice. So when the queue is
 *   full the *oldest* message is dropped: a later payment supersedes an earlier one. (Dropping a
 *   handshake message instead would stall that channel's opening; the bound is far above what
 *   one opening sends.)
 * - **What it cannot know.** Messages written to a socket just before it dropped may be lost
 *   with it. The transport has no acknowledgements of its own; the payer resumes on `onOpen`
 *   (ask the payee for its view of the channel and resend the newest payment if needed).
 * - **Dead connections.** The payee pings every 20 s by default; if nothing (message or ping)
 *   arrives for `idleTimeoutMs`, the socket is cut and a new one opened.
 * - **A payee never reached.** With `connectTimeoutMs`, the link gives up when no connection
 *   has opened by then and `ready()` rejects with a {@link PayeeUnreachableError} saying why the
 *   last attempt failed (refused, DNS, TLS, or an HTTP answer such as 503 to the upgrade), so a
 *   command does not retry an unreachable payee forever. Once a connection has opened, drops
 *   are retried without a deadline: the channel exists and its payee is worth waiting for.
 * - **Several payee instances.** Given several URLs (instances sharing one store, docs/scale.md),
 *   every reconnection goes to the next one in turn: an instance that died, or was paused and
 *   went quiet, is left for the next, where the payer resumes its channel as after any drop.
 */
import { performance } from 'node:perf_hooks';
import { WebSocket, type RawData } from 'ws';
import { FrameCorker } from './cork.js';
import { FrameSlab, TEXT_FRAME } from './frame-slab.js';
import { MAX_MESSAGE_BYTES, type Message } from '../protocol/messages.js';
import type { PeerLink } from './link.js';
import { backoffDelay, checkReconnect, DEFAULT_RECONNECT, LinkClosedError, positiveInteger, type ReconnectOptions } from './reconnect.js';
import { OfflineQueue } from './offline-queue.js';

export { backoffDelay, LinkClosedError, type ReconnectOptions } from './reconnect.js';

export interface ConnectPayeeOptions {
  /** Each text message from the payee (typically `payer.receive`). Binary frames are ignored. */
  onMessage(text: string): void;
  /**
   * Each text message from the payee as its UTF-8 bytes (`ws` checked them), instead of
   * `onMessage`: for a payer that decodes them itself (protocol/wire-bytes.ts), without a string
   * per acknowledgement. The bytes are the caller's only during the call.
   */
  onFrame?(bytes: Buffer): void;
  /** After every (re)connection, once the queued messages were sent: the moment to resume. */
  onOpen?(): void;
  /** When an open connection closes (not for failed attempts), with the close code and reason. */
  onClose?(event: { code: number; reason: string }): void;
  /** Default { minDelayMs: 250, maxDelayMs: 30_000 }; false: never reconnect (the link stops at the first close). */
  readonly reconnect?: ReconnectOptions | false;
  /** Messages kept while disconnected; beyond it the oldest is dropped. Default 10,000. */
  readonly maxQueuedMessages?: number;
  /** Time allowed for the opening handshake, ms. Default 10,000. */
  readonly handshakeTimeoutMs?: number;
  /** Cut and reconnect when nothing arrived for this long, ms. Default 60,000 (3 payee pings). */
  readonly idleTimeoutMs?: number;
  /**
   * Give up when no connection has opened this long after the link was created, ms: the link
   * closes for good with a {@link PayeeUnreachableError}. Default: no deadline (retry forever).
   */
  readonly connectTimeoutMs?: number;
  readonly log?: (line: string) => void;
}

/** Why an attempt to connect failed. */
export type ConnectFailure =
  /** No HTTP answer: refused, DNS, TLS, reset, handshake timeout; `code` is Node's (ECONNREFUSED, ENOTFOUND…). */
  | { readonly type: 'network'; readonly code: string | null; readonly message: string }
  /** The server answered the upgrade with an HTTP status instead (429/503: the payee is busy). */
  | { readonly type: 'http'; readonly status: number; readonly statusText: string; readonly retryAfter: string | null };

/** One line for a {@link ConnectFailure}: `payee busy: HTTP 503 Service Unavailable`, `ECONNREFUSED: connect …`. */
export function describeConnectFailure(failure: ConnectFailure | null): string {
  if (!failure) return 'no answer';
  if (failure.type === 'http') {
    const status = `HTTP ${failure.status}${failure.statusText ? ` ${failure.statusText}` : ''}`;
    const retry = failure.retryAfter ? ` (Retry-After: ${failure.retryAfter})` : '';
    return failure.status === 429 || failure.status === 503 ? `payee busy: ${status}${retry}` : `the WebSocket upgrade was answered ${status}`;
  }
  return failure.code && !failure.message.includes(failure.code) ? `${failure.code}: ${failure.message}` : failure.message;
}

/** No connection to the payee opened before the deadline (or at all, with reconnecting off). */
export class PayeeUnreachableError extends LinkClosedError {
  /** PAYEE_BUSY when the payee answered 429/503, else PAYEE_UNREACHABLE. */
  readonly code: 'PAYEE_BUSY' | 'PAYEE_UNREACHABLE';
  constructor(
    readonly url: string,
    /** Why the last attempt failed (null: no attempt finished). */
    readonly failure: ConnectFailure | null,
    /** The deadline that passed, ms (null: reconnecting was off). */
    readonly afterMs: number | null,
  ) {
    const within = afterMs === null ? '' : ` within ${afterMs / 1000} s`;
    super(`cannot connect to ${url}${within}: ${describeConnectFailure(failure)}`);
    this.name = 'PayeeUnreachableError';
    this.code = failure?.type === 'http' && (failure.status === 429 || failure.status === 503) ? 'PAYEE_BUSY' : 'PAYEE_UNREACHABLE';
  }
}

const CLOSE_NORMAL = 1000;

/**
 * Connects to the payee WebSocket at `url` (`ws://host:port/v1/ws`), or to the first of several
 * instances' URLs (each reconnection tries the next), and keeps it connected.
 * Returns at once; `ready()` resolves when connected.
 * @throws RangeError for invalid options (reconnect delays, queue size, timeouts).
 * @throws TypeError if a URL is not a ws:// or wss:// URL, or none is given.
 */
export function connectPayee(url: string | readonly string[], options: ConnectPayeeOptions): WsPeerLink {
  return new WsPeerLink(url, options);
}

export class WsPeerLink implements PeerLink {
  private ws: WebSocket | null = null;
  private corker: FrameCorker | null = null;
  /** Messages waiting for the next connection, encoded (text, or a payment's bytes). */
  private readonly queue: OfflineQueue<string | Buffer>;
  /** This link's own frames (see FrameSlab: never shared between connections). */
  private readonly frames = new FrameSlab();
  private attempt = 0;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private lastHeardMs = 0;
  private readonly reconnect: ReconnectOptions | false;
  private readonly handshakeTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private everOpened = false;
  private failure: ConnectFailure | null = null;
  private connectTimer: NodeJS.Timeout | null = null;

  /** Prefer {@link connectPayee}. @throws as it does. */
  private readonly urls: readonly string[];
  private urlIndex = 0;

  constructor(
    urls: string | readonly string[],
    private readonly options: ConnectPayeeOptions,
  ) {
    this.urls = Object.freeze(typeof urls === 'string' ? [urls] : [...urls]);
    if (this.urls.length === 0) throw new TypeError('connectPayee: at least one URL');
    for (const url of this.urls) if (typeof url !== 'string' || !/^wss?:\/\//i.test(url) || !URL.canParse(url)) throw new TypeError(`not a ws:// or wss:// URL: ${String(url)}`);
    this.reconnect = checkReconnect(options.reconnect ?? DEFAULT_RECONNECT);
    this.queue = new OfflineQueue(positiveInteger('maxQueuedMessages', options.maxQueuedMessages ?? 10_000), options.log);
    this.handshakeTimeoutMs = positiveInteger('handshakeTimeoutMs', options.handshakeTimeoutMs ?? 10_000);
    this.idleTimeoutMs = positiveInteger('idleTimeoutMs', options.idleTimeoutMs ?? 60_000);
    if (options.connectTimeoutMs !== undefined) {
      const deadlineMs = positiveInteger('connectTimeoutMs', options.connectTimeoutMs);
      this.connectTimer = setTimeout(() => this.giveUp(deadlineMs), deadlineMs);
    }
    this.open();
  }

  /** The URL connected to, or tried next. */
  get url(): string {
    return this.urls[this.urlIndex]!;
  }

  /** True while a connection is open. */
  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /** Messages waiting for the next connection. */
  get queuedMessages(): number {
    return this.queue.length;
  }

  /** Why the newest failed attempt to connect failed (null if none failed since the last open). */
  get lastFailure(): ConnectFailure | null {
    return this.failure;
  }

  /** Messages dropped: the oldest ones when the queue overflowed, and any sent after the link closed. */
  get droppedMessages(): number {
    return this.queue.dropped;
  }

  /** Sends now if connected, else queues for the next connection; after `close()`, drops. */
  send(message: Message): void {
    if (this.stopped) {
      this.queue.dropped++;
      return;
    }
    const text = this.frames.wireFrame(message);
    if (this.ws?.readyState === WebSocket.OPEN && this.queue.length === 0) {
      this.corker?.beforeSend();
      this.ws.send(text, TEXT_FRAME);
      return;
    }
    this.queue.push(text);
  }

  /**
   * Resolves when a connection is open (now, or at the next (re)connection).
   * @throws LinkClosedError (rejects) if the link is or becomes closed for good first.
   */
  ready(): Promise<void> {
    return this.queue.ready(this.connected, this.stopped);
  }

  /**
   * Stops reconnecting, drops queued messages, and closes the connection (code 1000).
   * Resolves when the socket is closed. Idempotent.
   */
  async close(): Promise<void> {
    this.stop(new LinkClosedError());
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
    else ws.close(CLOSE_NORMAL, 'payer closing');
    // Do not wait forever for a payee that does not answer the close handshake.
    const cut = setTimeout(() => ws.terminate(), 2_000);
    await closed;
    clearTimeout(cut);
  }

  private open(): void {
    this.retryTimer = null;
    const ws = new WebSocket(this.url, { maxPayload: MAX_MESSAGE_BYTES, handshakeTimeout: this.handshakeTimeoutMs, perMessageDeflate: false });
    this.ws = ws;
    this.corker = new FrameCorker(ws);
    let opened = false;
    /** Why this attempt failed: the first thing that went wrong (an HTTP answer, or a socket error). */
    let failed: ConnectFailure | null = null;
    ws.on('open', () => {
      opened = true;
      this.everOpened = true;
      this.failure = null;
      if (this.connectTimer) clearTimeout(this.connectTimer);
      this.attempt = 0;
      this.heard();
      this.scheduleIdleCheck(this.idleTimeoutMs);
      // Queued messages first, in order: they were sent before anything onOpen will send.
      this.queue.flush((frame) => ws.send(frame, TEXT_FRAME));
      this.callback('onOpen', () => this.options.onOpen?.());
    });
    ws.on('unexpected-response', (_req, res) => {
      const retryAfter = res.headers['retry-after'];
      failed ??= { type: 'http', status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', retryAfter: typeof retryAfter === 'string' ? retryAfter : null };
      res.resume();
      ws.terminate();
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      this.heard();
      if (isBinary) {
        this.options.log?.('ignored a binary frame from the payee');
        return;
      }
      const bytes = Buffer.isBuffer(data) ? data : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]);
      // Not through callback(): no closure per frame on the payment path.
      try {
        if (this.options.onFrame) this.options.onFrame(bytes);
        else this.options.onMessage(bytes.toString('utf8'));
      } catch (err) {
        this.callbackThrew('onMessage', err);
      }
    });
    ws.on('ping', () => this.heard());
    ws.on('error', (err: Error & { code?: unknown }) => {
      if (!opened) {
        // Several addresses tried (localhost: ::1 and 127.0.0.1) fail as one AggregateError.
        const inner = err instanceof AggregateError ? (err.errors as (Error & { code?: unknown })[]) : [];
        const message = err.message || inner.map((e) => e.message).join('; ');
        failed ??= { type: 'network', code: typeof err.code === 'string' ? err.code : null, message };
        return;
      }
      this.options.log?.(`payee link: ${err.message}`);
    });
    ws.on('close', (code: number, reason: Buffer) => {
      if (this.ws === ws) this.ws = null;
      if (this.idleTimer) clearTimeout(this.idleTimer);
      if (opened) this.callback('onClose', () => this.options.onClose?.({ code, reason: reason.toString('utf8') }));
      else this.failure = failed;
      if (this.stopped) return;
      if (this.reconnect === false) {
        this.stop(opened || this.everOpened ? new LinkClosedError(`the payee link closed (${code}) and reconnecting is off`) : new PayeeUnreachableError(this.urls.join(' '), failed, null));
        return;
      }
      const delay = backoffDelay(this.attempt++, this.reconnect);
      const from = this.url;
      this.urlIndex = (this.urlIndex + 1) % this.urls.length; // the next instance, if several
      this.options.log?.(
        opened ? `payee link closed (${code}); reconnecting to ${this.url} in ${Math.round(delay)} ms` : `cannot connect to ${from}: ${describeConnectFailure(failed)}; retrying ${this.url} in ${Math.round(delay)} ms`,
      );
      this.retryTimer = setTimeout(() => this.open(), delay);
    });
  }

  /** The first connection's deadline passed: close for good, saying why the last attempt failed. */
  private giveUp(deadlineMs: number): void {
    if (this.everOpened || this.stopped) return;
    this.stop(new PayeeUnreachableError(this.urls.join(' '), this.failure, deadlineMs));
    if (this.ws?.readyState === WebSocket.CONNECTING) this.ws.terminate();
  }

  /**
   * Runs a caller's callback outside ws's event handling, so a throw cannot leave ws half-way
   * through a frame: it is logged if there is a log, else rethrown on its own (uncaught, like a
   * throw from any other event listener).
   */
  private callback(name: string, run: () => void): void {
    try {
      run();
    } catch (err) {
      this.callbackThrew(name, err);
    }
  }

  /** A caller's callback threw: logged if there is a log, else rethrown on its own (see callback). */
  private callbackThrew(name: string, err: unknown): void {
    const log = this.options.log;
    if (log) log(`${name} threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    else queueMicrotask(() => {
      throw err;
    });
  }

  private heard(): void {
    this.lastHeardMs = performance.now();
  }

  private scheduleIdleCheck(delayMs: number): void {
    this.idleTimer = setTimeout(() => {
      const ws = this.ws;
      if (!ws || ws.readyState !== WebSocket.OPEN) return;
      const quietMs = performance.now() - this.lastHeardMs;
      if (quietMs >= this.idleTimeoutMs) {
        this.options.log?.(`nothing from the payee for ${quietMs} ms; reconnecting`);
        ws.terminate();
      } else {
        this.scheduleIdleCheck(this.idleTimeoutMs - quietMs);
      }
    }, delayMs);
  }

  private stop(reason: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.queue.fail(reason);
  }
}
