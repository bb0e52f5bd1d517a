/**
 * The reverse proxy's WebSocket side: an upgrade request on any path but the payee's own
 * channel WebSocket is priced like a GET, paid through the paywall (the `Paychan-Payment` header
 * on the upgrade request), and relayed to the upstream's WebSocket.
 *
 * The proxy ends both WebSockets itself (with `ws`, already the channel transport's library)
 * rather than splicing raw sockets: so it can count the bytes of each message and close the
 * client's side cleanly, with code 4402 and a reason, when the prepaid seconds or KiB run out,
 * without cutting a frame in half. The upstream is closed with 1000 then.
 *
 * Charged as in http-proxy.ts: the upstream refusing with a 5xx, unreachable, or not answering
 * in time costs nothing; else the per-request price plus the metered seconds (from the moment
 * both sides are open) and KiB the client received, the unused prepaid rest credited back.
 *
 * The client's handshake is validated before anything is paid or dialled (a bad one is a 400,
 * nothing charged); a client that goes away before its 101 costs nothing either, and the upstream
 * WebSocket opened for it is terminated. The 101's Paychan-Ack/Credit headers are looked up per
 * request object, so one channel's ack can never land on another's answer.
 *
 * Backpressure: when one side's send buffer (`bufferedAmount`) passes MAX_BUFFERED_BYTES, the
 * other side's socket is paused (TCP pushes back to its sender) and resumed once the buffer has
 * drained below the bound. A client that stops reading thus holds at most about 1 MiB (plus a
 * read chunk) in the proxy; it is not disconnected, and its metered seconds keep running.
 *
 * Memory a stranger can pin: a message is held until complete, so messages are capped
 * (`wsMaxPayloadBytes`, 1 MiB); bytes sent before the 101 at MAX_EARLY_BYTES; and a relay with
 * no frame either way (message, ping or pong) for `wsIdleTimeoutMs` (5 minutes) is closed with
 * 1001.
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { refuseUpgrade } from '../transport/http-replies.js';
import { ACK_HEADER, CREDIT_HEADER, PAYMENT_HEADER } from '../transport/paywall.js';
import { upstreamRequestHeaders } from './forward-headers.js';
import type { HttpProxy, ProxyOptions } from './http-proxy.js';
import { byteBudget, isFree, meteredSat, timeBudgetMs, upfrontSat, type RoutePrice } from './metering.js';
import { paymentRequiredHeaders } from './payment-required.js';

/** Close code when what was paid is used up (4000–4999 is the application's range; 402 as in HTTP). */
export const CLOSE_PAYMENT_EXHAUSTED = 4402;
/**
 * Largest message relayed by default; bigger ones close the connection with 1009. `ws` holds a
 * message until it is complete, so this is what one stranger's socket can make the proxy hold.
 */
export const DEFAULT_WS_MAX_PAYLOAD_BYTES = 1024 * 1024;
/** A relay without a message either way for this long (ms) is closed with 1001, by default. */
export const DEFAULT_WS_IDLE_TIMEOUT_MS = 5 * 60_000;
/**
 * Bytes a client may send before its 101 (while the upstream is dialled) before its socket is
 * destroyed: a client cannot send frames before the 101, so this only ever holds stray bytes.
 */
