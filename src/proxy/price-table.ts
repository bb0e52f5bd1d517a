/**
 * The proxy's price table: which routes cost what, read from a small JSON document and checked
 * once, at start, with valibot (as the wire messages are). Pure: no Node module, no I/O.
 *
 * ```json
 * { "routes": [
 *   { "path": "/api/:id", "method": "GET", "perRequestSat": 10 },
 *   { "path": "/files/*", "perRequestSat": 1, "perKiBSat": 2, "prepayKiB": 4096 },
 *   { "path": "/events", "method": "GET", "perSecondSat": 5, "prepaySeconds": 30 },
 *   { "path": "/*", "perRequestSat": 0 }
 * ] }
 * ```
 * - `path`: `/`-separated segments; a literal segment matches itself, `:name` any one non-empty
 *   segment, and a final `*` the rest of the path (also nothing: `/files/*` matches `/files`).
 *   Matched against the request's normalised path (dot segments resolved), without query.
 * - `method`: a method, a list of them, or `*` (the default). HEAD matches a GET route.
 * - Amounts: whole satoshis, a JSON number (safe integer) or a decimal string. Omitted = 0; a
 *   route whose every part is 0 is free (forwarded without payment).
 * - `prepayKiB` (default 1024) and `prepaySeconds` (default 60): what the upfront price buys of a
 *   metered route (see metering.ts).
 * The first route that matches wins; a request no route matches is refused (404 NO_ROUTE), so
 * nothing reaches the upstream unpriced by omission: end with `{"path": "/*"}` to forward the
 * rest free.
 */
import * as v from 'valibot';
import type { RoutePrice } from './metering.js';

/** A bad price table; `message` names the entry (`routes[2] (GET /api/*): ...`). */
export class PriceTableError extends Error {
  readonly code = 'INVALID_PRICE_TABLE';
  constructor(message: string) {
    super(message);
    this.name = 'PriceTableError';
  }
}

export interface PricedRoute {
  /** Index in the file's `routes`, for messages. */
  readonly index: number;
  readonly path: string;
  /** Upper-case methods, or null for any. */
  readonly methods: readonly string[] | null;
  readonly price: RoutePrice;
}

export interface PriceTable {
  readonly routes: readonly PricedRoute[];
  /** The first route matching `method` and `path` (a path without query), or undefined. */
  match(method: string, path: string): PricedRoute | undefined;
}

const DEFAULT_PREPAY_KIB = 1024n;
const DEFAULT_PREPAY_SECONDS = 60n;
const MAX_PREPAY_KIB = 1n << 20n; // 1 GiB
const MAX_PREPAY_SECONDS = 86_400n;
/** Any price above 21 M BTC is a typo. */
const MAX_SAT = 2_100_000_000_000_000n;

const Sat = v.union(
  [
    v.pipe(v.number(), v.safeInteger('must be a whole number of satoshis'), v.minValue(0, 'must not be negative')),
    v.pipe(v.string(), v.regex(/^(0|[1-9][0-9]{0,15})$/, 'must be a whole number of satoshis (decimal digits)')),
  ],
  'must be a whole number of satoshis (a number or a decimal string)',
);
const Method = v.pipe(v.string(), v.regex(/^(\*|[A-Za-z]{1,16})$/, "must be an HTTP method name or '*'"));
const Route = v.strictObject({
  path: v.pipe(v.string('must be a string'), v.startsWith('/', "must start with '/'"), v.maxLength(1024, 'is too long')),
  method: v.optional(v.union([Method, v.pipe(v.array(Method), v.minLength(1, 'must name at least one method'))], "must be a method name, a list of them, or '*'")),
  perRequestSat: v.optional(Sat),
  perKiBSat: v.optional(Sat),
  perSecondSat: v.optional(Sat),
  prepayKiB: v.optional(Sat),
  prepaySeconds: v.optional(Sat),
  description: v.optional(v.string()),
});
const Table = v.strictObject({
  routes: v.pipe(v.array(Route, 'must be a list of routes'), v.maxLength(1000, 'has more than 1000 routes')),
});

type RouteInput = v.InferOutput<typeof Route>;

/**
 * Checks and compiles a parsed JSON price table.
 * @throws PriceTableError naming the first bad entry and field.
 */
export function parsePriceTable(json: unknown): PriceTable {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new PriceTableError('must be a JSON object with a "routes" list');
  const parsed = v.safeParse(Table, json);
  if (!parsed.success) throw new PriceTableError(describeIssue(json, parsed.issues[0]));
  const routes = parsed.output.routes.map((r, i) => compileRoute(r, i));
  const matchers = routes.map((r) => ({ route: r, segments: canonicalPath(r.path).split('/').slice(1) }));
  return {
    routes,
    match(method, path) {
      const m = method.toUpperCase();
      const segments = canonicalPath(path).split('/').slice(1);
      for (const { route, segments: pattern } of matchers) {
        if (route.methods && !route.methods.includes(m) && !(m === 'HEAD' && route.methods.includes('GET'))) continue;
        if (segmentsMatch(pattern, segments)) return route;
      }
      return undefined;
    },
  };
}

/** Parses price-table JSON text. @throws PriceTableError for bad JSON or a bad table. */
export function parsePriceTableText(text: string, source = 'price table'): PriceTable {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new PriceTableError(`${source} is not JSON: ${(err as Error).message}`);
  }
  try {
    return parsePriceTable(json);
  } catch (err) {
    if (err instanceof PriceTableError) throw new PriceTableError(`${source}: ${err.message}`);
    throw err;
  }
}

