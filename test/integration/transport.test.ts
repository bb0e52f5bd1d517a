/**
 * The payee server and the payer's WebSocket link over real sockets on 127.0.0.1, against a real
 * PayeeService on a real btcd: a channel opened and paid over the socket (pipelined), the HTTP
 * routes, and every limit (frame size, binary frames, rate, connections, idle peers, slow
 * handshakes, backpressure), then a payee restart the payer's link rides through.
 */
import { EventEmitter } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { waitUntil } from '../helpers/wait.js';
import { PayeeService } from '../../src/payee/payee-service.js';
import { PayerClient } from '../../src/payer/payer-client.js';
import { randomBytes } from 'node:crypto';
import { address as baddress } from 'bitcoinjs-lib';
import { toHex } from '../../src/protocol/bytes.js';
import { decodeMessage, encodeMessage, MAX_MESSAGE_BYTES, msg, type Message } from '../../src/protocol/messages.js';
import { bitcoinjsNetwork } from '../../src/protocol/network.js';
import { PayeeMetrics } from '../../src/transport/metrics.js';
import { PayeeConnection } from '../../src/transport/payee-connection.js';
import { startPayeeServer, type PayeeServer } from '../../src/transport/payee-server.js';
import { serverLimits, type ServerLimits } from '../../src/transport/server-limits.js';
import { TokenBucket } from '../../src/transport/token-bucket.js';
import { backoffDelay, connectPayee, LinkClosedError, PayeeUnreachableError, type WsPeerLink } from '../../src/transport/ws-client.js';
import { startFundedEnv, type RegtestEnv } from '../helpers/regtest-env.js';
import { regtestPayee, regtestPayer } from '../helpers/regtest-peers.js';

const FEE_RATE = 2;
const CAPACITY = 1_000_000n;
const log = process.env.PAYCHAN_TEST_LOG === '1' ? (l: string) => console.error(l) : undefined;

let env: RegtestEnv;
let service: PayeeService;
let metrics: PayeeMetrics;
/** Everything a test starts, closed in afterAll even when the test failed half-way. */
const cleanups: (() => Promise<unknown> | void)[] = [];

beforeAll(async () => {
  env = await startFundedEnv();
  metrics = new PayeeMetrics();
  service = await regtestPayee(env, {
    fallbackFeeRateSatPerVb: FEE_RATE,
    onPayment: metrics.onPayment,
    log,
  });
  service.start();
});
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  service?.stop();
  await env?.stop();
});

async function server(limits: Partial<ServerLimits> = {}, extra: Partial<Parameters<typeof startPayeeServer>[0]> = {}): Promise<PayeeServer> {
  const s = await startPayeeServer({ service, metrics: extra.metrics ?? new PayeeMetrics(), limits, log, ...extra });
  cleanups.push(() => s.close());
  return s;
}

/** A payer whose link to the payee is the WebSocket client. */
function wsPayer(url: string, hooks: { onOpen?: () => void; onClose?: (e: { code: number }) => void } = {}) {
  const ends: { payer?: PayerClient } = {};
  const link = connectPayee(url, {
    onMessage: (text) => ends.payer?.receive(text),
    // On every (re)connection the payer asks the payee what it holds and resends what is missing.
    onOpen: () => {
      ends.payer?.resume();
      hooks.onOpen?.();
    },
    onClose: hooks.onClose,
    reconnect: { minDelayMs: 20, maxDelayMs: 200 },
    log,
  });
  cleanups.push(() => link.close());
  const payer = regtestPayer(env, link, { fundingFeeRateSatPerVb: FEE_RATE, log });
  ends.payer = payer;
  return { payer, link };
}

/** Opens a channel over the link, mining the confirmation the payee waits for. */
async function openChannel(payer: PayerClient): Promise<string> {
  const opening = payer.open({ variant: 'spilman-v2', capacitySat: CAPACITY, expiryBlocks: 30 });
  await Promise.race([payer.waitFor((s) => s.type === 'AwaitingOpen'), opening]);
  const txid = payer.channel.funding.txid;
  await waitUntil(async () => (await env.backend.getTransaction(txid)) !== null, 'the funding in the mempool');
  await env.mine(1);
  await opening;
  return payer.channel.id;
}

