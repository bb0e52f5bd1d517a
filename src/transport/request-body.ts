/**
 * Request bodies on the payee's HTTP server: whether a request has one, and the bound on a slow
 * one. The server's `requestTimeout` is off: it counts a whole body, so it cut an honest upload
 * streamed through `paychan proxy` at the handshake limit (and the proxy charged it). Headers
 * stay bounded by `headersTimeout`; a body is bounded by idleness instead: a request whose body
 * has not moved for `idleMs` has its socket destroyed (a slow-loris that trickles nothing).
 */
import type { IncomingMessage } from 'node:http';

/** A body that sent no byte for this long (ms) ends its connection. */
export const BODY_IDLE_TIMEOUT_MS = 60_000;

/** True unless the request has no body by its framing (no Transfer-Encoding, no or a zero Content-Length). */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * A `'request'` listener that destroys the socket of a request whose body stops arriving for
 * `idleMs`. Progress is read from the socket's byte count, not from `'data'` events: listening
 * would put the body in flowing mode before its handler (the proxy pipes it later). One timer
 * per request with a body, none for the rest (most GETs, every payment over the WebSocket).
 */
export function boundBodyIdleness(idleMs = BODY_IDLE_TIMEOUT_MS): (req: IncomingMessage) => void {
  return (req) => {
    if (req.complete || !hasBody(req)) return;
    const socket = req.socket;
    let seen = socket.bytesRead;
    const timer = setTimeout(() => {
      if (req.complete) return;
      if (socket.bytesRead === seen) return void socket.destroy();
      seen = socket.bytesRead;
      timer.refresh();
    }, idleMs);
    timer.unref();
    const stop = (): void => clearTimeout(timer);
    req.once('end', stop);
    req.once('close', stop);
  };
}
