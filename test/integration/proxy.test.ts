/**
 * `paychan proxy` on a real btcd, in front of an upstream that is not Node: Python's
 * http.server plus an SSE endpoint (test/fixtures/upstream.py). The payee app runs as
 * `paychan proxy` runs it (startPayeeApp with the proxy mounted, one port); the payer is the
 * paying fetch over a channel it opens on chain. 500 paid requests, an SSE stream metered per
 * second and cut off when its payment runs out, an upstream 5xx credited back, a CORS
 * preflight; the upstream never sees a payment header; the close on chain matches the books.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import { address as baddress } from 'bitcoinjs-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPayeeApp, type PayeeApp } from '../../src/app/payee-app.js';
import { bitcoinjsNetwork } from '../../src/protocol/network.js';
import { corsPolicy } from '../../src/transport/cors.js';
import { SSE_EXHAUSTED_EVENT } from '../../src/proxy/http-proxy.js';
import { parsePriceTable } from '../../src/proxy/price-table.js';
import { createPaychanProxy } from '../../src/proxy/proxy.js';
import { decodePaymentRequiredHeader, decodePaymentResponseHeader } from '@x402/core/http';
import { wrapFetchWithPayment, x402Client } from '@x402/fetch';
import type { PayerClient } from '../../src/payer/payer-client.js';
import { connectPayee, type WsPeerLink } from '../../src/transport/ws-client.js';
import { PaychanClientScheme, satAsset, type ChannelOffer } from '../../src/x402/index.js';
import { proxyX402 } from '../../src/x402/proxy-binding.js';
import { regtestPayer } from '../helpers/regtest-peers.js';
import { waitUntil } from '../helpers/local-pair.js';
import { closeOnChain, FEE_RATE, log, openChannel, paidSat, payingSide, type PayingSide } from '../helpers/http402-env.js';
import { startFundedEnv, type RegtestEnv } from '../helpers/regtest-env.js';

const CAPACITY = 1_000_000n;
const FILE_PRICE = 3n;
const FAIL_PRICE = 5n;
const SSE_PER_SECOND = 2n;
const SSE_SECONDS = 2n;
const ORIGIN = 'https://app.example';

let env: RegtestEnv;
let dir: string;
let python: ChildProcessByStdio<null, Readable, Readable> | undefined;
let upstream: string;
let app: PayeeApp;
let payer: PayingSide | undefined;
let x402Link: WsPeerLink | undefined;

async function startPython(folder: string): Promise<string> {
  const child = spawn('python3', [path.join(import.meta.dirname, '../fixtures/upstream.py'), folder], { stdio: ['ignore', 'pipe', 'pipe'] });
  python = child;
  child.stderr.on('data', (d: Buffer) => log?.(`python: ${d.toString()}`));
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    const m = /^listening (\d+)$/.exec(line);
    if (m) return `http://127.0.0.1:${m[1]}`;
  }
  throw new Error('the Python upstream exited before listening');
}

beforeAll(async () => {
  env = await startFundedEnv();
  dir = mkdtempSync(path.join(tmpdir(), 'paychan-proxy-'));
  const www = path.join(dir, 'www');
  mkdirSync(www);
  writeFileSync(path.join(www, 'data.txt'), 'paid content from python\n');
  upstream = await startPython(www);
  const prices = parsePriceTable({
    routes: [
      { path: '/_stats' },
      { path: '/data.txt', method: 'GET', perRequestSat: Number(FILE_PRICE) },
      { path: '/fail', perRequestSat: Number(FAIL_PRICE) },
      { path: '/sse', method: 'GET', perSecondSat: Number(SSE_PER_SECOND), prepaySeconds: Number(SSE_SECONDS) },
    ],
  });
  app = await startPayeeApp({
    network: 'regtest',
    backend: env.backend,
    dataDir: path.join(dir, 'payee'),
    host: '127.0.0.1',
    port: 0,
    priceSat: 1n,
    fallbackFeeRateSatPerVb: FEE_RATE,
    log: (l) => log?.(`payee: ${l}`),
    mount: (paywall, payee) => createPaychanProxy({ upstream, prices, paywall, cors: corsPolicy([ORIGIN]), x402: proxyX402(payee), log: (l) => log?.(l) }),
  });
});

afterAll(async () => {
  x402Link?.close();
  await payer?.close();
  await app?.close();
  python?.kill();
  await env?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function upstreamStats(): Promise<{ requests: number; withPaymentHeader: number; forwardedFor: number }> {
  return (await (await fetch(`${upstream}/_stats`)).json()) as { requests: number; withPaymentHeader: number; forwardedFor: number };
}

describe('paychan proxy on regtest, in front of Python', () => {
  it('500 paid requests, an unpriced 5xx, an SSE stream cut off when its payment runs out; the close matches the books', async () => {
    const base = app.server.url;
    payer = payingSide(env, { capacitySat: CAPACITY, maxPriceSat: 100n });
    for (let i = 0; i < 500; i++) {
      const r = await payer.fetch(`${base}/data.txt`);
      expect(r.status).toBe(200);
      expect(await r.text()).toBe('paid content from python\n');
    }
    const client = payer.client();
    const id = client.channel.id;
    expect(payer.channelRequests()).toBe(1);
    expect(payer.seen.filter((s) => s.status === 402).map((s) => s.body?.code)).toEqual(['PAYMENT_REQUIRED']);
    expect(app.paywall.account(id)).toEqual({ chargedSat: 500n * FILE_PRICE, creditSat: 0n, lastTotalSat: 500n * FILE_PRICE });

    // The upstream fails: its 500 passes through, and what was paid for it becomes credit.
    const fail = await payer.fetch(`${base}/fail`);
    expect(fail.status).toBe(500);
    expect(await fail.json()).toEqual({ error: 'the upstream failed on purpose' });
    const afterFail = app.paywall.account(id)!;
    expect(afterFail.chargedSat).toBe(500n * FILE_PRICE);
    expect(afterFail.creditSat).toBe(FAIL_PRICE);
    expect(fail.headers.get('paychan-credit')).toBe(FAIL_PRICE.toString());

    // SSE metered per second: the prepaid seconds buy a stream that ends with the proxy's event.
    const sse = await payer.fetch(`${base}/sse?interval=0.1`);
    expect(sse.status).toBe(200);
    expect(sse.headers.get('content-type')).toBe('text/event-stream');
    const text = await sse.text();
    expect(text).toMatch(/^data: tick 0\n\n/);
    expect(text.endsWith(`event: ${SSE_EXHAUSTED_EVENT}\ndata: {"reason":"time"}\n\n`)).toBe(true);
    const ticks = text.match(/data: tick/g)?.length ?? 0;
    expect(ticks).toBeGreaterThan(1);
    await waitUntil(() => app.paywall.account(id)!.chargedSat === 500n * FILE_PRICE + SSE_PER_SECOND * SSE_SECONDS, 'the stream settled');

    // One more paid request (it uses the 5xx's credit first).
    expect((await payer.fetch(`${base}/data.txt`)).status).toBe(200);
    const books = app.paywall.account(id)!;
    const charged = 501n * FILE_PRICE + SSE_PER_SECOND * SSE_SECONDS;
    expect(books.chargedSat).toBe(charged);
    expect(books.lastTotalSat).toBe(books.chargedSat + books.creditSat);
    const total = books.lastTotalSat;
    expect(paidSat(app.service.channel(id))).toBe(total);

    // The upstream saw every forwarded request with X-Forwarded-For and never a payment header.
    const stats = await upstreamStats();
    expect(stats.requests).toBe(500 + 1 + 1 + 1);
    expect(stats.withPaymentHeader).toBe(0);
    expect(stats.forwardedFor).toBe(stats.requests);

    // The close on chain pays what the books say.
    const close = await app.service.close(id, FEE_RATE);
    await env.mine(1);
    await waitUntil(() => app.service.channel(id)?.type === 'Closed', 'the payee to see its close confirmed');
    const payeeScript = baddress.toOutputScript(app.payoutAddress, bitcoinjsNetwork('regtest'));
    const chain = await closeOnChain(env, close.txid, CAPACITY, payeeScript, payer.payoutScript);
    expect(chain.payeeSat).toBe(total - chain.feeSat);
    expect(chain.payerSat).toBe(CAPACITY - total);
    expect(chain.feeSat).toBe(close.feeSat);
  });

  it('answers a CORS preflight as a browser needs, without payment and without the upstream', async () => {
    const before = (await upstreamStats()).requests;
    const pre = await fetch(`${app.server.url}/data.txt`, {
      method: 'OPTIONS',
      headers: { origin: ORIGIN, 'access-control-request-method': 'GET', 'access-control-request-headers': 'paychan-payment' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(pre.headers.get('access-control-allow-methods')).toBe('GET');
    expect(pre.headers.get('access-control-allow-headers')).toBe('paychan-payment');
    expect(pre.headers.get('vary')).toMatch(/Origin/);
    const challenge = await fetch(`${app.server.url}/data.txt`, { headers: { origin: ORIGIN } });
    expect(challenge.status).toBe(402);
    expect(challenge.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(challenge.headers.get('access-control-expose-headers')?.split(', ')).toEqual(expect.arrayContaining(['paychan-ack', 'paychan-credit', 'payment-required', 'www-authenticate']));
    expect(challenge.headers.get('payment-required')).toBeTruthy();
    expect(challenge.headers.get('www-authenticate')).toMatch(/^Paychan /);
    expect((await upstreamStats()).requests).toBe(before);
  });

  it('takes x402 payments: the official @x402/fetch client with paychan’s scheme pays through the proxy, in the same books', async () => {
    const before = await upstreamStats();
    let opened: PayerClient | undefined;
    const channelFor = async (offer: ChannelOffer): Promise<PayerClient> => {
      const holder: { client?: PayerClient } = {};
      x402Link = connectPayee(offer.channelUrl, { onMessage: (text) => holder.client?.receive(text), onOpen: () => holder.client?.resume() });
      const client = regtestPayer(env, x402Link, { channelKey: env.wallet.nextChannelKey(), fundingFeeRateSatPerVb: FEE_RATE });
      holder.client = client;
      await x402Link.ready();
      await openChannel(env, client, CAPACITY, 'spilman-v2');
      opened = client;
      return client;
    };
    const regtest = 'bip122:0f9188f13cb7b2c71f2a335e3a4fc328';
    const buyer = new x402Client()
      .register('bip122:*', new PaychanClientScheme({ channelFor, maxPriceSat: 100n }))
      .setSpendControls({ allowedAssets: [{ network: regtest, asset: satAsset('regtest'), maxAmountPerPayment: '100' }] });
    const signatures: string[] = [];
    const recording: typeof fetch = (input, init) => {
      const request = new Request(input, init);
      const signature = request.headers.get('payment-signature');
      if (signature) signatures.push(signature);
      return fetch(request);
    };
    const paidFetch = wrapFetchWithPayment(recording, buyer);
    const N = 20n;
    for (let i = 0n; i < N; i++) {
      const r = await paidFetch(`${app.server.url}/data.txt`);
      expect(r.status).toBe(200);
      expect(await r.text()).toBe('paid content from python\n');
      expect(decodePaymentResponseHeader(r.headers.get('payment-response')!)).toMatchObject({ success: true, network: regtest });
    }
    const id = opened!.channel.id;
    expect(app.paywall.account(id)).toEqual({ chargedSat: N * FILE_PRICE, creditSat: 0n, lastTotalSat: N * FILE_PRICE });
    expect(paidSat(app.service.channel(id))).toBe(N * FILE_PRICE);

    // A replayed payload buys nothing: a 402 naming why, nothing stored, nothing forwarded.
    const replay = await fetch(`${app.server.url}/data.txt`, { headers: { 'payment-signature': signatures.at(-1)! } });
    expect(replay.status).toBe(402);
    expect(((await replay.json()) as { code: string }).code).toBe('PAYMENT_REPLAYED');
    expect(decodePaymentRequiredHeader(replay.headers.get('payment-required')!).accepts[0]).toMatchObject({ scheme: 'paychan', network: regtest, amount: FILE_PRICE.toString(), payTo: app.server.wsUrl });
    // Garbage in the header: a 402 too, before the payee sees anything.
    const garbage = await fetch(`${app.server.url}/data.txt`, { headers: { 'payment-signature': 'not-base64-json' } });
    expect(garbage.status).toBe(402);
    expect(((await garbage.json()) as { code: string }).code).toBe('MALFORMED_MESSAGE');
    expect(app.paywall.account(id)!.lastTotalSat).toBe(N * FILE_PRICE);

    const after = await upstreamStats();
    expect(after.requests - before.requests).toBe(Number(N));
    expect(after.withPaymentHeader).toBe(0);
  });
});
