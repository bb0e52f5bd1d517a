/**
 * Coalesces the frames a WebSocket sends in one event-loop turn into one socket write.
 *
 * A payee acknowledges every payment a commit released in one burst, and a payer streams
 * payments in bursts; one `writev` system call per frame was 5–8% of the payee's CPU in the
 * profile. The socket is corked at the first frame of a burst and uncorked on `process.nextTick`,
 * after the burst (the current callback and its microtasks). (`ws` keeps its net.Socket in
 * `_socket`; cork/uncork are Node's own API.)
 */
import type { WebSocket } from 'ws';

export class FrameCorker {
  private corked = false;

  constructor(private readonly ws: WebSocket) {}

  /** Call before each `ws.send` of the turn. */
  beforeSend(): void {
    if (this.corked) return;
    const socket = (this.ws as unknown as { _socket?: { cork(): void; uncork(): void; destroyed?: boolean } })._socket;
    if (!socket) return;
    this.corked = true;
    socket.cork();
    // process.nextTick runs once the current callback and its microtasks are done: every frame
    // of the burst is in, and no event-loop turn is spent waiting.
    process.nextTick(() => {
      this.corked = false;
      if (!socket.destroyed) socket.uncork();
    });
  }
}
