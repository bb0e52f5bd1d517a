/**
 * What a reconnecting link (the Node client, transport/ws-client.ts; the browser's,
 * transport/browser-link.ts) keeps while it is down: the frames sent meanwhile, bounded, dropping
 * the oldest (a payment carries the channel's new total, so a later one supersedes it), and the
 * callers of `ready()` waiting for the next connection.
 */
import { LinkClosedError } from './reconnect.js';

export class OfflineQueue<F> {
  private readonly frames: F[] = [];
  private waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  /** Frames dropped: the oldest when the queue overflowed, and any counted by {@link drop}. */
  dropped = 0;

  /** @param max frames kept; beyond it the oldest is dropped (and `log` told). */
  constructor(
    private readonly max: number,
    private readonly log?: (line: string) => void,
  ) {}

  get length(): number {
    return this.frames.length;
  }

  push(frame: F): void {
    this.frames.push(frame);
    if (this.frames.length > this.max) {
      this.frames.shift();
      this.dropped++;
      this.log?.(`send queue full (${this.max}): dropped the oldest message`);
    }
  }

  /** A promise of the next connection: `connected` now, rejected if the link is `stopped` for good. */
  ready(connected: boolean, stopped: boolean): Promise<void> {
    if (connected) return Promise.resolve();
    if (stopped) return Promise.reject(new LinkClosedError());
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Connected: every queued frame to `send`, in order, then the waiters released. */
  flush(send: (frame: F) => void): void {
    for (const frame of this.frames.splice(0)) send(frame);
    for (const w of this.waiters.splice(0)) w.resolve();
  }

  /** Closed for good: the queued frames dropped, the waiters rejected with `reason`. */
  fail(reason: Error): void {
    this.dropped += this.frames.length;
    this.frames.length = 0;
    for (const w of this.waiters.splice(0)) w.reject(reason);
  }
}
