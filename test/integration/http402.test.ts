/**
 * Pay-per-request HTTP (402) end to end on a real btcd, over real sockets on 127.0.0.1: a priced
 * node:http route and a Hono app in front of a payee on a SQLite store, paid by the paying fetch
 * over channels it opens itself. The payee's books, the paywall's, the payer's and the close on
 * chain must agree to the satoshi; every refused header is a 402 with a code and changes nothing.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/local-pair.js';
import { toHex } from '../../src/protocol/bytes.js';
import { formatPaymentHeader, Paywall, type PaymentRequiredBody } from '../../src/transport/paywall.js';
import { paywallHono, paywallMiddleware } from '../../src/transport/paywall-http.js';
import {
  closeOnChain,
  closeServer,
  FEE_RATE,
  get,
  listen,
  paidSat,
  payingSide,
  signedHeader,
  startPayee,
  type PayeeSide,
  type PayingSide,
} from '../helpers/http402-env.js';
import { startFundedEnv, type RegtestEnv } from '../helpers/regtest-env.js';

const CAPACITY = 1_000_000n;
const PRICE = 7n;

let env: RegtestEnv;
let payee: PayeeSide;
/** Everything a test starts, closed in afterAll even when a test failed half-way. */
const cleanups: (() => Promise<unknown> | void)[] = [];

beforeAll(async () => {
  env = await startFundedEnv();
  payee = await startPayee(env);
});
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await payee?.close();
  await env?.stop();
});

function newPaywall(): Paywall {
  return new Paywall({ payee: payee.service, channelUrl: payee.server.wsUrl, network: 'regtest' });
}

function newPayer(maxPriceSat = 100n): PayingSide {
  const side = payingSide(env, { capacitySat: CAPACITY, maxPriceSat });
  cleanups.push(() => side.close());
  return side;
}

/** A node:http server with a route priced by `paywallMiddleware` and a free route; counts what it answered. */
async function pricedServer(paywall: Paywall, route: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end('paid content')) {
  const answered: { path: string; status: number }[] = [];
  const priced = paywallMiddleware(paywall, { priceSat: () => PRICE });
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    res.once('finish', () => answered.push({ path, status: res.statusCode }));
    if (path === '/free') res.end('free content');
    else if (path === '/priced') priced(req, res, () => route(req, res));
    else res.writeHead(404).end();
  });
  const url = await listen(server);
  cleanups.push(() => closeServer(server));
  return { server, url, answered };
}

/** The payee's, the paywall's and the payer's view of a channel, for "nothing changed" checks. */
function books(paywall: Paywall, side: PayingSide) {
  const client = side.client();
  const id = client.channel.id;
  const s = client.state;
  return {
    payeePaidSat: paidSat(payee.service.channel(id)),
    paywall: paywall.account(id),
    payerSignedSat: s?.type === 'Open' ? s.signedTotalSat : undefined,
  };
}

function expectRefusal(answer: { status: number; body: unknown }, code: string, dueSat: bigint = PRICE): PaymentRequiredBody {
  expect(answer.status).toBe(402);
  const body = answer.body as PaymentRequiredBody;
  expect(body).toMatchObject({ code, priceSat: Number(PRICE), dueSat: Number(dueSat), channelUrl: payee.server.wsUrl, network: 'regtest' });
  expect(typeof body.message).toBe('string');
  return body;
}