export const MAX_EARLY_BYTES = 4096;
/** A side's send buffer past this pauses reading from the other side until it drains. */
export const MAX_BUFFERED_BYTES = 1024 * 1024;
/** RFC 6455 §4.2.1: a base64-encoded 16-byte nonce (ws checks the same). */
const KEY_RE = /^[+/0-9A-Za-z]{22}==$/;
/** RFC 7230 token, for each offered subprotocol. */
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Why the client's opening handshake is unacceptable, or null when `ws` will accept it. */
export function badHandshake(req: IncomingMessage): string | null {
  if (req.method !== 'GET') return 'a WebSocket upgrade must be a GET';
  if (req.headers.upgrade?.toLowerCase() !== 'websocket') return 'the Upgrade header must be websocket';
  const key = req.headers['sec-websocket-key'];
  if (key === undefined || !KEY_RE.test(key)) return 'Sec-WebSocket-Key must be the base64 of 16 bytes';
  if (req.headers['sec-websocket-version'] !== '13') return 'Sec-WebSocket-Version must be 13';
  const protocols = req.headers['sec-websocket-protocol'];
  if (protocols !== undefined) {
    const list = protocols.split(',').map((p) => p.trim());
    if (list.some((p) => !TOKEN_RE.test(p)) || new Set(list).size !== list.length) return 'invalid Sec-WebSocket-Protocol';
  }
  return null;
}

