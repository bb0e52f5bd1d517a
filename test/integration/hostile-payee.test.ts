/**
 * The payer facing a hostile payee, on a real node: a fake payee written here on a real
 * WebSocket server answers `hello` with a valid `accept`, then misbehaves:
 *
 * (a) its refund signature does not verify → the payer aborts (PeerError, state Aborted), releases
 *     its wallet reservation, and never shows its funding (no `funding` frame, and the node has
 *     never seen the funding transaction);
 * (b) it signs the refund for another locktime (expiry − 1) with its real channel key → the same;
 * (c) it opens the channel and never acknowledges a payment → `pay()` stays pending, the payer
 *     stops signing at its in-flight window (`maxInFlight`), and after expiry the payer's
 *     `refund()` takes its capacity back on chain (refused by the node one block before).
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Transaction, address as baddress } from 'bitcoinjs-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { BroadcastRejectedError } from '../../src/chain/backend.js';
import { waitUntil } from '../helpers/wait.js';
import { PayerClient, PeerError } from '../../src/payer/payer-client.js';
import { toHex } from '../../src/protocol/bytes.js';
import { makeChannel, type ChannelTerms } from '../../src/protocol/channel.js';
import { decodeMessage, encodeMessage, msg, type Message, type MessageOf } from '../../src/protocol/messages.js';
import { bitcoinjsNetwork } from '../../src/protocol/network.js';
import { payeeRefundDigest } from '../../src/protocol/refund.js';
import { connectPayee, type WsPeerLink } from '../../src/transport/ws-client.js';
import { WalletKeys } from '../../src/wallet/keys.js';
import { startFundedEnv, type RegtestEnv } from '../helpers/regtest-env.js';
import { regtestPayer } from '../helpers/regtest-peers.js';

let env: RegtestEnv;
const cleanups: (() => Promise<unknown> | void)[] = [];

beforeAll(async () => {
  env = await startFundedEnv();
  await env.mine(5); // a few mature coins: each scenario funds a channel
});
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await env?.stop();
});

type Handler = (m: Message, reply: (m: Message) => void, payee: FakePayee) => void | Promise<void>;

/** A payee that speaks the wire protocol over a real WebSocket server, as `handler` decides. */
class FakePayee {
  readonly received: Message[] = [];
  readonly key = WalletKeys.fromSeed(randomBytes(32), 'regtest').channelKey(0);
  private constructor(
    private readonly wss: WebSocketServer,
    readonly url: string,
  ) {}

  static async start(handler: Handler): Promise<FakePayee> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/v1/ws' });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    const payee = new FakePayee(wss, `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/v1/ws`);
    wss.on('connection', (ws: WebSocket) => {
      const reply = (m: Message) => ws.send(encodeMessage(m));
      ws.on('message', (data) => {
        const m = decodeMessage(String(data));
        payee.received.push(m);
        void Promise.resolve(handler(m, reply, payee)).catch((err: unknown) => console.error('fake payee handler failed', err));
      });
    });
    cleanups.push(() => payee.close());
    return payee;
  }

  types(): string[] {
    return this.received.map((m) => m.type);
  }

  async next<T extends Message['type']>(type: T, timeoutMs = 30_000): Promise<MessageOf<T>> {
    await waitUntil(() => this.received.some((m) => m.type === type), `a ${type} frame`, timeoutMs);
    return this.received.find((m) => m.type === type) as MessageOf<T>;
  }

  /**
   * Resolves once every frame the connected payers wrote before they saw this call's ping has
   * arrived: a pong travels behind them on the same socket. What has not come by then was never
   * sent before the payer's state (checked by the caller) forbade sending it.
   */
  async flush(): Promise<void> {
    const open = [...this.wss.clients].filter((ws) => ws.readyState === ws.OPEN);
    // A socket that closes instead has delivered all it ever will.
    const pongs = open.map((ws) => new Promise<void>((resolve) => ws.once('pong', () => resolve()).once('close', () => resolve())));
    for (const ws of open) ws.ping();
    await Promise.all(pongs);
  }

  close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    return new Promise((resolve) => this.wss.close(() => resolve()));
  }
}

/** The channel both sides agreed on, as the fake payee sees it once it has the refund request. */
function agreed(hello: MessageOf<'hello'>, payeePubkey: Uint8Array): ChannelTerms {
  const { variant, network, payerPubkey, capacitySat, expiryHeight, payerScript } = hello;
  return { variant, network, payerPubkey, payeePubkey, capacitySat, expiryHeight, payerScript };
}

