/**
 * The payee server's plain-HTTP side: health, readiness, metrics and a channel summary, plus a
 * hook for routes mounted by the application (e.g. a 402 Payment Required middleware) on the
 * same server. Exported on its own so it can be mounted on another node:http server too.
 *
 * Routes (GET, and HEAD which node answers without a body):
 *   /healthz              200 {"status":"ok"}: the process serves requests.
 *   /readyz               200 {"status":"ready"} when `ready()` resolves true, else 503 NOT_READY.
 *   /metrics              200 Prometheus text exposition 0.0.4.
 *   /v1/channels/:id      200 {channelId, state, capacitySat, paidSat} (sats as JSON numbers), where
 *                         :id is the funding outpoint `txid:vout` (":" may be sent as %3A);
 *                         404 UNKNOWN_CHANNEL otherwise.
 * Then `extraRoutes`, then 404 NOT_FOUND. Other methods on the routes above get 405.
 *
 * The channel summary tells anyone who knows a channel's outpoint how much was paid on it; put
 * the server behind access control if that matters.
 */
import type { CorsPolicy } from './cors.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PayeeState } from '../protocol/payee-machine.js';
import { logText } from './log-text.js';
import { sendError, sendJson } from './http-replies.js';
import { PROMETHEUS_CONTENT_TYPE, type PayeeMetrics } from './metrics.js';

/** Handles a request the built-in routes did not; resolves true if it answered it. */
export type ExtraRoutes = (req: IncomingMessage, res: ServerResponse) => Promise<boolean> | boolean;

/** What the routes read from the payee service. */
export interface ChannelDirectory {
  /** A channel by funding outpoint `txid:vout` (or tempId, which these routes never pass). */
  channel(id: string): PayeeState | undefined;
  /** Every channel's state type (only the type: a payee may hold idle channels packed). */
  channelTypes(): readonly { readonly type: string }[];
}

export interface PayeeRoutesOptions {
  readonly service: ChannelDirectory;
  readonly metrics: PayeeMetrics;
  /** Readiness; default: ready as soon as the server listens. Should answer within `readyTimeoutMs`. */
  readonly ready?: () => Promise<boolean> | boolean;
  /** Default 5,000 ms; a `ready()` slower than that counts as not ready. */
  readonly readyTimeoutMs?: number;
  readonly extraRoutes?: ExtraRoutes;
  /**
   * CORS for pages on other origins (paywall, channel routes, everything here): preflights are
   * answered before any route, allowed origins get the allow and expose headers on every answer.
   * Default: none (a browser page on another origin cannot read the answers).
   */
  readonly cors?: CorsPolicy;
  readonly log?: (line: string) => void;
}

/** `GET /v1/channels/:id`'s body. */
export interface ChannelSummary {
  /** Funding outpoint `txid:vout` (the key every JSON of paychan names a channel by). */
  readonly channelId: string;
  /** The payee's state name: AwaitingConfirmation, Open, Closing, Closed. */
  readonly state: PayeeState['type'];
  readonly capacitySat: number;
  /** Newest acknowledged total (0 before the first payment). */
  readonly paidSat: number;
}

/** One route a server answers: a method and an OpenAPI path template (`/v1/channels/{channelId}`). */
export interface HttpRoute {
  readonly method: 'GET' | 'POST';
  readonly path: string;
}

/**
 * The routes of {@link payeeRequestHandler} itself (HEAD too, answered without a body). The
 * payee's OpenAPI document must describe each (test/integration/openapi.test.ts).
 */
export const BUILTIN_ROUTES: readonly HttpRoute[] = [
  { method: 'GET', path: '/healthz' },
  { method: 'GET', path: '/readyz' },
  { method: 'GET', path: '/metrics' },
  { method: 'GET', path: '/v1/channels/{channelId}' },
];

const CHANNEL_ID = /^[0-9a-f]{64}:(?:0|[1-9][0-9]{0,4})$/;
const CHANNEL_PREFIX = '/v1/channels/';

/** @returns the summary of a funded channel's state, or undefined before it has a funding outpoint. */
export function channelSummary(state: PayeeState): ChannelSummary | undefined {
  if (!('channel' in state)) return undefined;
  const paidSat = 'paidSat' in state ? state.paidSat : 0n;
  return { channelId: state.channel.id, state: state.type, capacitySat: Number(state.channel.capacitySat), paidSat: Number(paidSat) };
}

