/**
 * CORS for browser payers. Allowed origins come from configuration; none by default (then the
 * proxy adds no CORS header and a browser page on another origin cannot read the answers).
 * `*` must be configured explicitly and allows any origin (no credentials: payments travel in
 * headers, not cookies).
 *
 * A preflight (OPTIONS with `Origin` and `Access-Control-Request-Method`) is answered by the
 * proxy itself, never priced and never forwarded: the upstream does not need to know CORS. The
 * payment headers a page must send are allowed, and those it must read (the ack, the credit, the
 * x402 and WWW-Authenticate challenges) are exposed.
 */
import type { IncomingMessage } from 'node:http';

/** Headers a browser page must be able to read on a proxied answer or a 402. */
export const EXPOSED_HEADERS = ['paychan-ack', 'paychan-credit', 'payment-required', 'payment-response', 'www-authenticate'];
const PREFLIGHT_MAX_AGE_SECONDS = '600';

export interface CorsPolicy {
  /** True for a preflight request (answer with {@link preflightHeaders}). */
  isPreflight(req: IncomingMessage): boolean;
  /** The headers of a preflight's 204 (empty when the origin is not allowed). */
  preflightHeaders(req: IncomingMessage): Record<string, string>;
  /** Headers to add to an answer (proxied or 402); empty when the origin is not allowed. */
  responseHeaders(req: IncomingMessage): Record<string, string>;
  /** Whether this policy writes CORS headers at all (else the upstream's pass through). */
  readonly enabled: boolean;
}

/**
 * @param origins allowed origins (`https://app.example`, scheme://host[:port]), or `['*']`.
 * @throws TypeError for an origin that is not scheme://host[:port].
 */
export function corsPolicy(origins: readonly string[]): CorsPolicy {
  for (const o of origins) {
    if (o !== '*' && !/^[a-z][a-z0-9+.-]*:\/\/[^/\s?#]+$/i.test(o)) throw new TypeError(`CORS origin must be scheme://host[:port] or '*', got '${o}'`);
  }
  const any = origins.includes('*');
  const allowed = new Set(origins.map((o) => o.toLowerCase()));
  const allowOrigin = (req: IncomingMessage): string | undefined => {
    const origin = req.headers.origin;
    if (origin === undefined) return undefined;
    if (any) return '*';
    return allowed.has(origin.toLowerCase()) ? origin : undefined;
  };
  const vary: Record<string, string> = any ? {} : { vary: 'Origin' };
  return {
    enabled: origins.length > 0,
    isPreflight: (req) => req.method === 'OPTIONS' && req.headers.origin !== undefined && req.headers['access-control-request-method'] !== undefined,
    preflightHeaders(req) {
      const origin = allowOrigin(req);
      if (origin === undefined) return { ...vary };
      const method = String(req.headers['access-control-request-method']);
      const requested = req.headers['access-control-request-headers'];
      return {
        'access-control-allow-origin': origin,
        'access-control-allow-methods': method,
        // Echo what the page asked to send (among them Paychan-Payment, PAYMENT-SIGNATURE).
        ...(requested ? { 'access-control-allow-headers': String(requested) } : {}),
        'access-control-max-age': PREFLIGHT_MAX_AGE_SECONDS,
        ...(any ? {} : { vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers' }),
      };
    },
    responseHeaders(req) {
      if (origins.length === 0) return {};
      const origin = allowOrigin(req);
      if (origin === undefined) return { ...vary };
      return { 'access-control-allow-origin': origin, 'access-control-expose-headers': EXPOSED_HEADERS.join(', '), ...vary };
    },
  };
}
