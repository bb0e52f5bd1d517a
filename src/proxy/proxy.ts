/**
 * `paychan proxy`'s routes: the HTTP and WebSocket sides of the reverse proxy, mounted on the
 * payee's own server (one port: the channel WebSocket at /v1/ws and the payee's built-in routes
 * first, everything else proxied). See docs/proxy.md.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createHttpProxy, type ProxyOptions } from './http-proxy.js';
import { createWsProxy } from './ws-proxy.js';

export interface PaychanProxy {
  /** Answers every request it is given (an `ExtraRoutes` that always resolves true). */
  request(req: IncomingMessage, res: ServerResponse): true;
  /** Takes every upgrade it is given (an `UpgradeRoutes` that always returns true). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): true;
  /** Closes relayed WebSockets and the upstream's keep-alive sockets. */
  close(): void;
}

/** @throws TypeError for a bad upstream URL. */
export function createPaychanProxy(options: ProxyOptions): PaychanProxy {
  const http = createHttpProxy(options);
  const ws = createWsProxy(http, options);
  return {
    request(req, res) {
      http.handle(req, res);
      return true;
    },
    upgrade(req, socket, head) {
      ws.handle(req, socket, head);
      return true;
    },
    close() {
      ws.close();
      http.close();
    },
  };
}
