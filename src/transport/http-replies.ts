/**
 * The one place where the payee server's HTTP errors are defined and written: every error body
 * is `{"code": "...", "message": "..."}` with a stable code from {@link HTTP_ERROR_CODES}, on a
 * normal response or on a refused WebSocket upgrade (a raw socket, before any WebSocket exists).
 */
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import { ProtocolError } from '../protocol/errors.js';

/** Error codes of the HTTP side, with their status and default message. */
export const HTTP_ERROR_CODES = {
  NOT_FOUND: { status: 404, message: 'no such resource' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed on this resource' },
  // Same name as the protocol code: a client handles "no such channel" one way on both sides.
  UNKNOWN_CHANNEL: { status: 404, message: 'no channel with that id' },
  NOT_READY: { status: 503, message: 'the payee is not ready to take payments' },
  TOO_MANY_CONNECTIONS: { status: 503, message: 'the payee has as many connections as it accepts; retry later' },
  TOO_MANY_CONNECTIONS_FROM_ADDRESS: { status: 429, message: 'too many connections from your address; retry later' },
  INTERNAL_ERROR: { status: 500, message: 'the payee failed to answer' },
  BAD_REQUEST: { status: 400, message: 'the request body is not what this route takes' },
  UNAUTHORIZED: { status: 401, message: 'send Authorization: Bearer <the content of the payee data dir admin-token file>' },
  // paychan proxy (src/proxy): no price for the route, and the upstream failing (never charged).
  NO_ROUTE: { status: 404, message: 'the proxy has no price for this method and path' },
  UPSTREAM_UNAVAILABLE: { status: 502, message: 'the upstream did not answer; nothing was charged' },
  UPSTREAM_TIMEOUT: { status: 504, message: 'the upstream did not answer in time; nothing was charged' },
} as const satisfies Record<string, { status: number; message: string }>;

export type HttpErrorCode = keyof typeof HTTP_ERROR_CODES;

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' } as const;

/**
 * JSON text of `value` with satoshi `bigint`s as JSON numbers: every amount of bitcoin there can
 * be (≤ 21×10^14 sat < 2^53) is exact in a double, so a number is what every JSON reader gets
 * right without a bigint parser (docs/cli.md, "One machine interface").
 */
export function jsonText(value: unknown): string {
  return JSON.stringify(value, satsAsNumbers);
}

function satsAsNumbers(_key: string, v: unknown): unknown {
  return typeof v === 'bigint' ? Number(v) : v;
}

/** Writes `body` as JSON with `status` (satoshi `bigint`s as numbers), unless a response was already started. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = jsonText(body);
  res.writeHead(status, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Writes the error `code` (its status, `{code, message}`); `message` defaults to the catalogue's. */
export function sendError(res: ServerResponse, code: HttpErrorCode, message?: string, headers: Record<string, string> = {}): void {
  const { status, message: fallback } = HTTP_ERROR_CODES[code];
  sendJson(res, status, { code, message: message ?? fallback }, headers);
}

/**
 * The one mapping of a route's failure to its HTTP answer: a ProtocolError is 409 with the
 * protocol's code (the request was understood and refused by a channel's rules); a RangeError
 * is the routes' "no such channel", 404 UNKNOWN_CHANNEL; anything else 500 INTERNAL_ERROR with
 * the catalogue's fixed message: an unexpected error's text (a path, a database message) is for
 * the operator's `log`, not for whoever sent the request.
 */
export function sendFailure(res: ServerResponse, err: unknown, log?: (line: string) => void): void {
  if (err instanceof ProtocolError) sendJson(res, 409, { code: err.code, message: err.message });
  else if (err instanceof RangeError) sendError(res, 'UNKNOWN_CHANNEL', err.message);
  else {
    log?.(`internal error answering ${res.req?.method ?? '?'} ${res.req?.url ?? '?'}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    sendError(res, 'INTERNAL_ERROR');
  }
}

/**
 * Answers an upgrade request that will not become a WebSocket with an HTTP error, then closes
 * the socket. Used for wrong paths and connection limits (checked before the handshake, so a
 * refused client costs no WebSocket state).
 */
export function refuseUpgrade(socket: Duplex, code: HttpErrorCode, message?: string): void {
  const { status, message: fallback } = HTTP_ERROR_CODES[code];
  const body = JSON.stringify({ code, message: message ?? fallback });
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'Connection: close',
    `Content-Type: ${JSON_HEADERS['content-type']}`,
    `Content-Length: ${Buffer.byteLength(body)}`,
  ];
  if (status === 429 || status === 503) head.push('Retry-After: 1');
  // end() flushes, then the socket is closed; destroy only if it failed (the peer went away).
  socket.on('error', () => socket.destroy());
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}
