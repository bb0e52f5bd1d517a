/**
 * What the upstream sees, and what the client gets back: header rewriting of the reverse proxy.
 *
 * To the upstream: the client's headers without hop-by-hop headers (RFC 9110 §7.6.1, plus any
 * the `Connection` header names) and without any payment header (`Paychan-*`,
 * `PAYMENT-SIGNATURE`, `X-PAYMENT`): the upstream never learns what was paid or by which
 * channel, and without `Proxy-*` and the client's own `Forwarded`. `Host` becomes the
 * upstream's; the standard `X-Forwarded-For` (the client's address appended),
 * `X-Forwarded-Host` and `X-Forwarded-Proto`, and a `Forwarded: for=…;proto=…` of this hop
 * only, say where the request came from.
 *
 * To the client: the upstream's headers without hop-by-hop headers; when the proxy does CORS,
 * without the upstream's own `Access-Control-*` (one policy, the proxy's).
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { hasBody } from '../transport/request-body.js';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** True for a header that carries a payment or a payment answer (never forwarded upstream). */
export function isPaymentHeader(name: string): boolean {
  return name.startsWith('paychan-') || name === 'payment-signature' || name === 'x-payment' || name === 'payment-response';
}

const NO_TOKENS: ReadonlySet<string> = new Set();

/**
 * Headers a `Connection` token may never remove: the request's framing and its Host. Dropping
 * Content-Length while the body is still piped up would send it unframed, and the upstream would
 * read it as the next request on the keep-alive socket (smuggled past every price).
 */
const FRAMING = new Set(['content-length', 'transfer-encoding', 'host']);

/** The header names a `Connection` header lists (hop-by-hop too); none for the usual `keep-alive` / `close`, without allocating. */
function connectionTokens(headers: IncomingHttpHeaders): ReadonlySet<string> {
  const value = headers.connection;
  if (value === undefined || value === 'keep-alive' || value === 'close' || value === 'Keep-Alive' || value === 'Close') return NO_TOKENS;
  return new Set(value.toLowerCase().split(',').map((t) => t.trim()));
}

/**
 * The headers of the upstream request.
 * @param upstreamHost `host[:port]` of the upstream.
 * @param keepUpgrade keep `Connection: upgrade` / `Upgrade` (a WebSocket handshake).
 */
export function upstreamRequestHeaders(req: IncomingMessage, upstreamHost: string, keepUpgrade = false): OutgoingHttpHeaders {
  const headers = req.headers;
  const named = connectionTokens(headers);
  const out: OutgoingHttpHeaders = {};
  // Keys, not entries: no [name, value] pair per header per request.
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || (named.has(name) && !FRAMING.has(name)) || isPaymentHeader(name) || name === 'host') continue;
    // Proxy-* is for proxies (this one), never the upstream's; Forwarded is written below, not
    // passed on: an upstream that trusts it would take a stranger's word for its address.
    if (name.startsWith('proxy-') || name === 'forwarded') continue;
    if (name.startsWith('x-forwarded-') && name !== 'x-forwarded-for') continue;
    out[name] = value;
  }
  // A body's framing is set here, whatever the headers above kept: Node's client sends a
  // GET/HEAD/DELETE/OPTIONS body unframed otherwise, and its bytes would read as the next request
  // on the keep-alive socket (request smuggling, past every price). The client's Content-Length,
  // else chunked (its Transfer-Encoding is hop-by-hop; Node refuses a request with both).
  if (hasBody(req)) {
    const length = req.headers['content-length'];
    if (length !== undefined && req.headers['transfer-encoding'] === undefined) out['content-length'] = length;
    else {
      delete out['content-length'];
      out['transfer-encoding'] = 'chunked';
    }
  }
  if (keepUpgrade && req.headers.upgrade) {
    out.connection = 'upgrade';
    out.upgrade = req.headers.upgrade;
  }
  out.host = upstreamHost;
  const client = req.socket.remoteAddress ?? 'unknown';
  const prior = req.headers['x-forwarded-for'];
  out['x-forwarded-for'] = prior ? `${Array.isArray(prior) ? prior.join(', ') : prior}, ${client}` : client;
  if (req.headers.host) out['x-forwarded-host'] = req.headers.host;
  const proto = 'encrypted' in req.socket && req.socket.encrypted ? 'https' : 'http';
  out['x-forwarded-proto'] = proto;
  // RFC 7239 §6: an IPv6 node is quoted and bracketed; an IPv4 one is a token.
  const node = req.socket.remoteAddress === undefined ? 'unknown' : req.socket.remoteAddress.includes(':') ? `"[${req.socket.remoteAddress}]"` : req.socket.remoteAddress;
  out.forwarded = `for=${node};proto=${proto}`;
  return out;
}

/**
 * The upstream response's headers as the client gets them, with `extra` (CORS) added.
 * @param dropCors drop the upstream's own `Access-Control-*` headers (the proxy does CORS).
 */
export function clientResponseHeaders(headers: IncomingHttpHeaders, dropCors: boolean, extra: Readonly<Record<string, string>>): OutgoingHttpHeaders {
  const named = connectionTokens(headers);
  const out: OutgoingHttpHeaders = {};
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    if (dropCors && name.startsWith('access-control-')) continue;
    out[name] = value;
  }
  for (const name of Object.keys(extra)) out[name] = extra[name];
  return out;
}