describe('HTTP 402 on regtest', () => {
  it('node:http: 1,000 paid requests; payee, paywall, payer and the close on chain agree to the satoshi', async () => {
    const paywall = newPaywall();
    const { url, answered } = await pricedServer(paywall);
    const payer = newPayer();

    const free = await get(`${url}/free`);
    expect(free).toMatchObject({ status: 200, text: 'free content' });

    const started = performance.now();
    for (let i = 0; i < 1000; i++) {
      const response = await payer.fetch(`${url}/priced`);
      expect(response.status).toBe(200);
      expect(await response.text()).toBe('paid content');
      expect(response.headers.get('paychan-credit')).toBe('0');
    }
    const elapsedMs = performance.now() - started;
    console.log(`1,000 paid requests (incl. opening the channel) in ${Math.round(elapsedMs)} ms`);

    // At the server: exactly one 402 (the very first priced request), then 1,000 answers.
    const priced = answered.filter((a) => a.path === '/priced');
    expect(priced).toHaveLength(1001);
    expect(priced[0]!.status).toBe(402);
    expect(priced.slice(1).every((a) => a.status === 200)).toBe(true);
    expect(payer.channelRequests()).toBe(1);
    expect(payer.seen.filter((s) => s.status === 402).map((s) => s.body?.code)).toEqual(['PAYMENT_REQUIRED']);

    const client = payer.client();
    const id = client.channel.id;
    const total = 1000n * PRICE;
    const state = client.state;
    if (state?.type !== 'Open') throw new Error(`payer state ${state?.type}`);
    expect(paidSat(payee.service.channel(id))).toBe(total);
    expect(paywall.account(id)).toEqual({ chargedSat: total, creditSat: 0n, lastTotalSat: total });
    expect(state.signedTotalSat).toBe(total);
    expect(state.ackedTotalSat).toBe(total);
    // The payee's durable store says the same as its memory.
    const stored = (await payee.store.loadPayeeChannels()).find((c) => 'channel' in c.state && c.state.channel.id === id);
    expect(paidSat(stored?.state)).toBe(total);

    // Close with the newest payment; the node's transaction splits the capacity exactly.
    const close = await payee.service.close(id, FEE_RATE);
    await env.mine(1);
    await waitUntil(() => payee.service.channel(id)?.type === 'Closed', 'the payee to see its close confirmed');
    await waitUntil(() => client.state?.type === 'Closed', 'the payer to learn of the close');
    const chain = await closeOnChain(env, close.txid, CAPACITY, payee.payoutScript, payer.payoutScript);
    expect(chain.confirmations).toBe(1);
    expect(chain.spends).toEqual([id]);
    expect(chain.outputs).toBe(2);
    expect(chain.feeSat).toBe(close.feeSat);
    expect(chain.payeeSat).toBe(total - chain.feeSat);
    expect(chain.payerSat).toBe(CAPACITY - total);
    expect(chain.payeeSat + chain.payerSat + chain.feeSat).toBe(CAPACITY);
    expect(Number(chain.feeSat)).toBeGreaterThanOrEqual(chain.vsize * FEE_RATE);

    // A closed channel buys nothing more.
    const after = await get(`${url}/priced`, signedHeader(env, client.channel, payer.channelKey.privateKey, total + PRICE));
    expectRefusal(after, 'CHANNEL_NOT_OPEN');
    expect(paywall.account(id)).toEqual({ chargedSat: total, creditSat: 0n, lastTotalSat: total });
  });

  it('refuses a missing, malformed, bad, replayed, stale, short or foreign payment with 402 and a code, changing nothing', async () => {
    const paywall = newPaywall();
    const { url, answered } = await pricedServer(paywall);
    const payer = newPayer();
    const priced = `${url}/priced`;

    const first = await payer.fetch(priced); // opens the channel and pays 7
    expect(first.status).toBe(200);
    const client = payer.client();
    const channel = client.channel;
    const key = payer.channelKey.privateKey;
    const sign = (total: bigint, signedTotal = total, id = channel.id) => signedHeader(env, channel, key, total, signedTotal, id);
    const admitted = (answer: { status: number; headers: Headers }, total: bigint) => {
      expect(answer.status).toBe(200);
      expect(answer.headers.get('paychan-ack')).toBe(`${channel.id} ${total}`);
      client.acknowledge(total);
    };
    expect(books(paywall, payer)).toEqual({ payeePaidSat: 7n, paywall: { chargedSat: 7n, creditSat: 0n, lastTotalSat: 7n }, payerSignedSat: 7n });

    // A second valid payment, sent by hand: the header to replay below.
    const second = formatPaymentHeader(await client.authorize(PRICE));
    admitted(await get(priced, second), 14n);
    const settled = books(paywall, payer);
    expect(settled).toEqual({ payeePaidSat: 14n, paywall: { chargedSat: 14n, creditSat: 0n, lastTotalSat: 14n }, payerSignedSat: 14n });
    const served = answered.filter((a) => a.status === 200).length;

    // No header.
    expectRefusal(await get(priced), 'PAYMENT_REQUIRED');
    expectRefusal(await get(priced, ''), 'PAYMENT_REQUIRED');
    // Not in the header's form.
    const goodSig = toHex(new Uint8Array(64).fill(1));
    for (const malformed of [
      'garbage',
      `channel=${channel.id}, total=21`,
      `channel=${channel.id}, total=021, sig=${goodSig}`, // leading zero
      `channel=${channel.id}, total=-21, sig=${goodSig}`,
      `channel=${channel.id.toUpperCase()}, total=21, sig=${goodSig}`, // uppercase hex
      `channel=${channel.id}, total=21, sig=${goodSig.slice(2)}`, // 63 bytes
      `channel=${channel.id}, total=21, sig=${goodSig}, extra=1`,
      `total=21, channel=${channel.id}, sig=${goodSig}`, // order matters
      `channel=${channel.id}, total=99999999999999999, sig=${goodSig}`, // 17 digits
    ]) {
      expectRefusal(await get(priced, malformed), 'MALFORMED_MESSAGE');
    }
    expect(books(paywall, payer)).toEqual(settled);

    // Bad: a valid signature, but for another total than the header's.
    expectRefusal(await get(priced, sign(21n, 22n)), 'INVALID_SIGNATURE');
    // Bad: signed by someone else's key.
    expectRefusal(await get(priced, signedHeader(env, channel, randomBytes(32), 21n)), 'INVALID_SIGNATURE');
    expect(books(paywall, payer)).toEqual(settled);

    // Replayed: the very header that bought the last request.
    expectRefusal(await get(priced, second), 'PAYMENT_REPLAYED');
    // Stale: freshly and validly signed, but below the last total used (7 was used; 10 never was).
    expectRefusal(await get(priced, sign(10n)), 'AMOUNT_NOT_INCREASING');
    expectRefusal(await get(priced, sign(7n)), 'AMOUNT_NOT_INCREASING');
    expectRefusal(await get(priced, sign(1n)), 'AMOUNT_NOT_INCREASING');
    expect(books(paywall, payer)).toEqual(settled);

    // Totals the channel cannot pay: above capacity, or leaving dust change.
    // (No valid signature exists for these totals; the payee refuses on the total before the signature.)
    expectRefusal(await get(priced, sign(CAPACITY + 1n, 21n)), 'AMOUNT_EXCEEDS_CAPACITY');
    expectRefusal(await get(priced, sign(CAPACITY - 100n, 21n)), 'CHANGE_BELOW_DUST');
    // A channel the payee does not know (signature and all well-formed).
    const unknownId = `${toHex(randomBytes(32))}:0`;
    expectRefusal(await get(priced, sign(21n, 21n, unknownId)), 'UNKNOWN_CHANNEL');
    expect(books(paywall, payer)).toEqual(settled);
    expect(paidSat(payee.service.channel(channel.id))).toBe(14n);
    expect(payee.service.channel(unknownId)).toBeUndefined();

    // None of the refusals was served.
    expect(answered.filter((a) => a.status === 200).length).toBe(served);

    // Short: +3 on a 7-sat route is stored (the payee's money) and kept as credit; 4 more is due.
    const short = formatPaymentHeader(await client.authorize(3n));
    expectRefusal(await get(priced, short), 'INSUFFICIENT_PAYMENT', 4n);
    expect(paidSat(payee.service.channel(channel.id))).toBe(17n);
    expect(paywall.account(channel.id)).toEqual({ chargedSat: 14n, creditSat: 3n, lastTotalSat: 17n });
    // Resending it is a replay, and buys nothing.
    expectRefusal(await get(priced, short), 'PAYMENT_REPLAYED', 4n);
    // The next +4 is admitted: 3 credit + 4 = the price.
    const rest = await get(priced, formatPaymentHeader(await client.authorize(4n)));
    admitted(rest, 21n);
    expect(rest.headers.get('paychan-credit')).toBe('0');
    expect(paywall.account(channel.id)).toEqual({ chargedSat: 21n, creditSat: 0n, lastTotalSat: 21n });

    // A payment already made over the WebSocket cannot be reused as a header: it adds nothing,
    // and is refused as a replay (whoever sniffed it there cannot spend this paywall's credit).
    await client.pay(PRICE); // total 28, acknowledged over the link
    const s = client.state;
    if (s?.type !== 'Open' || !s.signature) throw new Error('no payment signature');
    const viaLink = formatPaymentHeader({ v: 1, type: 'payment', channelId: channel.id, totalSat: s.signedTotalSat, signature: s.signature });
    expectRefusal(await get(priced, viaLink), 'PAYMENT_REPLAYED', PRICE);
    expect(paywall.account(channel.id)).toEqual({ chargedSat: 21n, creditSat: 0n, lastTotalSat: 21n });
    expect(paidSat(payee.service.channel(channel.id))).toBe(28n);

    // The paying fetch carries on from the channel's newest total.
    const again = await payer.fetch(priced);
    expect(again.status).toBe(200);
    expect(books(paywall, payer)).toEqual({ payeePaidSat: 35n, paywall: { chargedSat: 28n, creditSat: 0n, lastTotalSat: 35n }, payerSignedSat: 35n });
    expect(client.state).toMatchObject({ type: 'Open', ackedTotalSat: 35n });

    // A paywall that lost its books (a payee restart) still lets no header buy twice: the
    // newest one adds nothing above what the payee stored, an older one is refused by the payee.
    const forgetful = newPaywall();
    const { url: url2 } = await pricedServer(forgetful);
    const newest = payer.seen.at(-1)?.header;
    expect(newest).toMatch(/^channel=.*, total=35, /);
    expectRefusal(await get(`${url2}/priced`, newest!), 'PAYMENT_REPLAYED', PRICE);
    expectRefusal(await get(`${url2}/priced`, second), 'AMOUNT_NOT_INCREASING', PRICE);
    expect(paidSat(payee.service.channel(channel.id))).toBe(35n);
    expect(forgetful.account(channel.id)).toEqual({ chargedSat: 0n, creditSat: 0n, lastTotalSat: 0n });
  });

  it('Hono: paywallHono on /api/*; 20 paid requests; the books agree', async () => {
    const paywall = newPaywall();
    const answered: { path: string; status: number }[] = [];
    const app = new Hono();
    app.use('*', async (c, next) => {
      await next();
      answered.push({ path: c.req.path, status: c.res.status });
    });
    app.use('/api/*', paywallHono(paywall, { priceSat: () => PRICE }));
    app.get('/api/data', (c) => c.json({ data: 'hono paid content' }));
    app.get('/free', (c) => c.text('free'));
    const server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s as Server));
    });
    cleanups.push(() => closeServer(server));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const payer = newPayer();

    expect(await get(`${url}/free`)).toMatchObject({ status: 200, text: 'free' });
    expectRefusal(await get(`${url}/api/data`), 'PAYMENT_REQUIRED');

    // 15 one after the other, then 5 at once (the paying fetch serializes them per origin).
    const check = async (response: Response) => {
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ data: 'hono paid content' });
    };
    for (let i = 0; i < 15; i++) await check(await payer.fetch(`${url}/api/data`));
    await Promise.all(Array.from({ length: 5 }, async () => check(await payer.fetch(`${url}/api/data`))));
    const api = answered.filter((a) => a.path === '/api/data');
    expect(api.map((a) => a.status)).toEqual([402, 402, ...Array<number>(20).fill(200)]);

    const client = payer.client();
    const id = client.channel.id;
    const total = 20n * PRICE;
    expect(books(paywall, payer)).toEqual({ payeePaidSat: total, paywall: { chargedSat: total, creditSat: 0n, lastTotalSat: total }, payerSignedSat: total });
    expect(client.state).toMatchObject({ type: 'Open', ackedTotalSat: total });

    // The Hono middleware refuses like the node:http one.
    const replayed = payer.seen.at(-1)?.header;
    expect(replayed).toMatch(/^channel=/);
    expectRefusal(await get(`${url}/api/data`, replayed!), 'PAYMENT_REPLAYED');
    expectRefusal(await get(`${url}/api/data`, 'channel=nope'), 'MALFORMED_MESSAGE');
    expectRefusal(await get(`${url}/api/data`, signedHeader(env, client.channel, payer.channelKey.privateKey, total + PRICE, total + 1n)), 'INVALID_SIGNATURE');
    expect(books(paywall, payer).paywall).toEqual({ chargedSat: total, creditSat: 0n, lastTotalSat: total });
    expect(paidSat(payee.service.channel(id))).toBe(total);
  });

  it('metered route: a dearer response leaves a debt the next request pays (dueSat > price); charged = Σ metered prices', async () => {
    const UPFRONT = 5n;
    const paywall = newPaywall();
    const metered: bigint[] = [];
    // Upfront 5 sat; the final price is 1 sat per body byte, the body's length set by ?n=.
    const route = paywallMiddleware(paywall, {
      priceSat: () => UPFRONT,
      meterSat: (_req, res) => {
        const sat = BigInt(Number(res.getHeader('content-length')));
        metered.push(sat);
        return sat;
      },
    });
    const server = createServer((req, res) => {
      const n = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('n'));
      route(req, res, () => res.writeHead(200, { 'content-length': n, 'content-type': 'text/plain' }).end('x'.repeat(n)));
    });
    const url = await listen(server);
    cleanups.push(() => closeServer(server));
    const payer = newPayer(100n);

    const sizes = [3, 20, 5, 40, 1, 12, 5];
    for (const n of sizes) {
      const response = await payer.fetch(`${url}/metered?n=${n}`);
      expect(response.status).toBe(200);
      expect(await response.text()).toBe('x'.repeat(n));
    }
    await waitUntil(() => metered.length === sizes.length, 'the last response to be metered');
    const sum = sizes.reduce((s, n) => s + BigInt(n), 0n);
    expect(metered).toEqual(sizes.map(BigInt));

    // 402s: the first (no channel yet), then one after each response dearer than the upfront
    // price whose debt the next upfront payment did not cover: each asks for more than the price.
    const refusals = payer.seen.filter((s) => s.status === 402).map((s) => ({ code: s.body!.code, priceSat: s.body!.priceSat, dueSat: s.body!.dueSat }));
    expect(refusals).toEqual([
      { code: 'PAYMENT_REQUIRED', priceSat: 5, dueSat: 5 },
      { code: 'INSUFFICIENT_PAYMENT', priceSat: 5, dueSat: 15 }, // after 20 bytes: debt 15, 2 credit, 3 paid upfront
      { code: 'INSUFFICIENT_PAYMENT', priceSat: 5, dueSat: 35 }, // after 40 bytes
      { code: 'INSUFFICIENT_PAYMENT', priceSat: 5, dueSat: 7 }, // after 12 bytes, 4 credit
    ]);
    for (const r of refusals.slice(1)) expect(BigInt(r.dueSat)).toBeGreaterThan(UPFRONT);

    const client = payer.client();
    const id = client.channel.id;
    const account = paywall.account(id);
    expect(account?.chargedSat).toBe(sum);
    expect(account?.creditSat).toBe(0n);
    expect(books(paywall, payer)).toEqual({ payeePaidSat: sum, paywall: { chargedSat: sum, creditSat: 0n, lastTotalSat: sum }, payerSignedSat: sum });
    expect(client.state).toMatchObject({ type: 'Open', ackedTotalSat: sum });
  });
});