/** A payer as src/app/payer-app.ts wires it, against `url`. */
function payerFor(url: string, maxInFlight?: number): { client: PayerClient; link: WsPeerLink; payoutScript: Uint8Array } {
  const holder: { client?: PayerClient } = {};
  const link = connectPayee(url, {
    onMessage: (text) => holder.client?.receive(text),
    onOpen: () => holder.client?.resume(),
    reconnect: { minDelayMs: 50, maxDelayMs: 500 },
  });
  cleanups.push(() => link.close());
  const payoutScript = baddress.toOutputScript(env.wallet.changeAddress(), bitcoinjsNetwork('regtest'));
  const client = regtestPayer(env, link, { payoutScript, maxInFlight });
  holder.client = client;
  return { client, link, payoutScript };
}

const reserved = (txid: string) => env.wallet.state().reservations.some((r) => r.txid === txid);

/** Answers hello with accept, and the refund request with what `sign` returns. */
function refundSigner(sign: (terms: ChannelTerms, funding: { txid: string; vout: number }, payee: FakePayee) => Uint8Array) {
  let hello: MessageOf<'hello'> | undefined;
  const state = { reservedWhenAsked: false };
  const handler: Handler = (m, reply, payee) => {
    if (m.type === 'hello') {
      hello = m;
      reply(msg('accept', { tempId: m.tempId, payeePubkey: payee.key.publicKey, minFundingConfirmations: 1, cookie: new Uint8Array(20) }));
    } else if (m.type === 'refund-request' && hello) {
      state.reservedWhenAsked = reserved(m.fundingTxid);
      const signature = sign(agreed(hello, payee.key.publicKey), { txid: m.fundingTxid, vout: m.fundingVout }, payee);
      reply(msg('refund-signature', { tempId: m.tempId, signature }));
    }
  };
  return { handler, state };
}

/** What a payer must do when the refund signature is bad: abort, release, never fund. */
async function expectAbortedWithoutFunding(payee: FakePayee, client: PayerClient, opening: Promise<unknown>, reservedWhenAsked: () => boolean): Promise<void> {
  const err = await Promise.race([
    opening.then(
      () => 'opened',
      (e: unknown) => e,
    ),
    new Promise((r) => setTimeout(() => r('still opening after 20 s'), 20_000)),
  ]);
  expect(err).toBeInstanceOf(PeerError);
  expect(client.state?.type).toBe('Aborted');
  const request = await payee.next('refund-request');
  // The funding was built and its coins reserved when the refund was asked for...
  expect(reservedWhenAsked()).toBe(true);
  // ...and the abort gives them back.
  await waitUntil(() => !reserved(request.fundingTxid), 'the funding reservation to be released', 10_000);
  // The payer tells the payee why, and never shows the funding.
  await payee.next('error');
  expect(payee.received.find((m) => m.type === 'error')).toMatchObject({ code: 'INVALID_SIGNATURE', action: 'close' });
  await payee.flush(); // Aborted sends nothing more: what was sent before has arrived
  expect(payee.types()).not.toContain('funding');
  expect(await env.backend.getTransaction(request.fundingTxid)).toBeNull();
}

describe('a payee whose refund signature is bad', () => {
  it('(a) a signature that does not verify: the payer aborts, releases its coins, never funds', async () => {
    // A real signature by the payee's channel key, over some other digest.
    const { handler, state } = refundSigner((_terms, _funding, payee) => env.secp.ecdsaSign(randomBytes(32), payee.key.privateKey));
    const payee = await FakePayee.start(handler);
    const { client, link } = payerFor(payee.url);
    await link.ready();
    const opening = client.open({ variant: 'spilman-v1', capacitySat: 300_000n, expiryBlocks: 20 });
    await expectAbortedWithoutFunding(payee, client, opening, () => state.reservedWhenAsked);
    expect(payee.types()).toEqual(['hello', 'refund-request', 'error']);
  });

  it('(b) a refund signed for locktime expiry − 1: the payer aborts, releases its coins, never funds', async () => {
    let wrongDigestVerifies = false;
    let rightDigestVerifies = true;
    const { handler, state } = refundSigner((terms, funding, payee) => {
      const other = payeeRefundDigest(makeChannel({ ...terms, expiryHeight: terms.expiryHeight - 1 }, funding));
      const signature = env.secp.ecdsaSign(other, payee.key.privateKey);
      // A genuine signature by the payee's key, for the T2 with the other locktime, and only that.
      wrongDigestVerifies = env.secp.ecdsaVerify(signature, other, payee.key.publicKey);
      rightDigestVerifies = env.secp.ecdsaVerify(signature, payeeRefundDigest(makeChannel(terms, funding)), payee.key.publicKey);
      return signature;
    });
    const payee = await FakePayee.start(handler);
    const { client, link } = payerFor(payee.url);
    await link.ready();
    const opening = client.open({ variant: 'spilman-v1', capacitySat: 300_000n, expiryBlocks: 20 });
    await expectAbortedWithoutFunding(payee, client, opening, () => state.reservedWhenAsked);
    expect(wrongDigestVerifies).toBe(true);
    expect(rightDigestVerifies).toBe(false);
  });
});