/**
 * Builds the request handler (`server.on('request', handler)`). It never throws: a failure in a
 * route or in `extraRoutes` becomes 500 INTERNAL_ERROR (if nothing was sent yet) and is logged.
 */
export function payeeRequestHandler(options: PayeeRoutesOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const readyTimeoutMs = options.readyTimeoutMs ?? 5_000;
  const cors = options.cors?.enabled ? options.cors : undefined;
  const failed = (req: IncomingMessage, res: ServerResponse, err: unknown): void => {
    options.log?.(`http ${req.method ?? '?'} ${logText(req.url ?? '')} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    sendError(res, 'INTERNAL_ERROR');
  };
  const notFound = (req: IncomingMessage, res: ServerResponse, path: string): void => sendError(res, 'NOT_FOUND', `no route for ${req.method ?? '?'} ${path}`);
  /**
   * Synchronous up to the first route that needs to wait: a request only `extraRoutes` answers
   * synchronously (each one `paychan proxy` forwards) costs no promise here.
   */
  const route = (req: IncomingMessage, res: ServerResponse): void => {
    if (cors) {
      if (cors.isPreflight(req)) {
        res.writeHead(204, cors.preflightHeaders(req)).end();
        return;
      }
      // Set before any route writes: its writeHead merges them into its own headers.
      for (const [name, value] of Object.entries(cors.responseHeaders(req))) res.setHeader(name, value);
    }
    const path = pathOf(req);
    const builtIn = path === '/healthz' || path === '/readyz' || path === '/metrics' || path.startsWith(CHANNEL_PREFIX);
    if (builtIn && req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(res, 'METHOD_NOT_ALLOWED', undefined, { allow: 'GET, HEAD' });
      return;
    }
    if (path === '/healthz') {
      sendJson(res, 200, { status: 'ok' });
    } else if (path === '/readyz') {
      isReady(options.ready, readyTimeoutMs, options.log).then(
        (ready) => (ready ? sendJson(res, 200, { status: 'ready' }) : sendError(res, 'NOT_READY')),
        (err: unknown) => failed(req, res, err),
      );
    } else if (path === '/metrics') {
      const text = options.metrics.render();
      res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
      res.end(text);
    } else if (path.startsWith(CHANNEL_PREFIX)) {
      const id = channelIdOf(path.slice(CHANNEL_PREFIX.length));
      const state = id === undefined ? undefined : options.service.channel(id);
      const summary = state && channelSummary(state);
      // The id must match: service.channel() also answers to tempIds, which stay private.
      if (summary && summary.channelId === id) sendJson(res, 200, summary);
      else sendError(res, 'UNKNOWN_CHANNEL', id === undefined ? 'a channel id is a funding outpoint txid:vout' : `no channel ${id}`);
    } else if (!options.extraRoutes) {
      notFound(req, res, path);
    } else {
      const answered = options.extraRoutes(req, res);
      if (answered === false) notFound(req, res, path);
      else if (answered !== true) answered.then((yes) => yes || notFound(req, res, path), (err: unknown) => failed(req, res, err));
    }
  };
  return (req, res) => {
    try {
      route(req, res);
    } catch (err) {
      failed(req, res, err);
    }
  };
}

/** The request's path, without query string; '' if the target is not a path. */
export function pathOf(req: IncomingMessage): string {
  const target = req.url ?? '';
  const query = target.indexOf('?');
  const fragment = target.indexOf('#');
  const end = query < 0 ? fragment : fragment < 0 ? query : Math.min(query, fragment);
  return end < 0 ? target : target.slice(0, end);
}

function channelIdOf(segment: string): string | undefined {
  let id: string;
  try {
    id = decodeURIComponent(segment);
  } catch {
    return undefined;
  }
  return CHANNEL_ID.test(id) ? id : undefined;
}

async function isReady(ready: PayeeRoutesOptions['ready'], timeoutMs: number, log?: (line: string) => void): Promise<boolean> {
  if (!ready) return true;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  try {
    return (await Promise.race([Promise.resolve().then(ready), timeout])) === true;
  } catch (err) {
    log?.(`ready() failed: ${String(err)}`);
    return false;
  } finally {
    clearTimeout(timer);
  }
}
