/**
 * The reverse proxy's HTTP side: one request in, priced by the price table, paid through the
 * payee's paywall, forwarded to the upstream, its answer streamed back and metered.
 *
 * Order of a paid request: preflight? → route and price → `Paywall.admit` (the payment is
 * verified and durably stored before anything else) → the upstream is called → the answer is
 * piped back (backpressure: the upstream is paused while the client's socket is full; nothing is
 * buffered beyond Node's stream buffers) → the books are settled once, when the response closes.
 *
 * What is charged (see metering.ts for the arithmetic):
 * - upstream unreachable (502 UPSTREAM_UNAVAILABLE), too slow to answer (504 UPSTREAM_TIMEOUT)
 *   or answering 5xx: nothing; the prepaid price is credited back (`Paywall.settle(…, 0)`);
 * - otherwise the per-request price, plus the metered KiB and seconds actually sent (the clock
 *   starts at the upstream's response headers), the unused prepaid rest credited back;
 * - a client that goes away after the request was forwarded pays the per-request price only.
 * - an answer without a body (to HEAD, or 1xx/204/304) pays the per-request price only: no KiB,
 *   no seconds (its headers' time is not a stream's).
 * When the prepaid KiB or seconds run out the response is cut off: an SSE stream gets a final
 * comment and a `paychan-payment-exhausted` event and ends; another chunked response ends with
 * a `Paychan-Cutoff` trailer; a response of known length is aborted (it cannot end cleanly).
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { MessageOf } from '../protocol/messages.js';
import { ACK_HEADER, CREDIT_HEADER, PAYMENT_HEADER, type Admission, type PaymentRequiredBody } from '../transport/paywall.js';
import { sendError, sendJson } from '../transport/http-replies.js';
import { corsPolicy, type CorsPolicy } from '../transport/cors.js';
import { hasBody } from '../transport/request-body.js';
import { clientResponseHeaders, upstreamRequestHeaders } from './forward-headers.js';
import { byteBudget, isFree, meteredSat, timeBudgetMs, upfrontSat, type RoutePrice } from './metering.js';
import { localX402Encoder, PAYMENT_RESPONSE_HEADER, PAYMENT_SIGNATURE_HEADER, paymentRequiredHeaders, type ProxyX402, type X402Encoder } from './payment-required.js';
import { ambiguousPath, type PriceTable } from './price-table.js';

/** What the proxy needs of the payee's paywall (Paywall has it): the one set of books. */
export interface ProxyPaywall {
  /** Verifies and durably stores the payment in `header`, charging `priceSat` (see Paywall.admit). */
  admit(header: string | undefined, priceSat: bigint): Promise<Admission>;
  /** The same for a payment already parsed (an x402 payload); `refuseShort`: one that adds too little is refused, not kept as credit. */
  admitPayment(payment: MessageOf<'payment'>, priceSat: bigint, refuseShort: boolean): Promise<Admission>;
  /** The 402 of a request whose payment never reached the payee (see Paywall.paymentRequired); changes nothing. */
  paymentRequired(code: PaymentRequiredBody['code'], message: string, priceSat: bigint): Admission & { ok: false };
  /** Final price of a request admitted at `upfrontSat`; the difference is credited (or owed). */
  settle(channelId: string, upfrontSat: bigint, actualSat: bigint): void;
}

export interface ProxyOptions {
  /** Base URL of the upstream (`http://127.0.0.1:3000`); its path, if any, prefixes every request's. */
  readonly upstream: string;
  readonly prices: PriceTable;
  readonly paywall: ProxyPaywall;
  /** Default: no CORS (no origin allowed, the upstream's own CORS headers pass through). */
  readonly cors?: CorsPolicy;
  /** paychan's x402 scheme: the requirements of a 402 and the payments of `PAYMENT-SIGNATURE` headers; default a local encoding of the 402 only (payment-required.ts). */
  readonly x402?: ProxyX402;
  /** Time the upstream has to send its response headers once it has the whole request; default 30,000 ms. */
  readonly upstreamTimeoutMs?: number;
  /** Largest WebSocket message relayed, bytes (a bigger one closes the relay with 1009); default 1 MiB. */
  readonly wsMaxPayloadBytes?: number;
  /** A relayed WebSocket without a message either way for this long (ms) is closed with 1001; default 300,000. */
  readonly wsIdleTimeoutMs?: number;
  /** Keep-alive connections to the upstream at most; default 256. */
  readonly maxUpstreamSockets?: number;
  /** Monotonic clock in ms (tests); default performance.now. */
  readonly now?: () => number;
  readonly log?: (line: string) => void;
}

