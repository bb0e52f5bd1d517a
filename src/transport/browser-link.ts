/**
 * The payer's end of the WebSocket to a payee, in a page: a {@link PeerLink} over the browser's
 * `WebSocket` that behaves as the Node link (ws-client.ts) does:
 *
 * - **Reconnects** after any drop, with the same exponential backoff and jitter (reconnect.ts).
 * - **Queues while down** (up to `maxQueuedMessages`, dropping the oldest: a payment carries the
 *   channel's new total, so a later one supersedes it) and sends the queue, in order, as the next
 *   connection opens, before `onOpen` runs — where the payer resumes (`PayerClient.resume`).
 * - **Comes back with the network**: an `online` event retries at once instead of waiting out
 *   the backoff.
 *
 * What a page cannot do: see the payee's pings (the browser answers them itself) or the HTTP
 * status of a refused upgrade (the browser reports only "closed, 1006"). So there is no idle
 * timer (the browser's own TCP keepalive and the payee's ping timeout cut a dead connection) and
 * a failed attempt says only that it failed.
 */
import { encodeMessage, type Message } from '../protocol/messages.js';
import type { PeerLink } from './link.js';
import { backoffDelay, checkReconnect, DEFAULT_RECONNECT, LinkClosedError, positiveInteger, type ReconnectOptions } from './reconnect.js';
import { OfflineQueue } from './offline-queue.js';

/** The part of the WHATWG `WebSocket` this link uses (the browser's; in Node, `ws`'s class fits). */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(text: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface BrowserLinkOptions {
  /** Each text message from the payee (typically `payer.receive`). Binary frames are ignored. */
  onMessage(text: string): void;
  /** After every (re)connection, once the queued messages were sent: the moment to resume. */
  onOpen?(): void;
  /** When an open connection closes (not for failed attempts). */
  onClose?(event: { code: number; reason: string }): void;
  /** Default { minDelayMs: 250, maxDelayMs: 30_000 }; false: never reconnect. */
  readonly reconnect?: ReconnectOptions | false;
  /** Messages kept while disconnected; beyond it the oldest is dropped. Default 10,000. */
  readonly maxQueuedMessages?: number;
  /** Default: the global `WebSocket`. */
  readonly WebSocket?: WebSocketConstructor;
  readonly log?: (line: string) => void;
}

const OPEN = 1;
const CLOSE_NORMAL = 1000;

/**
 * Connects to the payee WebSocket at `url` (`ws://host:port/v1/ws`) and keeps it connected.
 * @throws TypeError if `url` is not a ws:// or wss:// URL, or there is no WebSocket.
 * @throws RangeError for invalid options.
 */
export function connectPayeeFromBrowser(url: string, options: BrowserLinkOptions): BrowserPeerLink {
  return new BrowserPeerLink(url, options);
}

export class BrowserPeerLink implements PeerLink {
  private ws: WebSocketLike | null = null;
  private readonly queue: OfflineQueue<string>;
  private attempt = 0;
  private stopped = false;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly reconnect: ReconnectOptions | false;
  private readonly Socket: WebSocketConstructor;
  private readonly online = (): void => {
    if (this.retryTimer === null || this.stopped) return;
    clearTimeout(this.retryTimer);
    this.open();
  };

  /** Prefer {@link connectPayeeFromBrowser}. @throws as it does. */
  constructor(
    private readonly url: string,
    private readonly options: BrowserLinkOptions,
  ) {
    if (!/^wss?:\/\//i.test(url) || !URL.canParse(url)) throw new TypeError(`not a ws:// or wss:// URL: ${url}`);
    const Socket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Socket) throw new TypeError('no WebSocket in this environment: pass options.WebSocket');
    this.Socket = Socket;
    this.reconnect = checkReconnect(options.reconnect ?? DEFAULT_RECONNECT);
    this.queue = new OfflineQueue(positiveInteger('maxQueuedMessages', options.maxQueuedMessages ?? 10_000), options.log);
    globalThis.addEventListener?.('online', this.online);
    this.open();
  }

  /** True while a connection is open. */
  get connected(): boolean {
    return this.ws?.readyState === OPEN;
  }

  /** Messages waiting for the next connection. */
  get queuedMessages(): number {
    return this.queue.length;
  }

  /** Messages dropped: the oldest when the queue overflowed, and any sent after the link closed. */
  get droppedMessages(): number {
    return this.queue.dropped;
  }

  /** Sends now if connected, else queues for the next connection; after `close()`, drops. */
  send(message: Message): void {
    if (this.stopped) {
      this.queue.dropped++;
      return;
    }
    const text = encodeMessage(message);
    if (this.ws?.readyState === OPEN && this.queue.length === 0) {
      this.ws.send(text);
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

  /** Stops reconnecting, drops queued messages and closes the connection. Idempotent. */
  close(): void {
    this.stop(new LinkClosedError());
    this.ws?.close(CLOSE_NORMAL, 'payer closing');
  }

  private open(): void {
    this.retryTimer = null;
    let opened = false;
    let ws: WebSocketLike;
    try {
      ws = new this.Socket(this.url);
    } catch (err) {
      // A page's CSP may refuse the URL: that will not change on retry.
      this.stop(new LinkClosedError(`cannot connect to ${this.url}: ${err instanceof Error ? err.message : String(err)}`));
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      opened = true;
      this.attempt = 0;
      // Queued messages first, in order: they were sent before anything onOpen will send.
      this.queue.flush((text) => ws.send(text));
      this.callback('onOpen', () => this.options.onOpen?.());
    };
    ws.onmessage = (event) => {
      if (typeof event.data !== 'string') {
        this.options.log?.('ignored a binary frame from the payee');
        return;
      }
      const text = event.data;
      this.callback('onMessage', () => this.options.onMessage(text));
    };
    ws.onerror = () => undefined; // always followed by close, where it is handled
    ws.onclose = (event) => {
      if (this.ws === ws) this.ws = null;
      if (opened) this.callback('onClose', () => this.options.onClose?.({ code: event.code, reason: event.reason }));
      if (this.stopped) return;
      if (this.reconnect === false) {
        this.stop(new LinkClosedError(opened ? `the payee link closed (${event.code}) and reconnecting is off` : `cannot connect to ${this.url}`));
        return;
      }
      const delay = backoffDelay(this.attempt++, this.reconnect);
      this.options.log?.(opened ? `payee link closed (${event.code}); reconnecting in ${Math.round(delay)} ms` : `cannot connect to ${this.url}; retrying in ${Math.round(delay)} ms`);
      this.retryTimer = setTimeout(() => this.open(), delay);
    };
  }

  /** Runs a caller's callback so that its throw is logged (or rethrown on its own), never lost. */
  private callback(name: string, run: () => void): void {
    try {
      run();
    } catch (err) {
      const log = this.options.log;
      if (log) log(`${name} threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      else queueMicrotask(() => {
        throw err;
      });
    }
  }

  private stop(reason: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    globalThis.removeEventListener?.('online', this.online);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.queue.fail(reason);
  }
}
