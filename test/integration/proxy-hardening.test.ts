/**
 * `paychan proxy` against a stranger who respells requests to get past a price: a body framed
 * by Transfer-Encoding on a GET (request smuggling on the upstream's keep-alive socket), and a
 * priced path written another way the upstream would still serve. Loopback, a paywall that
 * admits nothing, no chain.
 */
import { createServer, type Server } from 'node:http';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Admission, PaymentRequiredBody } from '../../src/transport/paywall.js';
import type { ProxyPaywall } from '../../src/proxy/http-proxy.js';
import { canonicalPath, parsePriceTable } from '../../src/proxy/price-table.js';
import { createPaychanProxy, type PaychanProxy } from '../../src/proxy/proxy.js';
import { startPayeeServer } from '../../src/transport/payee-server.js';
import { boundBodyIdleness } from '../../src/transport/request-body.js';
import { waitUntil } from '../helpers/wait.js';
import { closeServer, listen } from '../helpers/http402-env.js';

/** Admits nothing: every priced request is answered 402. */
const refusal = (code: PaymentRequiredBody['code'], message: string, priceSat: bigint): Admission & { ok: false } => ({
  ok: false,
  body: { code, message, priceSat: Number(priceSat), dueSat: Number(priceSat), channelUrl: 'ws://127.0.0.1:1/v1/ws', network: 'regtest', header: 'Paychan-Payment: …' },
});
const refusingPaywall: ProxyPaywall = {
  admit: (_header, priceSat): Promise<Admission> => Promise.resolve(refusal('PAYMENT_REQUIRED', 'pay', priceSat)),
  admitPayment: () => Promise.reject(new Error('not used')),
  paymentRequired: refusal,
  settle: () => undefined,
};

const received: { url: string; body: string }[] = [];
let upstream: Server;
let proxy: PaychanProxy;
let proxyServer: Server;
let base: string;

beforeAll(async () => {
  upstream = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ url: req.url ?? '', body: Buffer.concat(chunks).toString() });
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`served ${req.url}`);
    });
  });
  const upstreamUrl = await listen(upstream);
  const prices = parsePriceTable({ routes: [{ path: '/api/:id', perRequestSat: 10 }, { path: '/*' }] });
  proxy = createPaychanProxy({ upstream: upstreamUrl, prices, paywall: refusingPaywall });
  proxyServer = createServer((req, res) => proxy.request(req, res));
  base = await listen(proxyServer);
});

afterAll(async () => {
  proxy?.close();
  await closeServer(proxyServer);
  await closeServer(upstream);
});

/** A raw TCP client of the proxy (requests written by hand) and what it has read so far. */
function rawClient(): { socket: net.Socket; answer: () => string } {
  const socket = net.connect(Number(new URL(base).port), '127.0.0.1');
  let answer = '';
  socket.on('data', (d: Buffer) => (answer += d.toString()));
  return { socket, answer: () => answer };
}

