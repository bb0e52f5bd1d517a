/**
 * The reverse proxy on loopback sockets, with a recording paywall (no chain: the btcd test is
 * proxy.test.ts): what the upstream sees, the three 402 dialects, metering and cut-offs (SSE,
 * chunked, WebSocket), what is credited back (5xx, down, timeout), CORS and path normalisation.
 */
import { createServer, get as httpGet, type IncomingMessage, type Server } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { corsPolicy } from '../../src/transport/cors.js';
import { CUTOFF_TRAILER, SSE_EXHAUSTED_EVENT, createHttpProxy, type ProxyPaywall } from '../../src/proxy/http-proxy.js';
import { parsePriceTable } from '../../src/proxy/price-table.js';
import { createPaychanProxy, type PaychanProxy } from '../../src/proxy/proxy.js';
import { CLOSE_PAYMENT_EXHAUSTED, DEFAULT_WS_MAX_PAYLOAD_BYTES, MAX_BUFFERED_BYTES, MAX_EARLY_BYTES, createWsProxy } from '../../src/proxy/ws-proxy.js';
import type { Admission, PaymentRequiredBody } from '../../src/transport/paywall.js';
import type { MessageOf } from '../../src/protocol/messages.js';
import { waitUntil } from '../helpers/local-pair.js';
import { closeServer, listen } from '../helpers/http402-env.js';

/** Admits any non-empty header, as channel X for "chan X", else as channel "c"; records every settle. */
class RecordingPaywall implements ProxyPaywall {
  readonly admitted: bigint[] = [];
  readonly settled: { upfrontSat: bigint; actualSat: bigint }[] = [];
  admit(header: string | undefined, priceSat: bigint): Promise<Admission> {
    if (!header) return Promise.resolve(this.paymentRequired('PAYMENT_REQUIRED', 'pay', priceSat));
    this.admitted.push(priceSat);
    return Promise.resolve({ ok: true, channelId: header.startsWith('chan ') ? header.slice(5) : 'c', totalSat: 100n, creditSat: 0n });
  }
  admitPayment(_payment: MessageOf<'payment'>, priceSat: bigint): Promise<Admission> {
    this.admitted.push(priceSat);
    return Promise.resolve({ ok: true, channelId: 'c', totalSat: 100n, creditSat: 0n });
  }
  paymentRequired(code: PaymentRequiredBody['code'], message: string, priceSat: bigint): Admission & { ok: false } {
    return { ok: false, body: { code, message, priceSat: Number(priceSat), dueSat: Number(priceSat), channelUrl: 'ws://127.0.0.1:1/v1/ws', network: 'regtest', header: 'Paychan-Payment: …' } };
  }
  settle(_channelId: string, upfrontSat: bigint, actualSat: bigint): void {
    this.settled.push({ upfrontSat, actualSat });
  }
}

const seen: IncomingMessage['headers'][] = [];
/** The path of every WebSocket the upstream accepted. */
const upstreamWsPaths: string[] = [];
/** /free/flood: the upstream sends this many messages of FLOOD_SIZE bytes at once. */
const FLOOD_COUNT = 800;
const FLOOD_SIZE = 60_000;
let flooder: WebSocket | undefined;
let upstream: Server;
let upstreamUrl: string;
let upstreamWss: WebSocketServer;
const paywall = new RecordingPaywall();
let proxy: PaychanProxy;
let proxyServer: Server;
let base: string;