export const CUTOFF_TRAILER = 'paychan-cutoff';
export const SSE_EXHAUSTED_EVENT = 'paychan-payment-exhausted';

class UpstreamTimeoutError extends Error {}

const NOT_A_PATH = 'the request target must be a path';

/** A validated upstream: where to send, and how. */
export interface Upstream {
  readonly url: URL;
  /** `host[:port]` for the Host header. */
  readonly host: string;
  /** Path prefix without the trailing slash ('' for none). */
  readonly basePath: string;
  readonly secure: boolean;
}

/** @throws TypeError unless `value` is an absolute http(s) URL without query or fragment. */
export function parseUpstream(value: string): Upstream {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`upstream must be an absolute URL like http://127.0.0.1:3000, got '${value}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`upstream must be http:// or https://, got '${value}'`);
  if (url.search || url.hash || url.username || url.password) throw new TypeError(`upstream must not have a query, fragment or credentials, got '${value}'`);
  return { url, host: url.host, basePath: url.pathname.replace(/\/+$/, ''), secure: url.protocol === 'https:' };
}

/** The proxy's request handler (`(req, res) => void`, never throws) and its upstream agent. */
export interface HttpProxy {
  readonly upstream: Upstream;
  readonly cors: CorsPolicy;
  readonly x402Encoder: X402Encoder;
  handle(req: IncomingMessage, res: ServerResponse): void;
  /**
   * The request's normalised path (dot segments resolved) and query, or why it is refused: not
   * origin-form, or a path an upstream might read as another (see price-table.ts ambiguousPath).
   */
  target(req: IncomingMessage): URL | string;
  /** Frees the upstream keep-alive sockets. */
  close(): void;
}

