/**
 * One hostile connection to the payee: a real WebSocket (`ws`) that sends a frame and waits for
 * what follows it — the first message back, the socket closing, or nothing within a timeout —
 * and reconnects whenever the payee closed it (oversized frames, invalid UTF-8).
 *
 * Frames are sent one at a time (lockstep), so each answer belongs to the frame before it; many
 * sockets run side by side for throughput.
 *
 * The payee greets every connection with a `challenge` first (src/protocol/auth.ts): a connection
 * is open here only once that arrived (it is kept in `challenge`, never taken for an answer). A
 * hostile connection never authenticates, so the payee closes it after its auth deadline
 * (10 s by default): a connection older than `maxAgeMs` is replaced before the next frame.
 */
import { WebSocket, type RawData } from 'ws';

export type Outcome =
  | { readonly kind: 'reply'; readonly text: string; readonly ms: number }
  | { readonly kind: 'closed'; readonly code: number; readonly ms: number }
  | { readonly kind: 'timeout'; readonly ms: number };

export interface FuzzSocketOptions {
  /** Source address on the loopback (127.0.0.2, ...), to be another peer. */
  readonly localAddress?: string;
  /** Replace the connection before a frame once it is this old (ms); default 4,000. */
  readonly maxAgeMs?: number;
}

/** The payee refused the WebSocket upgrade with an HTTP error. */
export class UpgradeRefusedError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`upgrade refused: HTTP ${status} ${body}`);
    this.name = 'UpgradeRefusedError';
  }
}

/**
 * Opens a WebSocket; rejects with {@link UpgradeRefusedError} if the server answers HTTP.
 * `onMessage` is attached before the handshake: the payee's first frame (its challenge) can
 * arrive with the handshake's response and be emitted before an awaiting caller could attach it.
 */
export function openWebSocket(url: string, options: FuzzSocketOptions = {}, onMessage?: (data: RawData) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 10_000, localAddress: options.localAddress });
    if (onMessage) ws.on('message', onMessage);
    ws.once('open', () => {
      ws.removeAllListeners('error');
      ws.on('error', () => undefined);
      resolve(ws);
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => reject(new UpgradeRefusedError(res.statusCode ?? 0, body)));
      res.on('error', () => reject(new UpgradeRefusedError(res.statusCode ?? 0, body)));
    });
    ws.once('error', reject);
  });
}

export class FuzzSocket {
  private ws: WebSocket | null = null;
  private waiter: ((o: Outcome) => void) | null = null;
  private sentAt = 0;
  /** Messages that arrived while no frame was waiting for an answer. */
  readonly unsolicited: string[] = [];
  /** Connections opened (the first one included). */
  connects = 0;
  /** The current connection's challenge. */
  challenge: Uint8Array | null = null;
  private openedAt = 0;

  constructor(
    private readonly url: string,
    private options: FuzzSocketOptions = {},
  ) {}

  /** Connects from `localAddress` from now on: the payee sees another peer. */
  async moveTo(localAddress: string): Promise<void> {
    await this.close();
    this.options = { ...this.options, localAddress };
  }

  private async ensureOpen(): Promise<WebSocket> {
    if (this.ws && this.ws.readyState === WebSocket.OPEN && performance.now() - this.openedAt < (this.options.maxAgeMs ?? 4_000)) return this.ws;
    if (this.ws) await this.close();
    let greeted: (() => void) | null = null;
    const challenge = new Promise<void>((resolve) => (greeted = resolve));
    this.challenge = null;
    const onMessage = (data: RawData) => {
      const text = Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]).toString('utf8');
      if (greeted) {
        const hex = /^\{"v":1,"type":"challenge","challenge":"([0-9a-f]{64})"\}$/.exec(text)?.[1];
        if (hex) {
          this.challenge = Uint8Array.from(Buffer.from(hex, 'hex'));
          greeted();
          greeted = null;
          return;
        }
      }
      const waiter = this.waiter;
      if (waiter) {
        this.waiter = null;
        waiter({ kind: 'reply', text, ms: performance.now() - this.sentAt });
      } else if (this.unsolicited.length < 100) {
        this.unsolicited.push(text);
      }
    };
    let ws: WebSocket;
    for (let attempt = 1; ; attempt++) {
      try {
        ws = await openWebSocket(this.url, this.options, onMessage);
        break;
      } catch (err) {
        // The slot of the connection just closed may not be free on the payee's side yet.
        if (!(err instanceof UpgradeRefusedError && err.status === 429 && attempt < 20)) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    this.connects++;
    this.openedAt = performance.now();
    ws.on('close', (code: number) => {
      if (this.ws === ws) this.ws = null;
      greeted?.();
      const waiter = this.waiter;
      if (waiter) {
        this.waiter = null;
        waiter({ kind: 'closed', code, ms: performance.now() - this.sentAt });
      }
    });
    this.ws = ws;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([challenge, new Promise((r) => (timer = setTimeout(r, 5_000)))]);
    clearTimeout(timer);
    return ws;
  }

  /** Sends one frame and resolves with what followed it. */
  async exchange(data: string | Buffer, binary: boolean, timeoutMs: number): Promise<Outcome> {
    const ws = await this.ensureOpen();
    return new Promise<Outcome>((resolve) => {
      const timer = setTimeout(() => {
        if (this.waiter === done) {
          this.waiter = null;
          resolve({ kind: 'timeout', ms: performance.now() - this.sentAt });
        }
      }, timeoutMs);
      const done = (o: Outcome) => {
        clearTimeout(timer);
        resolve(o);
      };
      this.waiter = done;
      this.sentAt = performance.now();
      ws.send(data, { binary }, () => undefined);
    });
  }

  /** Drops the connection (the next exchange opens a new one). */
  async reset(): Promise<void> {
    const ws = this.ws;
    this.ws = null;
    this.waiter = null;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    ws.terminate();
    await closed;
  }

  async close(): Promise<void> {
    const ws = this.ws;
    this.ws = null;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    ws.close(1000);
    const cut = setTimeout(() => ws.terminate(), 2_000);
    await closed;
    clearTimeout(cut);
  }
}