beforeAll(async () => {
  upstream = createServer((req, res) => {
    seen.push(req.headers);
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/fail') return res.writeHead(503, { 'content-type': 'text/plain' }).end('down for maintenance');
    if (path === '/slow') return void setTimeout(() => res.end('late'), 2_000);
    if (path.startsWith('/meter/')) {
      // No Content-Length: a GET's body goes chunked; HEAD, 204 and 304 have none.
      if (path.endsWith('/empty')) return res.writeHead(204).end();
      if (req.headers['if-none-match'] === '"v1"') return res.writeHead(304, { etag: '"v1"' }).end();
      res.writeHead(200, { 'content-type': 'text/plain', etag: '"v1"' });
      return res.end('metered body');
    }
    if (path === '/bytes') return res.writeHead(200, { 'content-length': '3000' }).end(Buffer.alloc(3000, 97));
    if (path === '/chunked') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const timer = setInterval(() => res.write(Buffer.alloc(600, 98)), 5);
      res.on('close', () => clearInterval(timer));
      return;
    }
    if (path === '/sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let n = 0;
      const timer = setInterval(() => res.write(`data: tick ${n++}\n\n`), 100);
      res.on('close', () => clearInterval(timer));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': 'https://upstream-own.example' }).end(JSON.stringify({ path: req.url }));
  });
  upstreamWss = new WebSocketServer({ server: upstream });
  upstreamWss.on('connection', (ws, req) => {
    seen.push(req.headers);
    upstreamWsPaths.push(req.url ?? '');
    if (req.url === '/free/flood') {
      flooder = ws;
      for (let i = 0; i < FLOOD_COUNT; i++) ws.send(Buffer.alloc(FLOOD_SIZE, 120));
      return;
    }
    if (req.url === '/free/quiet') return void ws.on('message', (m) => ws.send(`echo ${String(m)}`));
    const timer = setInterval(() => ws.send('tick'), 50);
    ws.on('message', (m) => ws.send(`echo ${String(m)}`));
    ws.on('close', () => clearInterval(timer));
  });
  upstreamUrl = await listen(upstream);
  const prices = parsePriceTable({
    routes: [
      { path: '/free/*' },
      { path: '/bytes', perRequestSat: 1, perKiBSat: 1, prepayKiB: 10 },
      { path: '/meter/kib/*', perRequestSat: 2, perKiBSat: 1, prepayKiB: 4 },
      { path: '/meter/sec/*', perRequestSat: 3, perSecondSat: 5, prepaySeconds: 2 },
      { path: '/chunked', perKiBSat: 1, prepayKiB: 2 },
      { path: '/sse', perSecondSat: 5, prepaySeconds: 1 },
      { path: '/ws', perSecondSat: 2, prepaySeconds: 1 },
      { path: '/*', method: 'GET', perRequestSat: 7 },
    ],
  });
  proxy = createPaychanProxy({ upstream: upstreamUrl, prices, paywall, cors: corsPolicy(['https://app.example']), upstreamTimeoutMs: 300 });
  proxyServer = createServer((req, res) => proxy.request(req, res));
  proxyServer.on('upgrade', (req, socket, head) => proxy.upgrade(req, socket, head));
  base = await listen(proxyServer);
});

afterAll(async () => {
  proxy?.close();
  await closeServer(proxyServer);
  upstreamWss?.close();
  await closeServer(upstream);
});