export function createHttpProxy(options: ProxyOptions): HttpProxy {
  const upstream = parseUpstream(options.upstream);
  const cors = options.cors ?? corsPolicy([]);
  const x402 = options.x402;
  const encode = x402?.encode ?? localX402Encoder;
  const timeoutMs = options.upstreamTimeoutMs ?? 30_000;
  const now = options.now ?? (() => performance.now());
  const agentOptions = { keepAlive: true, maxSockets: options.maxUpstreamSockets ?? 256 };
  const agent = upstream.secure ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
  const request = upstream.secure ? httpsRequest : httpRequest;
  const { paywall, prices } = options;

  const target = (req: IncomingMessage): URL | string => {
    const raw = req.url ?? '';
    if (!raw.startsWith('/')) return NOT_A_PATH;
    const query = raw.indexOf('?');
    const ambiguous = ambiguousPath(query < 0 ? raw : raw.slice(0, query));
    if (ambiguous) return ambiguous;
    try {
      // The WHATWG parser resolves `.`/`..` (also %2e-encoded): the price is matched on the
      // path the upstream will serve, not on a spelling that would dodge a priced route.
      return new URL(raw, 'http://proxy.invalid');
    } catch {
      return NOT_A_PATH;
    }
  };

  /**
   * The request's payment through the one set of books: an x402 payload when it carries one (it
   * buys this request or nothing), else paychan's header (a short payment is kept as credit).
   */
  const admit = (req: IncomingMessage, signature: string | undefined, upfront: bigint): Promise<Admission> => {
    if (signature === undefined || !x402) {
      const header = req.headers[PAYMENT_HEADER];
      return paywall.admit(Array.isArray(header) ? header[0] : header, upfront);
    }
    const read = x402.readPayment(signature, upfront);
    if (read.ok) return paywall.admitPayment(read.payment, upfront, true);
    // Refused before the payee saw it: the standard 402, naming what was wrong.
    return Promise.resolve(paywall.paymentRequired(read.code, read.message, upfront));
  };

  const refuse = (req: IncomingMessage, res: ServerResponse, body: PaymentRequiredBody, url: URL, extra: Record<string, string>): void => {
    const resourceUrl = `http://${req.headers.host ?? upstream.host}${url.pathname}${url.search}`;
    sendJson(res, 402, body, { ...paymentRequiredHeaders({ body, resourceUrl }, encode), ...extra });
  };

  /** Forwards the request; `paid` is the admission and its price, or null for a free route. */
  const forward = (req: IncomingMessage, res: ServerResponse, url: URL, corsHeaders: Record<string, string>, price: RoutePrice, paid: { channelId: string; upfrontSat: bigint; admission: Admission & { ok: true }; x402: boolean } | null): void => {
    let settled = false;
    const settle = (actualSat: bigint): void => {
      if (!paid || settled) return;
      settled = true;
      if (actualSat !== paid.upfrontSat) paywall.settle(paid.channelId, paid.upfrontSat, actualSat);
    };
    const upstreamReq = request({
      protocol: upstream.url.protocol,
      hostname: upstream.url.hostname,
      port: upstream.url.port || undefined,
      method: req.method,
      path: `${upstream.basePath}${url.pathname}${url.search}`,
      headers: upstreamRequestHeaders(req, upstream.host),
      agent,
    });
    // Two bounds of `timeoutMs` on the upstream: reaching it (waiting for a pooled socket, then
    // connecting), and answering once it has the whole request. An upload in between takes as
    // long as it needs (its body is bounded by idleness, request-body.ts).
    let upstreamRes: IncomingMessage | undefined;
    let connected = false;
    let finished = false;
    const timedOut = (): void => {
      const err = new UpstreamTimeoutError();
      // Without a connected socket (queued behind the pool, or a connect the network swallows)
      // destroy() may report nothing for minutes: this request fails now.
      if (!connected) fail(err);
      upstreamReq.destroy(err);
    };
    let headerTimer: NodeJS.Timeout | undefined = setTimeout(timedOut, timeoutMs);
    const answerDue = (): void => {
      clearTimeout(headerTimer);
      headerTimer = connected && finished && !upstreamRes && !upstreamReq.destroyed ? setTimeout(timedOut, timeoutMs) : undefined;
    };
    upstreamReq.once('socket', (socket) => {
      const onConnect = (): void => {
        connected = true;
        answerDue();
      };
      if (socket.connecting) socket.once('connect', onConnect);
      else onConnect();
    });
    upstreamReq.once('finish', () => {
      finished = true;
      answerDue();
    });
    /** Whether any of the request's body came in (it reaches the upstream once connected). */
    let bodyReceived = false;
    let startedMs = 0;
    let bodyBytes = 0;
    let cut = false;
    let bodiless = false;
    let cutTimer: NodeJS.Timeout | undefined;
    // A request without a body (no Content-Length, no Transfer-Encoding: RFC 9112 §6.3, most
    // GETs) needs no pipe between the two streams, only the end of the upstream request.
    if (hasBody(req)) {
      req.once('data', () => (bodyReceived = true));
      req.pipe(upstreamReq);
    } else upstreamReq.end();

    let failed = false;
    const fail = (err: Error): void => {
      clearTimeout(headerTimer);
      if (upstreamRes) {
        // The upstream broke off mid-answer: so does the answer.
        res.destroy();
        return;
      }
      if (failed) return;
      failed = true;
      settle(0n);
      if (res.destroyed) return;
      const timeout = err instanceof UpstreamTimeoutError;
      options.log?.(`proxy: upstream ${timeout ? 'timed out' : `failed (${err.message})`} for ${req.method ?? '?'} ${url.pathname}`);
      sendError(res, timeout ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_UNAVAILABLE', undefined, corsHeaders);
    };
    upstreamReq.on('error', fail);

    res.on('close', () => {
      clearTimeout(headerTimer);
      clearTimeout(cutTimer);
      if (!upstreamRes?.complete) upstreamReq.destroy();
      // Cut before any of its body reached the upstream, and not answered: nothing is charged.
      // Part of a body forwarded (an upstream may act on it as it arrives), or all of it, but no
      // answer yet: the per-request price. An answer without a body (HEAD, 204, 304) used no KiB
      // and no seconds. Else what was sent.
      if (!upstreamRes && !req.complete && !(bodyReceived && connected)) settle(0n);
      else settle(meteredSat(price, upstreamRes && !bodiless ? { bodyBytes, elapsedMs: now() - startedMs } : { bodyBytes: 0, elapsedMs: 0 }));
    });
    res.on('drain', () => upstreamRes?.resume());

    upstreamReq.on('response', (up) => {
      clearTimeout(headerTimer);
      upstreamRes = up;
      startedMs = now();
      const status = up.statusCode ?? 502;
      const unpriced = status >= 500;
      if (unpriced) settle(0n);
      const headers = clientResponseHeaders(up.headers, cors.enabled, corsHeaders);
      if (paid) {
        if (paid.x402 && x402) headers[PAYMENT_RESPONSE_HEADER] = x402.paymentResponse(paid.admission);
        headers[ACK_HEADER] = `${paid.admission.channelId} ${paid.admission.totalSat}`;
        headers[CREDIT_HEADER] = (paid.admission.creditSat + (unpriced ? paid.upfrontSat : 0n)).toString();
      }
      const bytesLeft = paid && !unpriced ? byteBudget(price) : Infinity;
      const timeLeftMs = paid && !unpriced ? timeBudgetMs(price) : Infinity;
      const metered = bytesLeft !== Infinity || timeLeftMs !== Infinity;
      const sse = (up.headers['content-type'] ?? '').startsWith('text/event-stream');
      // RFC 9110 §6.4.1: no body, so no chunked framing and no trailer (Node throws on one).
      bodiless = req.method === 'HEAD' || status < 200 || status === 204 || status === 304;
      const chunked = !bodiless && up.headers['content-length'] === undefined && req.httpVersion === '1.1';
      if (metered && chunked && !sse) headers.trailer = CUTOFF_TRAILER;
      try {
        res.writeHead(status, up.statusMessage, headers);
      } catch (err) {
        // An answer Node will not write (a header it refuses) ends this response, not the process.
        options.log?.(`proxy: unwritable upstream answer (${err instanceof Error ? err.message : String(err)}) for ${req.method ?? '?'} ${url.pathname}`);
        settle(0n);
        up.destroy();
        res.destroy();
        return;
      }
      // A stream's headers go out now, not with its first event.
      if (up.headers['content-length'] === undefined) res.flushHeaders();

      const cutOff = (reason: 'time' | 'bytes'): void => {
        if (cut) return;
        cut = true;
        clearTimeout(cutTimer);
        up.destroy();
        const what = reason === 'time' ? 'seconds' : 'KiB';
        if (sse) res.end(`\n: paychan: the prepaid ${what} are used up; pay again to go on\nevent: ${SSE_EXHAUSTED_EVENT}\ndata: {"reason":"${reason}"}\n\n`);
        else if (chunked) {
          res.addTrailers({ [CUTOFF_TRAILER]: reason });
          res.end();
        } else res.destroy();
      };
      if (timeLeftMs !== Infinity && !bodiless) cutTimer = setTimeout(() => cutOff('time'), timeLeftMs);

      up.on('data', (chunk: Buffer) => {
        if (cut) return;
        let part = chunk;
        if (bodyBytes + part.length > bytesLeft) part = part.subarray(0, bytesLeft - bodyBytes);
        bodyBytes += part.length;
        if (part.length > 0 && !res.write(part)) up.pause();
        if (part.length < chunk.length) cutOff('bytes');
      });
      up.on('end', () => {
        clearTimeout(cutTimer);
        if (!cut) res.end();
      });
      up.on('error', () => res.destroy());
    });
  };

  return {
    upstream,
    cors,
    x402Encoder: encode,
    target,
    handle(req, res) {
      if (cors.isPreflight(req)) {
        res.writeHead(204, cors.preflightHeaders(req)).end();
        return;
      }
      const corsHeaders = cors.responseHeaders(req);
      const url = target(req);
      if (typeof url === 'string') return sendError(res, 'BAD_REQUEST', url, corsHeaders);
      const method = req.method ?? 'GET';
      const route = prices.match(method, url.pathname);
      if (!route) return sendError(res, 'NO_ROUTE', `no price for ${method} ${url.pathname}`, corsHeaders);
      const price = route.price;
      if (isFree(price)) return forward(req, res, url, corsHeaders, price, null);
      const upfront = upfrontSat(price);
      const header = x402 ? req.headers[PAYMENT_SIGNATURE_HEADER] : undefined;
      const signature = typeof header === 'string' ? header : undefined;
      admit(req, signature, upfront).then(
        (admission) => {
          if (!admission.ok) return refuse(req, res, admission.body, url, corsHeaders);
          // Paid, but the client left while the payment was being stored: nothing to serve.
          if (res.destroyed || req.socket.destroyed) return paywall.settle(admission.channelId, upfront, 0n);
          forward(req, res, url, corsHeaders, price, { channelId: admission.channelId, upfrontSat: upfront, admission, x402: signature !== undefined });
        },
        (err: unknown) => {
          options.log?.(`proxy: paywall failed: ${err instanceof Error ? err.message : String(err)}`);
          sendError(res, 'INTERNAL_ERROR', undefined, corsHeaders);
        },
      );
    },
    close: () => agent.destroy(),
  };
}