describe('a payee that never acknowledges', () => {
  it('(c) pay() stays pending, the window stops signing, and the refund takes the capacity back after expiry', async () => {
    const CAPACITY = 250_000n;
    const WINDOW = 5;
    let terms: ChannelTerms | undefined;
    const payee = await FakePayee.start(async (m, reply, fake) => {
      if (m.type === 'hello') {
        terms = agreed(m, fake.key.publicKey);
        reply(msg('accept', { tempId: m.tempId, payeePubkey: fake.key.publicKey, minFundingConfirmations: 1, cookie: new Uint8Array(20) }));
      } else if (m.type === 'refund-request' && terms) {
        const funding = { txid: m.fundingTxid, vout: m.fundingVout };
        reply(msg('refund-signature', { tempId: m.tempId, signature: env.secp.ecdsaSign(payeeRefundDigest(makeChannel(terms, funding)), fake.key.privateKey) }));
      } else if (m.type === 'funding') {
        // Broadcasts and confirms the funding, opens the channel... and then goes silent.
        const txid = await env.backend.broadcast(m.fundingTx);
        await env.mine(1);
        const vout = Transaction.fromHex(m.fundingTx).outs.findIndex((o) => o.value === CAPACITY);
        reply(msg('channel-open', { tempId: m.tempId, channelId: `${txid}:${vout}` }));
      }
    });
    const { client, link, payoutScript } = payerFor(payee.url, WINDOW);
    await link.ready();
    const channel = await client.open({ variant: 'spilman-v1', capacitySat: CAPACITY, expiryBlocks: 12 });

    let settled = 0;
    const pays = Array.from({ length: WINDOW + 3 }, () =>
      client.pay(1_000n).finally(() => {
        settled++;
      }),
    );
    for (const p of pays) p.catch(() => undefined);
    // pay() signs at once or waits for a slot: the window is already in the state.
    expect(client.state).toMatchObject({ type: 'Open', signedTotalSat: 5_000n, ackedTotalSat: 0n });
    await waitUntil(() => payee.received.filter((m) => m.type === 'payment').length >= WINDOW, 'the first window of payments');
    await payee.flush(); // any payment past the window would have arrived by now
    const payments = payee.received.filter((m): m is MessageOf<'payment'> => m.type === 'payment');
    expect(payments.map((p) => p.totalSat)).toEqual([1_000n, 2_000n, 3_000n, 4_000n, 5_000n]);
    expect(settled).toBe(0);
    expect(client.state).toMatchObject({ type: 'Open', signedTotalSat: 5_000n, ackedTotalSat: 0n });

    // The refund is final at the expiry height, not one block before.
    await env.mineTo(channel.expiryHeight - 1);
    await expect(client.refund(2)).rejects.toBeInstanceOf(BroadcastRejectedError);
    await env.mineTo(channel.expiryHeight);
    const refund = await client.refund(2);
    await env.mine(1);
    const onChain = await env.backend.getTransaction(refund.txid);
    expect(onChain?.confirmations).toBeGreaterThanOrEqual(1);
    const tx = Transaction.fromHex(onChain!.hex);
    expect(tx.ins).toHaveLength(1);
    expect(Buffer.from(tx.ins[0]!.hash).reverse().toString('hex')).toBe(channel.funding.txid);
    expect(tx.ins[0]!.index).toBe(channel.funding.vout);
    expect(tx.locktime).toBe(channel.expiryHeight);
    expect(tx.outs).toHaveLength(1);
    expect(toHex(tx.outs[0]!.script)).toBe(toHex(payoutScript));
    expect(tx.outs[0]!.value).toBe(CAPACITY - refund.feeSat);
    expect(refund.feeSat).toBeLessThan(1_000n);

    // Nothing was ever acknowledged: the pending pays never resolved.
    expect(settled).toBe(0);
    expect(payee.received.filter((m) => m.type === 'payment')).toHaveLength(WINDOW);
  });
});