/** A bare WebSocket that records what the payee sends. */
class RawClient {
  readonly messages: Message[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const m = decodeMessage(String(data));
      // The connection's greeting (when it arrives after 'open'), not an answer to anything.
      if (m.type !== 'challenge') this.messages.push(m);
    });
    ws.on('error', () => undefined);
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    cleanups.push(() => ws.terminate());
  }
  static async connect(url: string, options: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<RawClient> {
    const ws = new WebSocket(url, options);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new RawClient(ws);
  }
  errors(code: string): number {
    return this.messages.filter((m) => m.type === 'error' && m.code === code).length;
  }
}

/** Tries a WebSocket upgrade; resolves with the HTTP refusal (status and JSON body) or 'open'. */
function tryUpgrade(url: string, localAddress?: string): Promise<{ status: number; body: unknown; ws?: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, localAddress === undefined ? {} : { localAddress });
    ws.once('open', () => {
      cleanups.push(() => ws.terminate());
      resolve({ status: 101, body: null, ws });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) }));
    });
    ws.once('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

async function getJson(url: string): Promise<{ status: number; body: unknown; type: string | null }> {
  const res = await fetch(url);
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type'), body: res.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(text) : text };
}

describe('payments over the WebSocket', () => {
  it('opens a channel and takes 1,000 pipelined payments; HTTP routes and metrics agree', async () => {
    let ready = false;
    const s = await server({}, { metrics, ready: () => ready });
    const { payer, link } = wsPayer(s.wsUrl);
    await link.ready();
    const channelId = await openChannel(payer);

    // Pipelined: every pay() is issued before the first ack comes back.
    const t0 = performance.now();
    const totals = await Promise.all(Array.from({ length: 1000 }, () => payer.pay(37n)));
    const pipelinedSeconds = (performance.now() - t0) / 1000;
    expect(totals.at(-1)).toBe(37_000n);
    expect(new Set(totals).size).toBe(1000); // each pay() got its own total
    expect(service.channel(channelId)).toMatchObject({ type: 'Open', paidSat: 37_000n });

    // Sequential, for comparison: one round trip per payment.
    const t1 = performance.now();
    for (let i = 0; i < 200; i++) await payer.pay(1n);
    const sequentialSeconds = (performance.now() - t1) / 1000;
    console.log(
      `[transport] pipelined: ${Math.round(1000 / pipelinedSeconds)} payments/s (1,000 in ${pipelinedSeconds.toFixed(3)} s); ` +
        `sequential: ${Math.round(200 / sequentialSeconds)} payments/s`,
    );

    expect(await getJson(`${s.url}/healthz`)).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await getJson(`${s.url}/readyz`)).toMatchObject({ status: 503, body: { code: 'NOT_READY' } });
    ready = true;
    expect(await getJson(`${s.url}/readyz`)).toMatchObject({ status: 200, body: { status: 'ready' } });

    const summary = { channelId, state: 'Open', capacitySat: Number(CAPACITY), paidSat: 37200 };
    expect(await getJson(`${s.url}/v1/channels/${channelId}`)).toEqual({ status: 200, type: 'application/json; charset=utf-8', body: summary });
    expect(await getJson(`${s.url}/v1/channels/${encodeURIComponent(channelId)}`)).toMatchObject({ status: 200, body: summary });
    expect(await getJson(`${s.url}/v1/channels/${'0'.repeat(64)}:0`)).toMatchObject({ status: 404, body: { code: 'UNKNOWN_CHANNEL' } });
    // A tempId also finds the channel in the service, but is not a public id.
    const tempId = payer.id;
    expect(tempId).toMatch(/^[0-9a-f]{32}$/);
    expect(service.channel(tempId as string)).toBeDefined();
    expect(await getJson(`${s.url}/v1/channels/${tempId}`)).toMatchObject({ status: 404, body: { code: 'UNKNOWN_CHANNEL' } });
    expect(await getJson(`${s.url}/nope`)).toMatchObject({ status: 404, body: { code: 'NOT_FOUND', message: expect.any(String) } });
    const post = await fetch(`${s.url}/healthz`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(await post.json()).toMatchObject({ code: 'METHOD_NOT_ALLOWED' });

    const scrape = await getJson(`${s.url}/metrics`);
    expect(scrape.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = scrape.body as string;
    expect(text).toContain('\npaychan_payments_total 1200\n');
    expect(text).toContain('\npaychan_payment_sats_total 37200\n');
    expect(text).toContain('\npaychan_open_channels 1\n');
    expect(text).toContain('\npaychan_connections 1\n');
    expect(text).toContain('\npaychan_payment_latency_seconds_count 1200\n');
    expect(text).toContain('paychan_payment_latency_seconds_bucket{le="+Inf"} 1200\n');
  });
});

describe('limits', () => {
  it('closes a connection that sends a frame over the message size limit with 1009', async () => {
    const s = await server();
    const c = await RawClient.connect(s.wsUrl);
    c.ws.send('x'.repeat(MAX_MESSAGE_BYTES + 1));
    expect((await c.closed).code).toBe(1009);
  });

  it('answers a binary frame with MALFORMED_MESSAGE and bad JSON through the service', async () => {
    const s = await server();
    const c = await RawClient.connect(s.wsUrl);
    c.ws.send(Buffer.from('{"v":1}'), { binary: true });
    c.ws.send('not json');
    await waitUntil(() => c.messages.length === 2, 'two replies');
    expect(c.messages[0]).toMatchObject({ type: 'error', code: 'MALFORMED_MESSAGE', action: 'reject', message: expect.stringMatching(/binary/) });
    expect(c.messages[1]).toMatchObject({ type: 'error', code: 'MALFORMED_MESSAGE', message: expect.stringMatching(/JSON/) });
    expect(s.metrics.rejected.value({ code: 'MALFORMED_MESSAGE' })).toBe(2);
  });

  it('answers frames over the rate with RATE_LIMITED, without processing them', async () => {
    const s = await server({ messagesPerSecond: 2, messageBurst: 5 });
    const connecting = performance.now(); // the bucket is full from about here on
    const c = await RawClient.connect(s.wsUrl);
    for (let i = 0; i < 20; i++) c.ws.send('{}');
    await waitUntil(() => c.messages.length === 20, '20 replies');
    // The bucket holds 5, then refills at 2/s: however long the frames took (a loaded machine),
    // no more were processed than that allows.
    const refilled = Math.floor((2 * (performance.now() - connecting)) / 1000);
    const limited = c.errors('RATE_LIMITED');
    expect(20 - limited).toBeGreaterThanOrEqual(5);
    expect(20 - limited).toBeLessThanOrEqual(5 + refilled);
    expect(c.errors('MALFORMED_MESSAGE') + limited).toBe(20);
    expect(s.metrics.rejected.value({ code: 'RATE_LIMITED' })).toBe(limited);
    // The bucket refills: a frame is processed again (a refused one takes no token).
    await waitUntil(async () => {
      const sent = c.messages.length;
      c.ws.send('{}');
      await waitUntil(() => c.messages.length === sent + 1, 'a reply');
      return c.messages[sent]!.type === 'error' && c.messages[sent]!.code === 'MALFORMED_MESSAGE';
    }, 'the bucket to refill');
  });

  it('makes room for a new connection by cutting the oldest stranger, refuses (503) only when every slot is a payer’s, and per address (429)', async () => {
    const total = await server({ maxConnections: 2, maxConnectionsPerAddress: 2 });
    const a = await RawClient.connect(total.wsUrl, { localAddress: '127.0.0.21' });
    const b = await RawClient.connect(total.wsUrl, { localAddress: '127.0.0.22' });
    // Neither proved anything: a third connection gets in, and the oldest stranger is cut.
    const c = await RawClient.connect(total.wsUrl, { localAddress: '127.0.0.23' });
    await a.closed;
    expect(total.connections()).toBe(2);
    // A hello proves nothing (it is free): c's accepted hello leaves it a stranger, cut for a payer.
    const tip = await env.backend.getTip();
    c.ws.send(
      encodeMessage(
        msg('hello', {
          tempId: toHex(randomBytes(16)),
          network: 'regtest',
          variant: 'spilman-v2',
          payerPubkey: env.wallet.nextChannelKey().publicKey,
          capacitySat: CAPACITY,
          expiryHeight: tip.height + 30,
          payerScript: baddress.toOutputScript(env.wallet.changeAddress(), bitcoinjsNetwork('regtest')),
        }),
      ),
    );
    await waitUntil(() => c.messages.some((m) => m.type === 'accept'), 'the accept');
    // Two payers whose fundings the node took (they paid for that on chain): every slot is a payer's.
    const payers = [wsPayer(total.wsUrl), wsPayer(total.wsUrl)];
    for (const { payer } of payers) await openChannel(payer);
    await Promise.all([b.closed, c.closed]);
    // (From an address of its own: the payers' address is at its own limit of 2.)
    expect(await tryUpgrade(total.wsUrl, '127.0.0.24')).toMatchObject({ status: 503, body: { code: 'TOO_MANY_CONNECTIONS', message: expect.any(String) } });
    payers[0]!.link.close();
    await waitUntil(() => total.connections() === 1, 'the slot to be freed');
    expect((await tryUpgrade(total.wsUrl, '127.0.0.24')).status).toBe(101);

    const perAddress = await server({ maxConnections: 10, maxConnectionsPerAddress: 1 });
    expect((await tryUpgrade(perAddress.wsUrl)).status).toBe(101);
    expect(await tryUpgrade(perAddress.wsUrl)).toMatchObject({ status: 429, body: { code: 'TOO_MANY_CONNECTIONS_FROM_ADDRESS' } });
  });

  it('refuses upgrades on other paths with 404', async () => {
    const s = await server();
    expect(await tryUpgrade(`${s.url.replace('http', 'ws')}/v2/ws`)).toMatchObject({ status: 404, body: { code: 'NOT_FOUND' } });
  });

  it('closes a peer that answers no ping with 1001, and keeps one that does', async () => {
    const s = await server({ pingIntervalMs: 100, idleTimeoutMs: 400 });
    const deaf = await RawClient.connect(s.wsUrl, { autoPong: false });
    const live = await RawClient.connect(s.wsUrl);
    let pings = 0;
    live.ws.on('ping', () => pings++);
    expect(await deaf.closed).toMatchObject({ code: 1001, reason: 'idle timeout' });
    // The live peer answers pings for longer than the idle timeout (5 × 100 ms > 400 ms) and stays.
    const seen = pings;
    await waitUntil(() => pings >= seen + 5, 'five more pings to the live peer');
    expect(live.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('cuts an HTTP request whose headers do not arrive within the handshake timeout', async () => {
    const s = await server({ handshakeTimeoutMs: 500 });
    const { port } = new URL(s.url);
    const socket = netConnect(Number(port), '127.0.0.1');
    cleanups.push(() => {
      socket.destroy();
    });
    let reply = '';
    socket.on('data', (d) => (reply += d.toString()));
    let closed = false;
    socket.once('close', () => (closed = true));
    socket.write('GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n'); // never finished
    // The server cuts it, saying why (408): the handshake timeout, not the test's bound, ended it.
    await waitUntil(() => closed, 'the server to cut the unfinished request', 20_000);
    expect(reply).toMatch(/^HTTP\/1\.1 408/);
  });

  it('keeps processing in order with the smallest buffers (pause and resume never deadlock)', async () => {
    const s = await server({ highWaterMarkBytes: 1, lowWaterMarkBytes: 1, maxInFlightMessages: 1, messageBurst: 10_000 });
    const c = await RawClient.connect(s.wsUrl);
    for (let i = 0; i < 500; i++) c.ws.send(i % 2 === 0 ? '{}' : 'not json');
    await waitUntil(() => c.messages.length === 500, '500 replies', 10_000);
    expect(c.messages.every((m, i) => m.type === 'error' && (i % 2 === 0 ? !/JSON/.test(m.message) : /JSON/.test(m.message)))).toBe(true);
  });

  it('runs the application routes before the 404', async () => {
    const s = await server(
      {},
      {
        extraRoutes: (req, res) => {
          if (req.url !== '/paid') return false;
          res.writeHead(402, { 'content-type': 'application/json' }).end('{"code":"PAYMENT_REQUIRED","message":"pay first"}');
          return true;
        },
      },
    );
    expect(await getJson(`${s.url}/paid`)).toMatchObject({ status: 402, body: { code: 'PAYMENT_REQUIRED' } });
    expect(await getJson(`${s.url}/other`)).toMatchObject({ status: 404, body: { code: 'NOT_FOUND' } });
  });

  it('validates limits', () => {
    expect(serverLimits()).toMatchObject({ maxConnections: 1024, maxConnectionsPerAddress: 16, maxSockets: 2112, messagesPerSecond: 20_000 });
    expect(serverLimits({ maxConnections: 10, maxConnectionsPerAddress: 2 }).maxSockets).toBe(84);
    expect(() => serverLimits({ maxConnections: 0 })).toThrow(RangeError);
    expect(() => serverLimits({ messagesPerSecond: 1.5 })).toThrow(RangeError);
    expect(() => serverLimits({ maxConnectionsPerAddress: 2000 })).toThrow(/maxConnectionsPerAddress/);
    expect(() => serverLimits({ lowWaterMarkBytes: 2 * 1024 * 1024 })).toThrow(/lowWaterMarkBytes/);
    expect(() => serverLimits({ idleTimeoutMs: 1000, pingIntervalMs: 1000 })).toThrow(/idleTimeoutMs/);
    expect(() => serverLimits({ maxConections: 5 } as Partial<ServerLimits>)).toThrow(TypeError);
  });
});

describe('backpressure (a connection over a stand-in socket)', () => {
  /** Just enough of a ws WebSocket to watch PayeeConnection pause and resume reading. */
  class FakeSocket extends EventEmitter {
    readyState: number = WebSocket.OPEN;
    bufferedAmount = 0;
    isPaused = false;
    readonly writes: (() => void)[] = [];
    readonly sent: string[] = [];
    /** ws's `send(data, options, cb)`: a text frame comes as a string or (payments, acks) as its bytes. */
    send(data: string | Buffer, options: { binary?: boolean }, cb: () => void) {
      if (options.binary) throw new Error('the connection sends text frames only');
      this.sent.push(typeof data === 'string' ? data : data.toString('utf8'));
      this.writes.push(cb);
    }
    pause() {
      this.isPaused = true;
    }
    resume() {
      this.isPaused = false;
    }
    ping() {}
    close() {
      this.readyState = WebSocket.CLOSED;
      this.emit('close', 1000, Buffer.alloc(0));
    }
    terminate() {
      this.close();
    }
  }

  /** A frame that decodes (the connection hands only decoded messages to the service). */
  const A_FRAME = encodeMessage({ v: 1, type: 'error', code: 'MALFORMED_MESSAGE', message: 'x', action: 'reject' });

  it('stops reading above the high-water mark and resumes at the low-water mark', async () => {
    const fake = new FakeSocket();
    const limits = serverLimits({ highWaterMarkBytes: 1000, lowWaterMarkBytes: 100, messageBurst: 100 });
    const echo = { handle: async (_message: Message, link: { send(m: Message): void }) => link.send({ v: 1, type: 'error', code: 'MALFORMED_MESSAGE', message: 'x', action: 'reject' }) };
    const conn = new PayeeConnection(fake as unknown as WebSocket, { service: echo, limits, metrics: new PayeeMetrics() });
    fake.emit('message', Buffer.from(A_FRAME), false);
    await new Promise((r) => setImmediate(r));
    expect(fake.isPaused).toBe(false);
    fake.bufferedAmount = 5000; // the payer stopped reading
    fake.emit('message', Buffer.from(A_FRAME), false);
    await new Promise((r) => setImmediate(r));
    expect(fake.isPaused).toBe(true);
    fake.bufferedAmount = 500; // draining, not yet low
    fake.writes[0]?.();
    expect(fake.isPaused).toBe(true);
    fake.bufferedAmount = 50;
    fake.writes[1]?.();
    expect(fake.isPaused).toBe(false);
    await conn.close(1001, 'test');
  });

  it('decodes each frame once, at the boundary: one that does not decode is answered there and never reaches the service', async () => {
    const fake = new FakeSocket();
    const handled: Message[] = [];
    const service = { handle: async (message: Message) => void handled.push(message) };
    const conn = new PayeeConnection(fake as unknown as WebSocket, { service, limits: serverLimits(), metrics: new PayeeMetrics() });
    const payment = msg('payment', { channelId: `${'ab'.repeat(32)}:0`, totalSat: 7n, signature: new Uint8Array(64) });
    fake.emit('message', Buffer.from('{"v":1,"type":"payment"}'), false);
    fake.emit('message', Buffer.from(encodeMessage(payment)), false);
    await waitUntil(() => handled.length === 1, 'the payment handed to the service');
    expect(handled).toEqual([payment]);
    const replies = fake.sent.map((t) => decodeMessage(t)).filter((m) => m.type !== 'challenge');
    expect(replies).toMatchObject([{ type: 'error', code: 'MALFORMED_MESSAGE', action: 'reject' }]);
    expect(conn.inFlightMessages).toBe(0);
    await conn.close(1001, 'test');
  });

  it('stops reading while maxInFlightMessages frames are being processed', async () => {
    const fake = new FakeSocket();
    const limits = serverLimits({ maxInFlightMessages: 2 });
    const pending: (() => void)[] = [];
    const slow = { handle: () => new Promise<void>((resolve) => pending.push(resolve)) };
    const conn = new PayeeConnection(fake as unknown as WebSocket, { service: slow, limits, metrics: new PayeeMetrics() });
    fake.emit('message', Buffer.from(A_FRAME), false);
    expect(fake.isPaused).toBe(false);
    fake.emit('message', Buffer.from(A_FRAME), false);
    expect(fake.isPaused).toBe(true);
    expect(conn.inFlightMessages).toBe(2);
    await new Promise((r) => setImmediate(r)); // frames reach the service on the next turn
    expect(pending).toHaveLength(2);
    pending[0]?.();
    await new Promise((r) => setImmediate(r));
    expect(fake.isPaused).toBe(false);
    pending[1]?.();
    await conn.close(1001, 'test');
  });
});

describe('the payer link across a payee restart', () => {
  it('reconnects with backoff and delivers what was sent while the payee was down', async () => {
    const first = await server();
    const port = Number(new URL(first.url).port);
    const events: string[] = [];
    const { payer, link } = wsPayer(first.wsUrl, { onOpen: () => events.push('open'), onClose: (e) => events.push(`close ${e.code}`) });
    await link.ready();
    const channelId = await openChannel(payer);
    for (let i = 0; i < 10; i++) await payer.pay(100n);

    await first.close(); // the payee goes away: sockets closed with 1001
    await waitUntil(() => !link.connected, 'the link to notice');
    expect(events).toEqual(['open', 'close 1001']);
    const paying = payer.pay(250n); // sent while down: queued
    await waitUntil(() => link.queuedMessages === 1, 'the payment to be queued');
    const failures = new Set<unknown>(); // each failed attempt leaves its own reason
    await waitUntil(() => {
      if (link.lastFailure !== null) failures.add(link.lastFailure);
      return failures.size >= 3;
    }, 'a few failed reconnection attempts');

    await server({}, { port }); // the payee is back on the same port
    expect(await paying).toBe(1_250n);
    expect(events).toEqual(['open', 'close 1001', 'open']);
    expect(service.channel(channelId)).toMatchObject({ paidSat: 1_250n });
    expect(link.droppedMessages).toBe(0);
  });

  it('ready() rejects once the link is closed; sends after close are dropped', async () => {
    const s = await server();
    const link: WsPeerLink = connectPayee(s.wsUrl, { onMessage: () => undefined });
    await link.ready();
    await link.close();
    await expect(link.ready()).rejects.toBeInstanceOf(LinkClosedError);
    link.send({ v: 1, type: 'close-request', channelId: `${'0'.repeat(64)}:0` });
    expect(link.droppedMessages).toBe(1);
  });

  it('cuts and reopens a connection on which nothing arrives (a dead payee)', async () => {
    const s = await server({ pingIntervalMs: 10_000, idleTimeoutMs: 20_000 }); // pings too rare for the client
    let opens = 0;
    const link = connectPayee(s.wsUrl, { onMessage: () => undefined, onOpen: () => opens++, idleTimeoutMs: 150, reconnect: { minDelayMs: 10, maxDelayMs: 10 } });
    cleanups.push(() => link.close());
    await waitUntil(() => opens >= 3, 'two reconnections', 5_000);
  });

  it('gives up on a payee never reached by connectTimeoutMs, with the cause; a connected link keeps reconnecting', async () => {
    const refused = connectPayee('ws://127.0.0.1:9/v1/ws', { onMessage: () => undefined, connectTimeoutMs: 300, reconnect: { minDelayMs: 20, maxDelayMs: 20 } });
    const err = await refused.ready().then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(PayeeUnreachableError);
    expect(err).toMatchObject({ code: 'PAYEE_UNREACHABLE', url: 'ws://127.0.0.1:9/v1/ws', failure: { type: 'network', code: 'ECONNREFUSED' } });
    expect(String((err as Error).message)).toMatch(/^cannot connect to ws:\/\/127\.0\.0\.1:9\/v1\/ws within 0\.3 s: .*ECONNREFUSED/);

    const busy = http.createServer();
    busy.on('upgrade', (_req, socket: Socket) => socket.end('HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nContent-Length: 0\r\n\r\n'));
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => busy.close(() => resolve())));
    const toBusy = connectPayee(`ws://127.0.0.1:${(busy.address() as { port: number }).port}/v1/ws`, { onMessage: () => undefined, reconnect: false });
    await expect(toBusy.ready()).rejects.toMatchObject({ code: 'PAYEE_BUSY', failure: { type: 'http', status: 429, retryAfter: '2' } });

    // Connected once: the deadline no longer applies, drops are retried.
    const s = await server();
    let opens = 0;
    const link = connectPayee(s.wsUrl, { onMessage: () => undefined, onOpen: () => opens++, connectTimeoutMs: 200, idleTimeoutMs: 100, reconnect: { minDelayMs: 10, maxDelayMs: 10 } });
    cleanups.push(() => link.close());
    await waitUntil(() => opens >= 3, 'reconnections past the connect deadline', 5_000);
  });

  it('bounds the queue while down, dropping the oldest', async () => {
    const link = connectPayee('ws://127.0.0.1:9/v1/ws', { onMessage: () => undefined, maxQueuedMessages: 3, reconnect: { minDelayMs: 1000, maxDelayMs: 1000 } });
    cleanups.push(() => link.close());
    for (let i = 0; i < 5; i++) link.send({ v: 1, type: 'close-request', channelId: `${'0'.repeat(64)}:${i}` });
    expect(link.queuedMessages).toBe(3);
    expect(link.droppedMessages).toBe(2);
  });
});

describe('pure pieces', () => {
  it('token bucket: a burst, then the sustained rate', () => {
    const b = new TokenBucket(10, 3, 0);
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
    expect(b.take(50)).toBe(false); // half a token
    expect(b.take(100)).toBe(true); // one token per 100 ms
    expect(b.take(10_000) && b.take(10_000) && b.take(10_000)).toBe(true);
    expect(b.take(10_000)).toBe(false); // refills only up to the burst
    expect(b.take(5_000)).toBe(false); // a clock going backwards refills nothing
  });

  it('backoff: doubles from min, capped at max, jittered between half and all of it', () => {
    const r = { minDelayMs: 100, maxDelayMs: 1000 };
    expect([0, 1, 2, 3, 4, 50].map((a) => backoffDelay(a, r, () => 1))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect([0, 1, 2, 3, 4].map((a) => backoffDelay(a, r, () => 0))).toEqual([50, 100, 200, 400, 500]);
  });
});