/** A raw upgrade request: the status line and headers of the answer, and the socket (still open when 101). */
function rawUpgrade(url: string, path: string, headers: Record<string, string>): Promise<{ status: number; head: string; socket: Socket; rest: Buffer }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      const all = { host: 'x', connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13', ...headers };
      socket.write(`GET ${path} HTTP/1.1\r\n${Object.entries(all).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
    });
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.pause();
      const head = buf.subarray(0, end).toString();
      resolve({ status: Number(head.split(' ')[1]), head, socket, rest: buf.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.on('error', reject);
  });
}

/** A TCP server that accepts connections and never answers: an upstream that hangs. */
async function hangingUpstream(): Promise<{ url: string; sockets: Set<Socket>; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createNetServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.resume(); // reads (and drops) the request, so a hang-up is seen
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sockets,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const paid = { 'paychan-payment': 'anything', 'payment-signature': 'x402', 'x-payment': 'v1', 'paychan-other': '1' };

/** Runs `fn` against a WebSocket-only server of a proxy of /free/* with `options` of its own (closed after). */
async function withWsProxy(options: { wsMaxPayloadBytes?: number; wsIdleTimeoutMs?: number }, fn: (url: string) => Promise<void>): Promise<void> {
  const p = createPaychanProxy({ upstream: upstreamUrl, prices: parsePriceTable({ routes: [{ path: '/free/*' }] }), paywall, ...options });
  const server = createServer();
  server.on('upgrade', (req, socket, head) => p.upgrade(req, socket, head));
  const url = await listen(server);
  try {
    await fn(url);
  } finally {
    p.close();
    await closeServer(server);
  }
}

describe('paychan proxy, forwarding', () => {
  it('a free route: forwarded, the upstream sees X-Forwarded-* and its own Host, no payment header', async () => {
    seen.length = 0;
    const r = await fetch(`${base}/free/a?q=1`, { headers: { ...paid, 'x-forwarded-for': '10.0.0.1' } });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ path: '/free/a?q=1' });
    const h = seen[0]!;
    expect(Object.keys(h).filter((k) => k.startsWith('paychan-') || k === 'payment-signature' || k === 'x-payment')).toEqual([]);
    expect(h['x-forwarded-for']).toBe('10.0.0.1, 127.0.0.1');
    expect(h['x-forwarded-host']).toBe(new URL(base).host);
    expect(h['x-forwarded-proto']).toBe('http');
    expect(h.host).toBe(new URL(upstreamUrl).host);
    expect(paywall.admitted).toEqual([]);
  });

  it('the upstream never sees Proxy-* nor the client\'s Forwarded; it gets this hop\'s Forwarded', async () => {
    seen.length = 0;
    // node:http, not fetch: fetch may refuse to send Proxy-* itself.
    const status = await new Promise<number>((resolve, reject) => {
      httpGet(`${base}/free/fwd`, { headers: { 'proxy-foo': '1', 'proxy-authorization': 'Basic x', forwarded: 'for=10.9.9.9;proto=https', connection: 'keep-alive, proxy-bar', 'proxy-bar': '2' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    });
    expect(status).toBe(200);
    const h = seen[0]!;
    expect(Object.keys(h).filter((k) => k.startsWith('proxy-'))).toEqual([]);
    expect(h.forwarded).toBe('for=127.0.0.1;proto=http');
  });

  it('a priced route without payment: 402 in paychan JSON, x402 v2 and WWW-Authenticate', async () => {
    const r = await fetch(`${base}/priced`);
    expect(r.status).toBe(402);
    expect(await r.json()).toMatchObject({ code: 'PAYMENT_REQUIRED', priceSat: 7, dueSat: 7 });
    const x402 = JSON.parse(Buffer.from(r.headers.get('payment-required')!, 'base64').toString()) as Record<string, unknown>;
    expect(x402).toMatchObject({ x402Version: 2, resource: { url: `${base}/priced` }, accepts: [{ scheme: 'paychan', network: 'bip122:0f9188f13cb7b2c71f2a335e3a4fc328', amount: '7', asset: 'sat', payTo: 'ws://127.0.0.1:1/v1/ws' }] });
    expect(r.headers.get('www-authenticate')).toBe('Paychan realm="paychan", channel_url="ws://127.0.0.1:1/v1/ws", network="regtest", price_sat="7", due_sat="7", code="PAYMENT_REQUIRED"');
  });

  it('paid: forwarded with the ack; a dot-segment spelling cannot dodge the price', async () => {
    const r = await fetch(`${base}/priced`, { headers: paid });
    expect(r.status).toBe(200);
    expect(r.headers.get('paychan-ack')).toBe('c 100');
    expect((await fetch(`${base}/free/%2e%2e/priced`)).status).toBe(402);
    expect((await fetch(`${base}/nothing`, { method: 'POST' })).status).toBe(404);
  });

  it('an upstream 5xx, outage or timeout is not charged: the prepaid price is credited back', async () => {
    paywall.settled.length = 0;
    const fail = await fetch(`${base}/fail`, { headers: paid });
    expect(fail.status).toBe(503);
    expect(await fail.text()).toBe('down for maintenance');
    expect(fail.headers.get('paychan-credit')).toBe('7');
    const slow = await fetch(`${base}/slow`, { headers: paid });
    expect(slow.status).toBe(504);
    expect(await slow.json()).toMatchObject({ code: 'UPSTREAM_TIMEOUT' });
    expect(paywall.settled).toEqual([
      { upfrontSat: 7n, actualSat: 0n },
      { upfrontSat: 7n, actualSat: 0n },
    ]);
    const dead = createPaychanProxy({ upstream: 'http://127.0.0.1:9', prices: parsePriceTable({ routes: [{ path: '/*', perRequestSat: 3 }] }), paywall });
    const server = createServer((req, res) => dead.request(req, res));
    const url = await listen(server);
    try {
      const down = await fetch(`${url}/x`, { headers: paid });
      expect(down.status).toBe(502);
      expect(await down.json()).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
      expect(paywall.settled.at(-1)).toEqual({ upfrontSat: 3n, actualSat: 0n });
    } finally {
      dead.close();
      await closeServer(server);
    }
  });

  it('per KiB: every started KiB is charged, the unused prepayment credited', async () => {
    paywall.settled.length = 0;
    const r = await fetch(`${base}/bytes`, { headers: paid });
    expect((await r.arrayBuffer()).byteLength).toBe(3000);
    await waitUntil(() => paywall.settled.length === 1, 'the settle');
    expect(paywall.settled[0]).toEqual({ upfrontSat: 11n, actualSat: 1n + 3n });
  });

  it('HEAD, 204 and 304 on a metered route: answered without a body or trailer, charged the per-request price, the process stays up', async () => {
    for (const [route, upfront, perRequest] of [['kib', 6n, 2n], ['sec', 13n, 3n]] as const) {
      paywall.settled.length = 0;
      const head = await fetch(`${base}/meter/${route}/a`, { method: 'HEAD', headers: paid });
      expect(head.status).toBe(200);
      expect(head.headers.get('trailer')).toBeNull();
      expect(head.headers.get('paychan-ack')).toBe('c 100');
      const empty = await fetch(`${base}/meter/${route}/empty`, { headers: paid });
      expect(empty.status).toBe(204);
      expect(await empty.text()).toBe('');
      const unchanged = await fetch(`${base}/meter/${route}/a`, { headers: { ...paid, 'if-none-match': '"v1"' } });
      expect(unchanged.status).toBe(304);
      expect(unchanged.headers.get('trailer')).toBeNull();
      await waitUntil(() => paywall.settled.length === 3, 'three settles');
      // No body: zero KiB and zero seconds used, whatever the clock says about the headers.
      expect(paywall.settled).toEqual([1, 2, 3].map(() => ({ upfrontSat: upfront, actualSat: perRequest })));
      // A body still goes chunked, with the cut-off trailer announced.
      const body = await fetch(`${base}/meter/${route}/a`, { headers: paid });
      expect(body.headers.get('trailer')).toBe(CUTOFF_TRAILER);
      expect(await body.text()).toBe('metered body');
    }
    expect((await fetch(`${base}/free/after`)).status).toBe(200);
  });

  it('a chunked response past its prepaid KiB ends with a Paychan-Cutoff trailer', async () => {
    paywall.settled.length = 0;
    const { bytes, trailers } = await new Promise<{ bytes: number; trailers: NodeJS.Dict<string> }>((resolve, reject) => {
      httpGet(`${base}/chunked`, { headers: paid }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => resolve({ bytes, trailers: res.trailers }));
        res.on('error', reject);
      }).on('error', reject);
    });
    expect(bytes).toBe(2048);
    expect(trailers[CUTOFF_TRAILER]).toBe('bytes');
    // All of the prepayment was used: actual = upfront, nothing to settle.
    expect(paywall.settled).toEqual([]);
  });

  it('an SSE stream metered per second ends with a final event when the paid seconds run out', async () => {
    const r = await fetch(`${base}/sse`, { headers: paid });
    expect(r.headers.get('content-type')).toBe('text/event-stream');
    const text = await r.text();
    expect(text).toMatch(/^data: tick 0\n\n/);
    expect(text.endsWith(`event: ${SSE_EXHAUSTED_EVENT}\ndata: {"reason":"time"}\n\n`)).toBe(true);
    expect(text).toContain(': paychan: the prepaid seconds are used up');
  });

  it('a WebSocket to the upstream is relayed, metered per second, closed with 4402', async () => {
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    });
    expect(refused).toBe(402);
    paywall.settled.length = 0;
    const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`, { headers: paid });
    const messages: string[] = [];
    ws.on('message', (m) => messages.push(String(m)));
    ws.on('open', () => ws.send('hi'));
    const [code, reason] = await new Promise<[number, string]>((resolve) => ws.on('close', (c, r) => resolve([c, String(r)])));
    expect(code).toBe(CLOSE_PAYMENT_EXHAUSTED);
    expect(reason).toMatch(/payment exhausted/);
    expect(messages).toContain('echo hi');
    expect(messages).toContain('tick');
    await waitUntil(() => seen.some((h) => h.upgrade === 'websocket' && h['x-forwarded-for'] !== undefined && h['paychan-payment'] === undefined), 'the upstream upgrade without payment headers');
  });

  it('CORS: a preflight is answered by the proxy; answers expose the payment headers', async () => {
    const pre = await fetch(`${base}/priced`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'paychan-payment' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(pre.headers.get('access-control-allow-methods')).toBe('GET');
    expect(pre.headers.get('access-control-allow-headers')).toBe('paychan-payment');
    const other = await fetch(`${base}/priced`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' } });
    expect(other.status).toBe(204);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const refused = await fetch(`${base}/priced`, { headers: { origin: 'https://app.example' } });
    expect(refused.status).toBe(402);
    expect(refused.headers.get('access-control-expose-headers')).toContain('payment-required');
    const ok = await fetch(`${base}/priced`, { headers: { ...paid, origin: 'https://app.example' } });
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(ok.headers.get('access-control-expose-headers')).toContain('paychan-ack');
  });

  it('relayed WebSocket memory is bounded: messages past the max payload close with 1009, bytes before the 101 are capped', async () => {
    const closeOf = (ws: WebSocket): Promise<number> => new Promise((resolve) => ws.on('close', (code) => resolve(code)));
    const echo = (ws: WebSocket, text: string): Promise<string> =>
      new Promise((resolve) => {
        ws.once('message', (m) => resolve(String(m)));
        ws.send(text);
      });
    const open = (url: string): Promise<WebSocket> =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(url);
        ws.on('open', () => resolve(ws));
        ws.on('error', reject);
      });
    // The default: 1 MiB.
    const big = await open(`${base.replace('http', 'ws')}/free/quiet`);
    expect(await echo(big, 'small')).toBe('echo small');
    const bigClosed = closeOf(big);
    big.send(Buffer.alloc(DEFAULT_WS_MAX_PAYLOAD_BYTES + 1));
    expect(await bigClosed).toBe(1009);
    // Configured lower.
    await withWsProxy({ wsMaxPayloadBytes: 1024 }, async (url) => {
      const ws = await open(`${url.replace('http', 'ws')}/free/quiet`);
      expect(await echo(ws, 'x'.repeat(1000))).toBe(`echo ${'x'.repeat(1000)}`);
      const closed = closeOf(ws);
      ws.send('x'.repeat(1025));
      expect(await closed).toBe(1009);
    });
    // Stray bytes sent with the upgrade, before any 101, past the cap: the socket is dropped.
    const { port } = new URL(base);
    const socket = connect(Number(port), '127.0.0.1');
    let reply = '';
    let ended = false;
    socket.on('data', (d: Buffer) => (reply += d.toString()));
    socket.on('close', () => (ended = true));
    socket.on('error', () => undefined);
    socket.write(`GET /free/quiet HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n${'z'.repeat(MAX_EARLY_BYTES + 1)}`);
    await waitUntil(() => ended, 'the socket to be dropped');
    expect(reply).not.toContain('101');
  });

  it('a relayed WebSocket without a frame either way for the idle timeout is closed with 1001', async () => {
    await withWsProxy({ wsIdleTimeoutMs: 300 }, async (url) => {
      const ws = new WebSocket(`${url.replace('http', 'ws')}/free/quiet`);
      const replies: string[] = [];
      ws.on('message', (m) => replies.push(String(m)));
      const closed = new Promise<[number, string]>((resolve) => ws.on('close', (c, r) => resolve([c, String(r)])));
      await new Promise((resolve) => ws.on('open', resolve));
      ws.send('one');
      await waitUntil(() => replies.length === 1, 'the echo');
      expect(await closed).toEqual([1001, 'idle']);
      expect(replies).toEqual(['echo one']);
    });
  });

  it('an invalid client handshake is refused before anything is paid or dialled', async () => {
    const admitted = paywall.admitted.length;
    paywall.settled.length = 0;
    for (let i = 0; i < 5; i++) {
      const r = await rawUpgrade(base, '/free/badkey', { 'sec-websocket-key': 'bad' });
      expect(r.status).toBe(400);
      r.socket.destroy();
    }
    const v = await rawUpgrade(base, '/free/badversion', { 'sec-websocket-version': '12' });
    expect(v.status).toBe(400);
    v.socket.destroy();
    const p = await rawUpgrade(base, '/paid-badkey', { 'paychan-payment': 'chan A', 'sec-websocket-key': 'bad' });
    expect(p.status).toBe(400);
    p.socket.destroy();
    expect(upstreamWsPaths.filter((u) => u.startsWith('/free/bad') || u === '/paid-badkey')).toEqual([]);
    expect(paywall.admitted.length).toBe(admitted);
    expect(paywall.settled).toEqual([]);
  });

  it('concurrent upgrades on different channels each get their own ack on their 101', async () => {
    // A refused upgrade first: it must leave nothing behind for the next 101.
    (await rawUpgrade(base, '/acked', { 'paychan-payment': 'chan A', 'sec-websocket-key': 'bad' })).socket.destroy();
    const ack = (channel: string): Promise<{ ack: string | string[] | undefined; ws: WebSocket }> =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`${base.replace('http', 'ws')}/acked`, { headers: { 'paychan-payment': `chan ${channel}` } });
        ws.on('upgrade', (res) => resolve({ ack: res.headers['paychan-ack'], ws }));
        ws.on('error', reject);
      });
    const [b, c] = await Promise.all([ack('B'), ack('C')]);
    expect(b.ack).toBe('B 100');
    expect(c.ack).toBe('C 100');
    b.ws.close();
    c.ws.close();
  });

  it('a client gone before its 101 is not charged and its upstream WebSocket is closed', async () => {
    const hang = await hangingUpstream();
    const p = createPaychanProxy({ upstream: hang.url, prices: parsePriceTable({ routes: [{ path: '/*', perRequestSat: 3 }] }), paywall });
    const server = createServer();
    server.on('upgrade', (req, socket, head) => p.upgrade(req, socket, head));
    const url = await listen(server);
    paywall.settled.length = 0;
    try {
      const { hostname, port } = new URL(url);
      const socket = connect(Number(port), hostname, () =>
        socket.write('GET /x HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\npaychan-payment: chan D\r\n\r\n'),
      );
      await waitUntil(() => hang.sockets.size === 1, 'the upstream dialled');
      socket.destroy();
      await waitUntil(() => paywall.settled.length === 1, 'the settle');
      expect(paywall.settled[0]).toEqual({ upfrontSat: 3n, actualSat: 0n });
      await waitUntil(() => hang.sockets.size === 0, 'the upstream connection closed');
    } finally {
      p.close();
      await closeServer(server);
      await hang.close();
    }
  });

  it('an upstream WebSocket handshake that times out is a 504 UPSTREAM_TIMEOUT', async () => {
    const hang = await hangingUpstream();
    const p = createPaychanProxy({ upstream: hang.url, prices: parsePriceTable({ routes: [{ path: '/*' }] }), paywall, upstreamTimeoutMs: 200 });
    const server = createServer();
    server.on('upgrade', (req, socket, head) => p.upgrade(req, socket, head));
    const url = await listen(server);
    try {
      const r = await rawUpgrade(url, '/x', {});
      expect(r.status).toBe(504);
      r.socket.resume();
      const body = await new Promise<string>((resolve) => {
        let text = r.rest.toString();
        r.socket.on('data', (c: Buffer) => (text += c.toString()));
        r.socket.on('end', () => resolve(text));
      });
      expect(JSON.parse(body)).toMatchObject({ code: 'UPSTREAM_TIMEOUT' });
    } finally {
      p.close();
      await closeServer(server);
      await hang.close();
    }
  });

  it('backpressure: a client that stops reading pauses the upstream; the proxy buffers at most about the bound', async () => {
    const options = { upstream: upstreamUrl, prices: parsePriceTable({ routes: [{ path: '/free/*' }] }), paywall };
    const ws = createWsProxy(createHttpProxy(options), options);
    const server = createServer();
    server.on('upgrade', (req, socket, head) => ws.handle(req, socket, head));
    const url = await listen(server);
    try {
      // rawUpgrade leaves the socket paused: the client reads nothing more.
      const r = await rawUpgrade(url, '/free/flood', {});
      expect(r.status).toBe(101);
      // Either the relay paused the upstream, or it went on buffering past the bound (the bug).
      const bound = MAX_BUFFERED_BYTES + 4 * FLOOD_SIZE;
      await waitUntil(() => ws.stats().paused === 1 || ws.stats().bufferedBytes > bound, 'the upstream side paused');
      expect(ws.stats().bufferedBytes).toBeLessThanOrEqual(bound);
      expect(ws.stats().paused).toBe(1);
      expect(flooder!.bufferedAmount).toBeGreaterThan(0);
      // Reading again drains the proxy and resumes the upstream: everything arrives.
      let received = r.rest.length;
      r.socket.on('data', (c: Buffer) => (received += c.length));
      r.socket.resume();
      await waitUntil(() => received === FLOOD_COUNT * (FLOOD_SIZE + 4), 'every message relayed');
      expect(ws.stats().paused).toBe(0);
      r.socket.destroy();
    } finally {
      ws.close();
      await closeServer(server);
    }
  });
});