function compileRoute(r: RouteInput, index: number): PricedRoute {
  const methods = r.method === undefined || r.method === '*' ? null : (Array.isArray(r.method) ? r.method : [r.method]).map((m) => m.toUpperCase());
  if (methods?.includes('*')) throw new PriceTableError(`${label(index, r)}: method '*' cannot be part of a list`);
  const segments = r.path.split('/').slice(1);
  segments.forEach((s, i) => {
    if (s === '*' && i !== segments.length - 1) throw new PriceTableError(`${label(index, r)}: path: '*' may only be the last segment`);
    if (s.includes('*') && s !== '*') throw new PriceTableError(`${label(index, r)}: path: '*' must be a whole segment`);
    if (s === ':') throw new PriceTableError(`${label(index, r)}: path: ':' needs a name (':id')`);
  });
  const sat = (field: keyof RouteInput, fallback = 0n): bigint => {
    const value = r[field] as number | string | undefined;
    const n = value === undefined ? fallback : BigInt(value);
    if (n > MAX_SAT) throw new PriceTableError(`${label(index, r)}: ${field} ${n} is above 21 million bitcoins`);
    return n;
  };
  const perKiBSat = sat('perKiBSat');
  const perSecondSat = sat('perSecondSat');
  const prepayKiB = perKiBSat === 0n ? 0n : sat('prepayKiB', DEFAULT_PREPAY_KIB);
  const prepaySeconds = perSecondSat === 0n ? 0n : sat('prepaySeconds', DEFAULT_PREPAY_SECONDS);
  if (perKiBSat === 0n && r.prepayKiB !== undefined) throw new PriceTableError(`${label(index, r)}: prepayKiB without perKiBSat`);
  if (perSecondSat === 0n && r.prepaySeconds !== undefined) throw new PriceTableError(`${label(index, r)}: prepaySeconds without perSecondSat`);
  if (perKiBSat > 0n && (prepayKiB < 1n || prepayKiB > MAX_PREPAY_KIB)) throw new PriceTableError(`${label(index, r)}: prepayKiB must be between 1 and ${MAX_PREPAY_KIB}`);
  if (perSecondSat > 0n && (prepaySeconds < 1n || prepaySeconds > MAX_PREPAY_SECONDS)) throw new PriceTableError(`${label(index, r)}: prepaySeconds must be between 1 and ${MAX_PREPAY_SECONDS}`);
  return { index, path: r.path, methods, price: { perRequestSat: sat('perRequestSat'), perKiBSat, perSecondSat, prepayKiB, prepaySeconds } };
}

/** An escaped `/`, `\\` or NUL anywhere; a dot segment with a `;` parameter (`..;`, `.;`, also escaped). */
const AMBIGUOUS_PATH = /%2f|%5c|%00|(?:^|\/)(?:\.|%2e){1,2}(?:;|%3b)/i;

/**
 * Why a request path (as sent, without its query) is refused before any price is matched, or
 * null. An escaped slash or backslash is one segment to the price table but a separator to
 * upstreams that decode before routing (Python's http.server, nginx, many static servers), and
 * Tomcat/Spring resolve `..;` as `..`: `/free/..%2Fpaid` would be priced free and served as
 * `/paid`. No honest client needs those spellings, so they are refused rather than guessed at.
 */
export function ambiguousPath(path: string): string | null {
  return AMBIGUOUS_PATH.test(path) ? 'the path must not contain an escaped /, \\ or NUL, nor a dot segment with a ;' : null;
}

const UNRESERVED_ESCAPE = /%(2[dD]|2[eE]|3[0-9]|[46][1-9a-fA-F]|[57][0-9aA]|5[fF]|7[eE])/g;

/**
 * The form a path is priced in: unreserved characters unescaped (`%61` is `a`), runs of `/` made
 * one, no trailing `/` (but the root), lower case. Upstreams commonly serve all those spellings
 * as one resource (Express ignores a trailing slash, many servers decode before routing, some
 * compare without case), so a price matched on the spelling as sent could be dodged by
 * respelling the path. Matching on this form charges every spelling as its canonical resource;
 * the request itself is forwarded as sent.
 */
export function canonicalPath(path: string): string {
  const unescaped = path.replace(UNRESERVED_ESCAPE, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  const collapsed = unescaped.replace(/\/{2,}/g, '/');
  const trimmed = collapsed.length > 1 && collapsed.endsWith('/') ? collapsed.slice(0, -1) : collapsed;
  return trimmed.toLowerCase();
}

function segmentsMatch(pattern: readonly string[], segments: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p === '*' && i === pattern.length - 1) return true;
    const s = segments[i];
    if (s === undefined) return false;
    if (p.startsWith(':') ? s === '' : p !== s) return false;
  }
  return segments.length === pattern.length;
}

function label(index: number, r: { path?: unknown; method?: unknown }): string {
  const method = Array.isArray(r.method) ? r.method.join(',') || '[]' : typeof r.method === 'string' ? r.method : '*';
  return `routes[${index}] (${method} ${typeof r.path === 'string' ? r.path : '?'})`;
}

/** `routes[2] (GET /x): perKiBSat: must not be negative`, from valibot's first issue. */
function describeIssue(json: unknown, issue: v.BaseIssue<unknown>): string {
  const keys = (issue.path ?? []).map((p) => p.key as string | number);
  if (keys[0] === 'routes' && typeof keys[1] === 'number') {
    const routes = (json as { routes: unknown[] }).routes;
    const entry = (routes[keys[1]] ?? {}) as { path?: unknown; method?: unknown };
    const field = keys.slice(2).join('.');
    return `${label(keys[1], entry)}: ${field ? `${field} ` : ''}${issue.message}`;
  }
  return `${keys.length ? `${keys.join('.')}: ` : ''}${issue.message}`;
}