export interface WsProxy {
  /** Handles an upgrade request (`server.on('upgrade')`); never throws. */
  handle(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Closes every relayed connection with 1001. */
  close(): void;
  /** Bytes waiting in the relays' send buffers, and how many sides are paused for backpressure. */
  stats(): { bufferedBytes: number; paused: number };
}

/** Writes a whole HTTP response on a socket that will not be upgraded, then ends it. */
function writeRawResponse(socket: Duplex, status: number, headers: Record<string, string>, body: string): void {
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`, 'connection: close', `content-length: ${Buffer.byteLength(body)}`];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  socket.on('error', () => socket.destroy());
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

export function createWsProxy(http: HttpProxy, options: Pick<ProxyOptions, 'prices' | 'paywall' | 'upstreamTimeoutMs' | 'wsMaxPayloadBytes' | 'wsIdleTimeoutMs' | 'now' | 'log'>): WsProxy {
  const now = options.now ?? (() => performance.now());
  const timeoutMs = options.upstreamTimeoutMs ?? 30_000;
  const maxPayload = options.wsMaxPayloadBytes ?? DEFAULT_WS_MAX_PAYLOAD_BYTES;
  const idleTimeoutMs = options.wsIdleTimeoutMs ?? DEFAULT_WS_IDLE_TIMEOUT_MS;
  const { upstream } = http;
  /** The subprotocol the upstream chose, per upgrade request, for our handshake to echo. */
  const chosen = new WeakMap<IncomingMessage, string>();
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    clientTracking: true,
    maxPayload,
    handleProtocols: (_protocols, req) => chosen.get(req) ?? false,
  });
  const upstreams = new Set<WebSocket>();
  /** The extra headers of each upgrade's 101 (the ack), by request: never another request's. */
  const extraHeaders = new WeakMap<IncomingMessage, Record<string, string>>();
  wss.on('headers', (h: string[], req: IncomingMessage) => {
    for (const [k, v] of Object.entries(extraHeaders.get(req) ?? {})) h.push(`${k}: ${v}`);
  });

  /**
   * Sends `data` from one side to `to`; past the bound, pauses `from` until `to` has drained.
   * The send callbacks run as `to`'s socket accepts the data, the last one when it is empty.
   */
  const forward = (from: WebSocket, to: WebSocket, data: Buffer, isBinary: boolean): void => {
    if (to.readyState !== WebSocket.OPEN) return;
    to.send(data, { binary: isBinary }, () => {
      if (from.isPaused && to.bufferedAmount <= MAX_BUFFERED_BYTES) from.resume();
    });
    if (to.bufferedAmount > MAX_BUFFERED_BYTES) from.pause();
  };

  const relay = (req: IncomingMessage, socket: Duplex, head: Buffer, url: URL, paid: { channelId: string; upfrontSat: bigint; price: RoutePrice; ackHeaders: Record<string, string> } | null): void => {
    let settled = false;
    const settle = (actualSat: bigint): void => {
      if (!paid || settled) return;
      settled = true;
      if (actualSat !== paid.upfrontSat) options.paywall.settle(paid.channelId, paid.upfrontSat, actualSat);
    };
    const wsBase = `${upstream.secure ? 'wss' : 'ws'}://${upstream.host}${upstream.basePath}`;
    const protocols = (req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    const headers = upstreamRequestHeaders(req, upstream.host) as Record<string, string>;
    // ws writes its own handshake headers; the handshake has no body (bytes after it are frames).
    for (const h of Object.keys(headers)) if (h.startsWith('sec-websocket-') || h === 'content-length' || h === 'transfer-encoding') delete headers[h];
    const up = new WebSocket(`${wsBase}${url.pathname}${url.search}`, protocols, { headers, perMessageDeflate: false, handshakeTimeout: timeoutMs, maxPayload });
    upstreams.add(up);
    if (paid) extraHeaders.set(req, paid.ackHeaders);
    /** Set once the client's 101 is written: from then on the relay's own handlers take over. */
    let relaying = false;
    let opened = false;
    const abandon = (): void => {
      // The client went away (or ws refused it) before its 101: nothing served, nothing charged.
      if (relaying) return;
      up.terminate();
      settle(0n);
    };
    // Read the client's socket while the upstream is dialled, or a client that hangs up would go
    // unnoticed (a paused socket sees no FIN). Anything it sends early is handed to ws as `head`.
    const early: Buffer[] = head.length > 0 ? [head] : [];
    let earlyBytes = head.length;
    const collect = (chunk: Buffer): void => {
      early.push(chunk);
      earlyBytes += chunk.length;
      if (earlyBytes > MAX_EARLY_BYTES) socket.destroy();
    };
    const onEnd = (): void => {
      abandon();
      socket.destroy();
    };
    socket.on('data', collect);
    socket.once('end', onEnd);
    socket.on('error', abandon);
    socket.once('close', abandon);
    up.on('unexpected-response', (_r, res: IncomingMessage) => {
      const status = res.statusCode ?? 502;
      settle(status >= 500 ? 0n : paid ? meteredSat(paid.price, { bodyBytes: 0, elapsedMs: 0 }) : 0n);
      res.resume();
      writeRawResponse(socket, status, { 'content-type': 'text/plain; charset=utf-8' }, `the upstream refused the WebSocket with ${status}${status >= 500 ? '; nothing was charged' : ''}\n`);
      up.terminate();
    });
    up.on('error', (err) => {
      if (opened) return;
      settle(0n);
      options.log?.(`proxy: upstream WebSocket failed (${err.message}) for ${url.pathname}`);
      // ws says "Opening handshake has timed out".
      if (socket.writable) refuseUpgrade(socket, /timeout|timed out/i.test(err.message) ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_UNAVAILABLE');
    });
    up.on('close', () => upstreams.delete(up));
    up.once('open', () => {
      opened = true;
      if (socket.destroyed || !socket.writable) return abandon();
      if (up.protocol) chosen.set(req, up.protocol);
      // The 101 carries the ack like any paid answer (the 'headers' listener above).
      // No 'data' event can come between this and ws's own listener: both happen in this tick.
      socket.off('data', collect);
      wss.handleUpgrade(req, socket, early.length === 1 ? early[0]! : Buffer.concat(early, earlyBytes), (client) => {
        relaying = true;
        socket.off('end', onEnd);
        socket.off('error', abandon);
        socket.off('close', abandon);
        const startedMs = now();
        const bytesLeft = paid ? byteBudget(paid.price) : Infinity;
        const timeLeftMs = paid ? timeBudgetMs(paid.price) : Infinity;
        let bodyBytes = 0;
        // A paused side still has to read the peer's close frame.
        const unpause = (): void => {
          client.resume();
          up.resume();
        };
        const exhaust = (what: string): void => {
          unpause();
          client.close(CLOSE_PAYMENT_EXHAUSTED, `payment exhausted: the prepaid ${what} are used up`);
          up.close(1000, 'client payment exhausted');
        };
        const timer = timeLeftMs === Infinity ? undefined : setTimeout(() => exhaust('seconds'), timeLeftMs);
        // Neither side said anything for that long: the relay holds two sockets for nobody.
        const idle = setTimeout(() => {
          unpause();
          client.close(1001, 'idle');
          up.close(1001, 'idle');
        }, idleTimeoutMs);
        // A ping or pong either way is a sign of life too (an upstream's keep-alive).
        const alive = (): void => void idle.refresh();
        for (const side of [client, up]) side.on('ping', alive).on('pong', alive);
        client.on('message', (data: RawData, isBinary) => {
          idle.refresh();
          forward(client, up, data as Buffer, isBinary);
        });
        up.on('message', (data: RawData, isBinary) => {
          idle.refresh();
          const size = (data as Buffer).length;
          if (bodyBytes + size > bytesLeft) return exhaust('KiB');
          bodyBytes += size;
          forward(up, client, data as Buffer, isBinary);
        });
        const validCode = (code: number): number => (code === 1000 || (code >= 3000 && code <= 4999) || (code >= 1001 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ? code : 1000);
        client.on('close', (code, reason) => {
          clearTimeout(timer);
          clearTimeout(idle);
          unpause();
          if (up.readyState === WebSocket.OPEN) up.close(validCode(code), reason);
          settle(paid ? meteredSat(paid.price, { bodyBytes, elapsedMs: now() - startedMs }) : 0n);
        });
        up.on('close', (code, reason) => {
          clearTimeout(idle);
          unpause();
          if (client.readyState === WebSocket.OPEN) client.close(validCode(code), reason);
        });
        up.on('error', () => client.terminate());
        client.on('error', () => up.terminate());
      });
    });
  };

  return {
    handle(req, socket, head) {
      // Bytes after the handshake, before any 101: a client that sends that many is no client.
      if (head.length > MAX_EARLY_BYTES) return void socket.destroy();
      const bad = badHandshake(req);
      if (bad) return refuseUpgrade(socket, 'BAD_REQUEST', bad);
      const url = http.target(req);
      if (typeof url === 'string') return refuseUpgrade(socket, 'BAD_REQUEST', url);
      const route = options.prices.match('GET', url.pathname);
      if (!route) return refuseUpgrade(socket, 'NO_ROUTE', `no price for GET ${url.pathname}`);
      const price = route.price;
      if (isFree(price)) return relay(req, socket, head, url, null);
      const upfront = upfrontSat(price);
      const header = req.headers[PAYMENT_HEADER];
      options.paywall.admit(Array.isArray(header) ? header[0] : header, upfront).then(
        (admission) => {
          if (!admission.ok) {
            const resourceUrl = `ws://${req.headers.host ?? upstream.host}${url.pathname}${url.search}`;
            return writeRawResponse(socket, 402, paymentRequiredHeaders({ body: admission.body, resourceUrl }, http.x402Encoder), JSON.stringify(admission.body));
          }
          if (socket.destroyed) return options.paywall.settle(admission.channelId, upfront, 0n);
          const ackHeaders = { [ACK_HEADER]: `${admission.channelId} ${admission.totalSat}`, [CREDIT_HEADER]: admission.creditSat.toString() };
          relay(req, socket, head, url, { channelId: admission.channelId, upfrontSat: upfront, price, ackHeaders });
        },
        (err: unknown) => {
          options.log?.(`proxy: paywall failed: ${err instanceof Error ? err.message : String(err)}`);
          refuseUpgrade(socket, 'INTERNAL_ERROR');
        },
      );
    },
    close() {
      for (const c of wss.clients) c.close(1001, 'proxy shutting down');
      for (const u of upstreams) u.close(1001, 'proxy shutting down');
      wss.close();
    },
    stats() {
      let bufferedBytes = 0;
      let paused = 0;
      for (const ws of [...wss.clients, ...upstreams]) {
        bufferedBytes += ws.bufferedAmount;
        if (ws.isPaused) paused++;
      }
      return { bufferedBytes, paused };
    },
  };
}