describe('paychan proxy against respelled requests', () => {
  it('frames a chunked body again on the way up: a request hidden in a GET body never reaches the upstream', async () => {
    received.length = 0;
    const hidden = 'GET /api/1 HTTP/1.1\r\nHost: x\r\n\r\n';
    const { socket, answer } = rawClient();
    socket.write(`GET /free HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${hidden.length.toString(16)}\r\n${hidden}\r\n0\r\n\r\n`);
    await waitUntil(() => received.length >= 1 && answer().includes('served /free'), 'the free request to be served');
    // One more request on a fresh connection: anything smuggled onto the upstream's keep-alive
    // socket would have been parsed (and recorded) before this one is answered.
    expect(await (await fetch(`${base}/free-2`)).text()).toBe('served /free-2');
    socket.destroy();
    expect(received.map((r) => r.url)).toEqual(['/free', '/free-2']);
    expect(received[0]!.body).toBe(hidden);
  });

  it('keeps a body framed when Connection names content-length: nothing smuggled, later requests on the pooled upstream socket get their own answers', async () => {
    received.length = 0;
    const hidden = 'GET /api/1 HTTP/1.1\r\nHost: x\r\n\r\n';
    const { socket, answer } = rawClient();
    socket.write(`GET /free HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, content-length, host\r\nContent-Length: ${hidden.length}\r\n\r\n${hidden}`);
    await waitUntil(() => answer().includes('served /free'), 'the free request to be served');
    socket.write('GET /free-1 HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitUntil(() => answer().includes('served /free-1'), 'the follow-up on the same client socket to be answered');
    // Others' requests reuse the upstream keep-alive socket: each gets its own answer.
    for (const path of ['/free-2', '/free-3']) expect(await (await fetch(`${base}${path}`)).text()).toBe(`served ${path}`);
    socket.destroy();
    expect(answer).not.toContain('served /api/1');
    expect(received.map((r) => r.url)).toEqual(['/free', '/free-1', '/free-2', '/free-3']);
    expect(received[0]!.body).toBe(hidden);
  });

  it('prices every spelling of a priced path the upstream may serve as it: trailing slash, escapes, case, doubled slashes', async () => {
    received.length = 0;
    for (const path of ['/api/1', '/api/1/', '/%61pi/1', '/API/1', '/api//1']) {
      const r = await fetch(`${base}${path}`);
      expect(r.status, path).toBe(402);
    }
    expect(received).toEqual([]);
    expect(await (await fetch(`${base}/apix/1`)).text()).toBe('served /apix/1');
  });

  it('refuses an escaped slash, backslash or NUL, or a dot segment with a ;, before any price: 400, nothing charged, nothing forwarded', async () => {
    received.length = 0;
    const { port } = new URL(base);
    // fetch would normalise some of these; a raw request sends the path as written.
    const raw = async (path: string): Promise<string> => {
      const socket = net.connect(Number(port), '127.0.0.1');
      let answer = '';
      socket.on('data', (d: Buffer) => (answer += d.toString()));
      const ended = new Promise((resolve) => socket.on('close', resolve));
      socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      await ended;
      return answer;
    };
    for (const path of ['/x/..%2Fapi/1', '/x/%2e%2e%2fapi/1', '/api%2F1', '/api/1%2f', '/x/..%5capi/1', '/x/..;/api/1', '/x/.;/api/1', '/x/%2E%2E;/api/1', '/a%00']) {
      const answer = await raw(path);
      expect(answer, path).toMatch(/^HTTP\/1\.1 400 /);
      expect(answer, path).toContain('"code":"BAD_REQUEST"');
      expect(answer, path).toContain('escaped');
    }
    expect(received).toEqual([]);
    // Ordinary escapes and parameters still go through as sent.
    for (const path of ['/free%20x', '/a;b', '/q?next=%2Fhome']) expect(await raw(path), path).toContain(`served ${path}`);
    expect(received.map((r) => r.url)).toEqual(['/free%20x', '/a;b', '/q?next=%2Fhome']);
  });

  it('canonicalPath: unreserved escapes, slashes and case, nothing else', () => {
    expect(canonicalPath('/')).toBe('/');
    expect(canonicalPath('/A%62c//d/')).toBe('/abc/d');
    expect(canonicalPath('/a%2Fb')).toBe('/a%2fb'); // an escaped slash stays one segment
    expect(canonicalPath('/%7e%2D%2e%5F')).toBe('/~-._');
  });
});

describe('paychan proxy and slow request bodies', () => {
  it('an upload slower than the handshake and upstream limits is streamed whole and charged; one cut part way is charged its price, one cut before its body nothing', async () => {
    let upstreamBytes = 0;
    let cutSeen = 0;
    const up = createServer((req, res) => {
      req.on('data', (c: Buffer) => (upstreamBytes += c.length));
      req.on('end', () => res.end('stored'));
      req.on('close', () => void (req.complete || cutSeen++));
    });
    const settled: bigint[] = [];
    let admitted = 0;
    const paywall: ProxyPaywall = {
      admit: (header, priceSat) => (admitted++, Promise.resolve(header ? { ok: true, channelId: 'c', totalSat: 1n, creditSat: 0n } : refusal('PAYMENT_REQUIRED', 'pay', priceSat))),
      admitPayment: () => Promise.reject(new Error('not used')),
      paymentRequired: refusal,
      settle: (_c, _upfront, actualSat) => void settled.push(actualSat),
    };
    // The upstream has 300 ms to answer once it has the whole request; the upload takes ~1.6 s.
    const uploadProxy = createPaychanProxy({ upstream: await listen(up), prices: parsePriceTable({ routes: [{ path: '/upload', method: 'POST', perRequestSat: 500 }] }), paywall, upstreamTimeoutMs: 300 });
    const service = { handle: () => Promise.resolve(), channel: () => undefined, channelTypes: () => [] };
    const server = await startPayeeServer({ service, limits: { handshakeTimeoutMs: 500 }, extraRoutes: (req, res) => uploadProxy.request(req, res) });
    const { port } = new URL(server.url);
    const upload = (total: number, stopAt: number): { socket: net.Socket; answer: () => string; sent: () => number } => {
      const socket = net.connect(Number(port), '127.0.0.1');
      let answer = '';
      let sent = 0;
      socket.on('data', (d: Buffer) => (answer += d.toString()));
      socket.on('error', () => undefined);
      socket.write(`POST /upload HTTP/1.1\r\nHost: x\r\nPaychan-Payment: ok\r\nContent-Length: ${total}\r\n\r\n`);
      // 1 KiB every 100 ms: the whole body takes several times the 500 ms handshake limit.
      const pace = setInterval(() => {
        if (sent >= stopAt || socket.destroyed) return clearInterval(pace);
        socket.write(Buffer.alloc(1024, 97));
        sent += 1024;
      }, 100);
      socket.on('close', () => clearInterval(pace));
      return { socket, answer: () => answer, sent: () => sent };
    };
    try {
      const whole = upload(16 * 1024, 16 * 1024);
      await waitUntil(() => whole.answer().includes('stored'), 'the slow upload to be answered');
      expect(whole.answer()).toMatch(/^HTTP\/1\.1 200 /);
      expect(upstreamBytes).toBe(16 * 1024);
      whole.socket.destroy();
      // The payee charged the upfront price in admit; no settle means the whole price stands.
      expect(settled).toEqual([]);

      // Part of the body reached the upstream (which may act on it): the price stands.
      const cut = upload(16 * 1024, 4 * 1024);
      await waitUntil(() => cut.sent() >= 4 * 1024 && upstreamBytes > 16 * 1024, 'part of the body to reach the upstream');
      cut.socket.destroy();
      await waitUntil(() => cutSeen === 1, 'the upstream to see the cut request');
      expect(settled).toEqual([]);

      // Cut before any body byte: the upstream had nothing, nothing is charged.
      const early = upload(16 * 1024, 0);
      await waitUntil(() => admitted === 3, 'the cut request to be admitted and forwarded');
      early.socket.destroy();
      await waitUntil(() => settled.length === 1, 'the cut request to be settled');
      expect(settled).toEqual([0n]);
    } finally {
      uploadProxy.close();
      await server.close();
      await closeServer(up);
    }
  });

  it('a body that stops arriving has its socket closed after the idle bound', async () => {
    const server = createServer((req, res) => req.on('end', () => res.end('done')));
    server.on('request', boundBodyIdleness(200));
    const { port } = new URL(await listen(server));
    try {
      const socket = net.connect(Number(port), '127.0.0.1');
      let closed = false;
      socket.on('close', () => (closed = true));
      socket.on('error', () => undefined);
      socket.write('POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789');
      await waitUntil(() => closed, 'the idle body to be cut', 10_000);
    } finally {
      await closeServer(server);
    }
  });
});

describe('an upstream the network swallows', () => {
  it('a connect that never completes is answered 504 within --upstream-timeout, nothing charged', async () => {
    // A listener whose accept queue is full: the kernel drops further SYNs, so a connect hangs
    // (for ~2 minutes on Linux) instead of failing.
    const holder = spawn('python3', ['-c', [
      'import socket, time',
      "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)",
      'print(s.getsockname()[1], flush=True)',
      'fill = []',
      'for i in range(4):',
      '    c = socket.socket(); c.setblocking(False)',
      '    try: c.connect(s.getsockname())',
      '    except BlockingIOError: pass',
      '    fill.append(c)',
      'time.sleep(60)',
    ].join('\n')], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const port = await new Promise<number>((resolve) => holder.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
      const settled: bigint[] = [];
      const paywall: ProxyPaywall = {
        admit: () => Promise.resolve({ ok: true, channelId: 'c', totalSat: 1n, creditSat: 0n }),
        admitPayment: () => Promise.reject(new Error('not used')),
        paymentRequired: refusal,
        settle: (_c, _upfront, actualSat) => void settled.push(actualSat),
      };
      const swallowed = createPaychanProxy({ upstream: `http://127.0.0.1:${port}`, prices: parsePriceTable({ routes: [{ path: '/*', perRequestSat: 5 }] }), paywall, upstreamTimeoutMs: 300 });
      const front = createServer((req, res) => swallowed.request(req, res));
      const at = await listen(front);
      try {
        const answers = await Promise.all([1, 2].map(() => fetch(`${at}/x`, { headers: { 'paychan-payment': 'ok' } }).then((r) => r.status)));
        expect(answers).toEqual([504, 504]);
        expect(settled).toEqual([0n, 0n]);
      } finally {
        swallowed.close();
        await closeServer(front);
      }
    } finally {
      holder.kill();
    }
  });
});

