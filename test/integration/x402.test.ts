/**
 * x402 with paychan's scheme, end to end on a real btcd over real sockets on 127.0.0.1: the
 * official `@x402/express` and `@x402/hono` middleware with paychan's server scheme and
 * in-process facilitator, paid by the official `@x402/fetch` client with paychan's client
 * scheme over channels it opens itself. The payee's, the paywall's and the payer's books and
 * the close on chain must agree to the satoshi; every refused payload is a 402 carrying the
 * scheme's reason, and stores nothing.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { decodePaymentRequiredHeader, decodePaymentResponseHeader, decodePaymentSignatureHeader, encodePaymentSignatureHeader } from '@x402/core/http';
import type { PaymentPayload } from '@x402/core/types';
import { paymentMiddleware, x402ResourceServer } from '@x402/express';
import { wrapFetchWithPayment, x402Client } from '@x402/fetch';
import { paymentMiddleware as honoPaymentMiddleware, x402ResourceServer as honoResourceServer } from '@x402/hono';
import express from 'express';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/local-pair.js';
import { closeOnChain, closeServer, FEE_RATE, listen, log, openChannel, paidSat, startPayee, type PayeeSide } from '../helpers/http402-env.js';
import { regtestPayer } from '../helpers/regtest-peers.js';
import { startFundedEnv, type RegtestEnv } from '../helpers/regtest-env.js';
import type { PayerClient } from '../../src/payer/payer-client.js';
import { bitcoinjsNetwork } from '../../src/protocol/network.js';
import { payeePolicy } from '../../src/protocol/policy.js';
import { Paywall } from '../../src/transport/paywall.js';
import { connectPayee, type WsPeerLink } from '../../src/transport/ws-client.js';
import { encodePayload, PaychanClientScheme, paychanX402, satAsset, type ChannelOffer, type PaychanX402 } from '../../src/x402/index.js';
import { address as baddress } from 'bitcoinjs-lib';

const CAPACITY = 1_000_000n;
const PRICE = 7n;
const REGTEST = 'bip122:0f9188f13cb7b2c71f2a335e3a4fc328';

let env: RegtestEnv;
let payee: PayeeSide;
const cleanups: (() => Promise<unknown> | void)[] = [];

beforeAll(async () => {
  env = await startFundedEnv();
  payee = await startPayee(env);
  // The network id is regtest's genesis hash prefix, as the node itself reports it.
  const genesis = await env.backend.getBlock(0);
  expect(`bip122:${genesis.hash.slice(0, 32)}`).toBe(REGTEST);
});
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await payee?.close();
  await env?.stop();
});

/** The seller's pieces: the paywall (books) and paychan's scheme halves on it. */
function seller(): { paywall: Paywall; x402: PaychanX402 } {
  const paywall = new Paywall({ payee: payee.service, channelUrl: payee.server.wsUrl, network: 'regtest' });
  const x402 = paychanX402({ paywall, payee: payee.service, channelUrl: payee.server.wsUrl, policy: payeePolicy({ network: 'regtest' }) });
  return { paywall, x402 };
}

function routes(x402: PaychanX402, paths: readonly string[]) {
  return Object.fromEntries(
    paths.map((path) => [`GET ${path}`, { accepts: { scheme: 'paychan', price: `${PRICE} sat`, network: x402.network, payTo: payee.server.wsUrl }, description: 'paid content' }]),
  );
}

/** An express app on node:http with priced routes; counts what its handlers served. */
async function expressSeller(x402: PaychanX402) {
  const served: string[] = [];
  const app = express();
  const resourceServer = new x402ResourceServer(x402.facilitator).register(x402.network, x402.server);
  app.use(paymentMiddleware(routes(x402, ['/priced', '/fails']), resourceServer));
  app.get('/free', (_req, res) => void res.send('free content'));
  app.get('/priced', (_req, res) => {
    served.push('/priced');
    res.send('paid content');
  });
  app.get('/fails', (_req, res) => {
    served.push('/fails');
    res.status(500).send('the handler failed');
  });
  const server = createServer(app);
  const url = await listen(server);
  cleanups.push(() => closeServer(server));
  return { url, served };
}

