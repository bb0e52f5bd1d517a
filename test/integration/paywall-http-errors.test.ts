/**
 * The paywall middleware's answer to an unexpected failure of the payee (a store error): a 500
 * with the fixed INTERNAL_ERROR message, the detail only in the operator's log. Loopback, no chain.
 */
import { createServer } from 'node:http';
import { expect, it } from 'vitest';
import type { Paywall } from '../../src/transport/paywall.js';
import { paywallMiddleware } from '../../src/transport/paywall-http.js';
import { HTTP_ERROR_CODES } from '../../src/transport/http-replies.js';
import { closeServer, listen } from '../helpers/http402-env.js';

it('a 500 never carries the internal error text; the log does', async () => {
  const secret = 'SQLITE_IOERR: disk I/O error at /home/operator/.paychan/payee/payee.db';
  // Only admit is reached before the failure.
  const failing = { admit: () => Promise.reject(new Error(secret)) } as unknown as Paywall;
  const lines: string[] = [];
  const middleware = paywallMiddleware(failing, { priceSat: () => 10n }, (line) => lines.push(line));
  const server = createServer((req, res) => middleware(req, res, () => res.end('served')));
  const url = await listen(server);
  try {
    const r = await fetch(`${url}/paid`, { headers: { 'paychan-payment': 'x' } });
    expect(r.status).toBe(500);
    const text = await r.text();
    expect(JSON.parse(text)).toEqual({ code: 'INTERNAL_ERROR', message: HTTP_ERROR_CODES.INTERNAL_ERROR.message });
    expect(text).not.toContain('SQLITE');
    expect(lines.some((l) => l.includes(secret) && l.includes('GET /paid'))).toBe(true);
  } finally {
    await closeServer(server);
  }
});
