/**
 * CORS on the payee's HTTP (src/transport/http-routes.ts with src/transport/cors.ts), over a real
 * socket on 127.0.0.1: a preflight from an allowed origin is answered before any route, with the
 * method and the headers the page asked for (Paychan-Payment); every answer to an allowed origin
 * (the channel routes, a 402 or a paid answer of the paywall) carries the allow header and
 * exposes the payment headers; another origin gets none; without configuration nothing changes.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { corsPolicy, EXPOSED_HEADERS } from '../../src/transport/cors.js';
import { payeeRequestHandler } from '../../src/transport/http-routes.js';
import { PayeeMetrics } from '../../src/transport/metrics.js';

const PAGE = 'https://shop.example';
const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

async function serve(origins: string[] | null): Promise<string> {
  const handler = payeeRequestHandler({
    service: { channel: () => undefined, channelTypes: () => [] },
    metrics: new PayeeMetrics(),
    ...(origins ? { cors: corsPolicy(origins) } : {}),
    // A paywalled route as an application mounts it: 402, or the answer with the ack header.
    extraRoutes: (req, res) => {
      if (!req.url?.startsWith('/v1/paid/')) return Promise.resolve(false);
      if (req.headers['paychan-payment']) res.writeHead(200, { 'paychan-ack': 'x' }).end('{}');
      else res.writeHead(402, { 'content-type': 'application/json' }).end('{}');
      return Promise.resolve(true);
    },
  });
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const preflight = (url: string, origin: string): Promise<Response> =>
  fetch(url, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'paychan-payment' } });

describe('CORS on the payee', () => {
  it('answers an allowed origin\'s preflight before any route, allowing the payment header', async () => {
    const base = await serve([PAGE]);
    const res = await preflight(`${base}/v1/paid/joke`, PAGE);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(PAGE);
    expect(res.headers.get('access-control-allow-methods')).toBe('GET');
    expect(res.headers.get('access-control-allow-headers')).toBe('paychan-payment');
  });

  it('allows and exposes the payment headers on every answer to an allowed origin', async () => {
    const base = await serve([PAGE]);
    for (const [path, init, status] of [
      ['/v1/paid/joke', {}, 402],
      ['/v1/paid/joke', { headers: { 'paychan-payment': 'p' } }, 200],
      ['/v1/channels/nope', {}, 404],
      ['/healthz', {}, 200],
    ] as const) {
      const res = await fetch(`${base}${path}`, { ...init, headers: { ...('headers' in init ? init.headers : {}), origin: PAGE } });
      expect(res.status, path).toBe(status);
      expect(res.headers.get('access-control-allow-origin'), path).toBe(PAGE);
      expect(res.headers.get('access-control-expose-headers')?.split(', ')).toEqual(EXPOSED_HEADERS);
      expect(res.headers.get('access-control-expose-headers')).toContain('paychan-ack');
    }
  });

  it('gives another origin no CORS header, preflight or answer', async () => {
    const base = await serve([PAGE]);
    const res = await preflight(`${base}/v1/paid/joke`, 'https://evil.example');
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const answer = await fetch(`${base}/v1/paid/joke`, { headers: { origin: 'https://evil.example' } });
    expect(answer.status).toBe(402);
    expect(answer.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('changes nothing without configuration: OPTIONS reaches the routes as before', async () => {
    const base = await serve(null);
    const res = await preflight(`${base}/healthz`, PAGE);
    expect(res.status).toBe(405);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });
});