/** A buyer: the official x402 fetch with paychan's client scheme, whose channelFor opens a real channel. */
function buyer() {
  const channelKey = env.wallet.nextChannelKey();
  const payoutScript = baddress.toOutputScript(env.wallet.changeAddress(), bitcoinjsNetwork('regtest'));
  const offers: ChannelOffer[] = [];
  const sent: { status: number; payload: PaymentPayload | null; headers: Headers }[] = [];
  let opened: PayerClient | undefined;
  let link: WsPeerLink | undefined;
  cleanups.push(() => link?.close());

  const channelFor = async (offer: ChannelOffer): Promise<PayerClient> => {
    offers.push(offer);
    const holder: { client?: PayerClient } = {};
    link = connectPayee(offer.channelUrl, {
      onMessage: (text) => holder.client?.receive(text),
      onOpen: () => holder.client?.resume(),
      reconnect: { minDelayMs: 20, maxDelayMs: 200 },
      log: log && ((l) => log!(`link: ${l}`)),
    });
    const client = regtestPayer(env, link, { channelKey, payoutScript, fundingFeeRateSatPerVb: FEE_RATE, log: log && ((l) => log!(`payer: ${l}`)) });
    holder.client = client;
    await link.ready();
    await openChannel(env, client, CAPACITY, offer.variants.includes('spilman-v2') ? 'spilman-v2' : 'spilman-v1');
    opened = client;
    return client;
  };

  const recordingFetch: typeof fetch = async (input, init) => {
    const request = new Request(input, init);
    const signature = request.headers.get('payment-signature');
    const response = await fetch(request);
    sent.push({ status: response.status, payload: signature ? decodePaymentSignatureHeader(signature) : null, headers: response.headers });
    return response;
  };
  const client = new x402Client()
    .register('bip122:*', new PaychanClientScheme({ channelFor, maxPriceSat: 100n }))
    .setSpendControls({ allowedAssets: [{ network: REGTEST, asset: satAsset('regtest'), maxAmountPerPayment: '100' }] });
  return {
    fetch: wrapFetchWithPayment(recordingFetch, client),
    offers,
    sent,
    payoutScript,
    client(): PayerClient {
      if (!opened) throw new Error('no channel opened yet');
      return opened;
    },
  };
}

/** The books of one channel, for "nothing changed" checks. */
function books(paywall: Paywall, payer: PayerClient) {
  const id = payer.channel.id;
  const s = payer.state;
  return { payeePaidSat: paidSat(payee.service.channel(id)), paywall: paywall.account(id), payerSignedSat: s?.type === 'Open' ? s.signedTotalSat : undefined };
}

/** A request carrying `payload` as its PAYMENT-SIGNATURE; the 402's reason, if refused. */
async function send(url: string, payload: PaymentPayload): Promise<{ status: number; reason?: string }> {
  const response = await fetch(url, { headers: { 'payment-signature': encodePaymentSignatureHeader(payload) } });
  await response.arrayBuffer();
  const required = response.headers.get('payment-required');
  return { status: response.status, reason: required ? decodePaymentRequiredHeader(required).error : undefined };
}

describe('x402 with the paychan scheme on regtest', () => {
  it('@x402/express + @x402/fetch: 1,000 paid requests through one channel; payee, paywall, payer and the close on chain agree', async () => {
    const { paywall, x402 } = seller();
    expect(x402.network).toBe(REGTEST);
    const { url, served } = await expressSeller(x402);
    const b = buyer();

    expect(await (await fetch(`${url}/free`)).text()).toBe('free content');
    const unpaid = await fetch(`${url}/priced`);
    expect(unpaid.status).toBe(402);
    const required = decodePaymentRequiredHeader(unpaid.headers.get('payment-required')!);
    expect(required.accepts).toEqual([
      {
        scheme: 'paychan',
        network: REGTEST,
        amount: '7',
        asset: `${REGTEST}/slip44:0`,
        payTo: payee.server.wsUrl,
        maxTimeoutSeconds: 300,
        extra: { variants: ['spilman-v1', 'spilman-v2'], minCapacitySat: '10000', maxCapacitySat: '100000000', minExpiryBlocks: 10, maxExpiryBlocks: 4320 },
      },
    ]);

    const started = performance.now();
    let last: Response | undefined;
    for (let i = 0; i < 1000; i++) {
      last = await b.fetch(`${url}/priced`);
      expect(last.status).toBe(200);
      expect(await last.text()).toBe('paid content');
    }
    console.log(`x402: 1,000 paid requests (incl. opening the channel) in ${Math.round(performance.now() - started)} ms`);

    expect(b.offers).toHaveLength(1);
    expect(served).toHaveLength(1000);
    const payer = b.client();
    const id = payer.channel.id;
    const total = 1000n * PRICE;
    // Every request: one 402, then one paid retry carrying total = 7 × n.
    const paid = b.sent.filter((s) => s.payload);
    expect(paid).toHaveLength(1000);
    expect(paid.every((s, i) => s.status === 200 && s.payload!.payload.channelId === id && s.payload!.payload.totalSat === String(PRICE * BigInt(i + 1)))).toBe(true);
    const receipt = decodePaymentResponseHeader(last!.headers.get('payment-response')!);
    expect(receipt).toMatchObject({ success: true, transaction: id, network: REGTEST, payer: id, amount: '7', extra: { channelId: id, totalSat: total.toString(), creditSat: '0' } });

    const state = payer.state;
    if (state?.type !== 'Open') throw new Error(`payer state ${state?.type}`);
    expect(books(paywall, payer)).toEqual({ payeePaidSat: total, paywall: { chargedSat: total, creditSat: 0n, lastTotalSat: total }, payerSignedSat: total });
    expect(state.ackedTotalSat).toBe(total);
    const stored = (await payee.store.loadPayeeChannels()).find((c) => 'channel' in c.state && c.state.channel.id === id);
    expect(paidSat(stored?.state)).toBe(total);

    // The close: the node's transaction splits the capacity as both sides recorded.
    const close = await payee.service.close(id, FEE_RATE);
    await env.mine(1);
    await waitUntil(() => payee.service.channel(id)?.type === 'Closed', 'the payee to see its close confirmed');
    await waitUntil(() => payer.state?.type === 'Closed', 'the payer to learn of the close');
    const chain = await closeOnChain(env, close.txid, CAPACITY, payee.payoutScript, b.payoutScript);
    expect(chain.confirmations).toBe(1);
    expect(chain.spends).toEqual([id]);
    expect(chain.feeSat).toBe(close.feeSat);
    expect(chain.payeeSat).toBe(total - chain.feeSat);
    expect(chain.payerSat).toBe(CAPACITY - total);
    expect(chain.payeeSat + chain.payerSat + chain.feeSat).toBe(CAPACITY);

    // A closed channel buys nothing more: the buyer sees it closed and pays on a new channel.
    const next = await b.fetch(`${url}/priced`);
    expect(next.status).toBe(200);
    expect(b.offers).toHaveLength(2);
    const fresh = b.client().channel.id;
    expect(fresh).not.toBe(id);
    expect(b.sent.filter((s) => s.payload).at(-1)).toMatchObject({ status: 200, payload: { payload: { channelId: fresh, totalSat: '7' } } });
    expect(paidSat(payee.service.channel(id))).toBe(total);
    // Its last payload, replayed on the closed channel, is refused by the payee.
    expect(await send(`${url}/priced`, paid.at(-1)!.payload!)).toEqual({ status: 402, reason: 'invalid_paychan_payment_replayed' });
  });

  it('refuses a replayed payload, another channel’s signature, an amount below the price, other terms: 402 with the reason, nothing stored or served', async () => {
    const { paywall, x402 } = seller();
    const { url, served } = await expressSeller(x402);
    const a = buyer();
    const other = buyer();
    const priced = `${url}/priced`;
    for (let i = 0; i < 2; i++) expect((await a.fetch(priced)).status).toBe(200);
    expect((await other.fetch(priced)).status).toBe(200);
    const payer = a.client();
    const before = books(paywall, payer);
    expect(before).toEqual({ payeePaidSat: 14n, paywall: { chargedSat: 14n, creditSat: 0n, lastTotalSat: 14n }, payerSignedSat: 14n });
    const servedBefore = served.length;
    const lastPaid = a.sent.filter((s) => s.payload).at(-1)!.payload!;

    // Replayed: the payload that bought the last request.
    expect(await send(priced, lastPaid)).toEqual({ status: 402, reason: 'invalid_paychan_payment_replayed' });
    // Stale: a lower total already used.
    const first = a.sent.find((s) => s.payload)!.payload!;
    expect(await send(priced, first)).toEqual({ status: 402, reason: 'invalid_paychan_amount_not_increasing' });
    // Another channel's signature: the other buyer's valid payment (total 7), put on this channel at 21.
    const foreign = other.sent.filter((s) => s.payload).at(-1)!.payload!;
    expect(await send(priced, { ...lastPaid, payload: { ...lastPaid.payload, totalSat: '21', signature: foreign.payload.signature } })).toEqual({
      status: 402,
      reason: 'invalid_paychan_invalid_signature',
    });
    // ... and as it is, on its own channel, it is a replay there.
    expect(await send(priced, foreign)).toEqual({ status: 402, reason: 'invalid_paychan_payment_replayed' });
    // Below the price: a valid signature on 14 + 6.
    const short = await payer.authorize(PRICE - 1n);
    expect(await send(priced, { ...lastPaid, payload: encodePayload(short) })).toEqual({ status: 402, reason: 'invalid_paychan_insufficient_payment' });
    // Other terms than the requirement's (a lower amount accepted): the SDK finds no matching requirement.
    const cheap = await send(priced, { ...lastPaid, accepted: { ...lastPaid.accepted, amount: '1' }, payload: encodePayload(short) });
    expect(cheap.status).toBe(402);
    expect(cheap.reason).toBe('No matching payment requirements');
    // A channel the payee does not know.
    expect(await send(priced, { ...lastPaid, payload: { ...lastPaid.payload, channelId: `${'00'.repeat(32)}:0` } })).toEqual({ status: 402, reason: 'invalid_paychan_unknown_channel' });
    // Malformed.
    expect(await send(priced, { ...lastPaid, payload: { ...lastPaid.payload, totalSat: '021' } })).toEqual({ status: 402, reason: 'invalid_paychan_malformed_message' });

    expect(books(paywall, payer)).toEqual({ ...before, payerSignedSat: 20n });
    expect(paidSat(payee.service.channel(other.client().channel.id))).toBe(7n);
    expect(served.length).toBe(servedBefore);

    // The buyer carries on from its newest signed total (20): 27 adds 13, the price is 7, 6 is credit.
    expect((await a.fetch(priced)).status).toBe(200);
    expect(paywall.account(payer.channel.id)).toEqual({ chargedSat: 21n, creditSat: 6n, lastTotalSat: 27n });

    // The receipt told the buyer of its 6 sat credit: the next payload adds 1 (28). That request's
    // handler fails, so it does not pay for it: its price goes back as credit (7), which the
    // buyer learns from the next receipt and spends.
    const failed = await a.fetch(`${url}/fails`);
    expect(failed.status).toBe(500);
    expect(paywall.account(payer.channel.id)).toEqual({ chargedSat: 21n, creditSat: 7n, lastTotalSat: 28n });
    for (let i = 0; i < 4; i++) expect((await a.fetch(priced)).status).toBe(200);
    const account = paywall.account(payer.channel.id)!;
    expect(account.chargedSat).toBe(21n + 4n * PRICE);
    expect(account.lastTotalSat).toBe(paidSat(payee.service.channel(payer.channel.id)));
    expect(account.lastTotalSat - account.creditSat).toBe(account.chargedSat);
    expect(account.creditSat).toBeLessThan(PRICE);
  });

  it('@x402/hono: 20 paid requests, 5 of them at once, through one channel; the books agree', async () => {
    const { paywall, x402 } = seller();
    const app = new Hono();
    const resourceServer = new honoResourceServer(x402.facilitator).register(x402.network, x402.server);
    app.use('/api/*', honoPaymentMiddleware(routes(x402, ['/api/data']), resourceServer));
    app.get('/api/data', (c) => c.json({ data: 'hono paid content' }));
    const server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s as Server));
    });
    cleanups.push(() => closeServer(server));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const b = buyer();

    const check = async (response: Response) => {
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ data: 'hono paid content' });
    };
    for (let i = 0; i < 15; i++) await check(await b.fetch(`${url}/api/data`));
    // Concurrent fetches queue in the client scheme: each signs once the one before was answered.
    await Promise.all(Array.from({ length: 5 }, async () => check(await b.fetch(`${url}/api/data`))));

    const payer = b.client();
    const total = 20n * PRICE;
    expect(b.offers).toHaveLength(1);
    expect(b.sent.filter((s) => s.payload).map((s) => s.status)).toEqual(Array<number>(20).fill(200));
    expect(books(paywall, payer)).toEqual({ payeePaidSat: total, paywall: { chargedSat: total, creditSat: 0n, lastTotalSat: total }, payerSignedSat: total });
    expect(payer.state).toMatchObject({ type: 'Open', ackedTotalSat: total });
    const replayed = b.sent.filter((s) => s.payload).at(-1)!.payload!;
    expect(await send(`${url}/api/data`, replayed)).toEqual({ status: 402, reason: 'invalid_paychan_payment_replayed' });
    expect(paidSat(payee.service.channel(payer.channel.id))).toBe(total);
  });
});
