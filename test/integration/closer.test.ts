/**
 * The payee's closer on a real btcd: closes due channels in one batch after being offline,
 * replaces a stuck close with a higher fee, survives a close and a funding reorged out
 * (invalidateblock), notices a payer's refund, takes no payment past the close deadline, and
 * keeps closing when a refund displaces a batch, sits in the mempool first, or a close is lost.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Transaction } from 'bitcoinjs-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChainBackend } from '../../src/chain/backend.js';
import { RpcClient } from '../../src/chain/rpc-client.js';
import { waitUntil } from '../helpers/local-pair.js';
import { PayeeService } from '../../src/payee/payee-service.js';
import { PayerClient, PeerError } from '../../src/payer/payer-client.js';
import { equalBytes } from '../../src/protocol/bytes.js';
import { payeePolicy } from '../../src/protocol/policy.js';
import type { Variant } from '../../src/protocol/scripts.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite-store.js';
import { loopbackPair } from '../../src/transport/link.js';
import { submitPayment } from '../../src/transport/paywall.js';
import { WalletKeys } from '../../src/wallet/keys.js';
import { startFundedEnv, type RegtestEnv } from '../helpers/regtest-env.js';
import { regtestPayer } from '../helpers/regtest-peers.js';

const CAPACITY = 200_000n;
let env: RegtestEnv;
let rpc: RpcClient;
let dir: string;
const payeeKeys = WalletKeys.fromSeed(randomBytes(32), 'regtest');
const payoutScript = payeeKeys.address('receive', 0).script;

beforeAll(async () => {
  env = await startFundedEnv();
  rpc = new RpcClient({ url: env.node.rpcUrl, user: env.node.rpcUser, pass: env.node.rpcPass });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-closer-'));
});
afterAll(async () => {
  rpc?.close();
  await env?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** One payee (not started: ticks are driven by the test) and its store. */
async function payee(store: SqliteStore, backend: ChainBackend = env.backend): Promise<PayeeService> {
  return PayeeService.open({
    secp: env.secp,
    policy: payeePolicy({ network: 'regtest', minExpiryBlocks: 10 }),
    backend,
    store,
    keys: payeeKeys,
    payoutScript,
    fallbackFeeRateSatPerVb: 2,
  });
}

/** A payer linked to `service` through the wire codec. */
function payer(service: { current: PayeeService }): PayerClient {
  const ends: { payer?: PayerClient } = {};
  const { a } = loopbackPair(
    (text) => ends.payer?.receive(text),
    (text, reply) => void service.current.receive(text, reply),
  );
  ends.payer = regtestPayer(env, a);
  return ends.payer;
}

async function open(service: { current: PayeeService }, variant: Variant, expiryBlocks: number): Promise<PayerClient> {
  const p = payer(service);
  const opening = p.open({ variant, capacitySat: CAPACITY, expiryBlocks });
  await Promise.race([p.waitFor((s) => s.type === 'AwaitingOpen'), opening]);
  await waitUntil(async () => (await env.backend.getTransaction(p.channel.funding.txid)) !== null, 'funding broadcast');
  await env.mine(1);
  // The payee watches the funding once its new channel is durable (broadcast, persist, watch):
  // its effects done first, or this one check could run before the watch exists.
  await service.current.drain();
  await service.current.checkWatches();
  await opening;
  return p;
}

/** The node, except that broadcasts never return: a payee process that dies while broadcasting. */
function diesWhileBroadcasting(backend: ChainBackend): ChainBackend {
  return new Proxy(backend, {
    get(target, key) {
      if (key === 'broadcast') return () => new Promise<never>(() => undefined);
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Output values of a transaction as the node has it, and whether its last output pays the payee. */
async function onChain(txid: string): Promise<{ values: bigint[]; inputs: number; paysPayee: boolean; confirmations: number }> {
  const status = await env.backend.getTransaction(txid);
  if (!status) throw new Error(`node does not know ${txid}`);
  const tx = Transaction.fromHex(status.hex);
  return { values: tx.outs.map((o) => o.value), inputs: tx.ins.length, paysPayee: equalBytes(tx.outs.at(-1)!.script, payoutScript), confirmations: status.confirmations };
}

const closingTxid = (service: PayeeService, id: string): string => {
  const s = service.channel(id);
  if (s?.type !== 'Closing') throw new Error(`channel ${id} is ${s?.type}, not Closing`);
  return s.close.txid;
};

const tick = async (service: PayeeService, heightDelta = 0) => {
  const tip = await env.backend.getTip();
  await service.onTip({ height: tip.height + heightDelta, hash: tip.hash });
};

describe('payee closer', () => {
  it('closes every due channel in one batch after being offline, then settles them', async () => {
    const store = openSqliteStore(path.join(dir, 'batch.db'));
    const service = { current: await payee(store) };
    const payers = [await open(service, 'spilman-v1', 12), await open(service, 'spilman-v2', 12), await open(service, 'spilman-v1', 12)];
    const paid = [3_000n, 40_000n, 200_000n]; // the last pays the whole capacity (no change output)
    await Promise.all(payers.map((p, i) => p.pay(paid[i]!)));
    await service.current.drain();
    // The payee goes offline; the chain passes every channel's close deadline (expiry − 3).
    const latestDeadline = Math.max(...payers.map((p) => p.channel.expiryHeight)) - 3;
    await env.mineTo(latestDeadline);
    service.current = await payee(store); // back online: catches up on its first tick
    await tick(service.current);
    const closing = service.current.channels().filter((s) => s.type === 'Closing');
    expect(closing).toHaveLength(3);
    const txids = new Set(closing.map((s) => (s.type === 'Closing' ? s.close.txid : '')));
    expect(txids.size).toBe(1); // one transaction for all three
    const [closeTxid] = [...txids];
    const tx = Transaction.fromHex((await env.backend.getTransaction(closeTxid!))!.hex);
    expect(tx.ins).toHaveLength(3);
    // Outputs: the two payers with change (exactly as signed), then one for the payee.
    expect(tx.outs.map((o) => o.value)).toEqual([CAPACITY - 3_000n, CAPACITY - 40_000n, 243_000n - (3n * CAPACITY - tx.outs.reduce((s, o) => s + o.value, 0n))]);
    expect(equalBytes(tx.outs[2]!.script, payoutScript)).toBe(true);
    await env.mine(1);
    await tick(service.current);
    expect(service.current.channels().map((s) => s.type === 'Closed' && s.settledBy)).toEqual(['close', 'close', 'close']);
    await store.close();
  });

  it('leaves out of the batch a channel that paid less than the fee on its own bytes (its payer refunds it)', async () => {
    const store = openSqliteStore(path.join(dir, 'worth.db'));
    const service = { current: await payee(store) };
    const payers = [await open(service, 'spilman-v2', 12), await open(service, 'spilman-v1', 12), await open(service, 'spilman-v2', 12)];
    // At the 2 sat/vB fallback rate an input and a change output cost ~280 sat: 100 and 150 do not pay for theirs.
    const paid = [40_000n, 100n, 150n];
    await Promise.all(payers.map((p, i) => p.pay(paid[i]!)));
    await service.current.drain();
    await env.mineTo(Math.max(...payers.map((p) => p.channel.expiryHeight)) - 3);
    await tick(service.current);
    const byId = new Map(service.current.channels().map((s) => ['channel' in s ? s.channel.id : '', s]));
    const states = payers.map((p) => byId.get(p.channel.id)?.type);
    expect(states).toEqual(['Closing', 'Expiring', 'Expiring']);
    const honest = byId.get(payers[0]!.channel.id)!;
    const tx = Transaction.fromHex((await env.backend.getTransaction(honest.type === 'Closing' ? honest.close.txid : ''))!.hex);
    expect(tx.ins).toHaveLength(1); // the honest channel's close carries no one else's bytes
    await store.close();
  });

  it('replaces a close that stays unconfirmed with a higher fee, from its own share', async () => {
    const store = openSqliteStore(path.join(dir, 'bump.db'));
    const service = { current: await payee(store) };
    const p = await open(service, 'spilman-v2', 40);
    await p.pay(50_000n);
    await service.current.drain();
    const first = await service.current.close(p.channel.id, 1);
    await tick(service.current, 1); // one block later: not yet
    expect((await service.current.channel(p.channel.id))?.type === 'Closing' && service.current.channel(p.channel.id)).toMatchObject({ close: { txid: first.txid } });
    await tick(service.current, 2); // bumpAfterBlocks = 2 blocks unconfirmed
    const s = service.current.channel(p.channel.id);
    if (s?.type !== 'Closing') throw new Error('not closing');
    expect(s.close.txid).not.toBe(first.txid);
    expect(s.close.feeRateSatPerVb).toBe(2);
    expect(s.close.feeSat).toBeGreaterThan(first.feeSat);
    expect(await env.backend.getTransaction(first.txid)).toBeNull(); // replaced in the mempool
    await env.mine(1);
    await tick(service.current);
    const closed = service.current.channel(p.channel.id);
    expect(closed).toMatchObject({ type: 'Closed', closeTxid: s.close.txid, settledBy: 'close' });
    const tx = Transaction.fromHex((await env.backend.getTransaction(s.close.txid))!.hex);
    expect(tx.outs[0]!.value).toBe(CAPACITY - 50_000n);
    expect(tx.outs[1]!.value).toBe(50_000n - s.close.feeSat);
    await store.close();
  });

  it('a close reorged out is mined again; the channel settles on the new chain', async () => {
    const store = openSqliteStore(path.join(dir, 'reorg-close.db'));
    const service = { current: await payee(store) };
    const p = await open(service, 'spilman-v1', 40);
    await p.pay(25_000n);
    await service.current.drain();
    const close = await service.current.close(p.channel.id, 2);
    const [block] = await env.node.mine(1);
    expect((await env.backend.getTransaction(close.txid))?.confirmations).toBe(1);
    await rpc.call('invalidateblock', [block]);
    await env.wallet.sync();
    expect((await env.backend.getTransaction(close.txid))?.confirmations ?? 0).toBe(0);
    await tick(service.current); // rebroadcasts if the node dropped it; it must not settle on 0 confirmations
    expect(service.current.channel(p.channel.id)?.type).toBe('Closing');
    await env.mine(1);
    await tick(service.current);
    expect(service.current.channel(p.channel.id)).toMatchObject({ type: 'Closed', settledBy: 'close' });
    expect((await env.backend.getTransaction(close.txid))?.confirmations).toBe(1);
    await store.close();
  });

  it('a funding reorged out suspends payments until it confirms again', async () => {
    const store = openSqliteStore(path.join(dir, 'reorg-funding.db'));
    const service = { current: await payee(store) };
    const p = payer(service);
    const opening = p.open({ variant: 'spilman-v2', capacitySat: CAPACITY, expiryBlocks: 40 });
    await Promise.race([p.waitFor((s) => s.type === 'AwaitingOpen'), opening]);
    await waitUntil(async () => (await env.backend.getTransaction(p.channel.funding.txid)) !== null, 'funding broadcast');
    const [block] = await env.node.mine(1);
    await service.current.drain(); // the funding watched (after its persist), as in open()
    await service.current.checkWatches();
    await opening;
    await p.pay(1_000n);
    await rpc.call('invalidateblock', [block]);
    await env.wallet.sync();
    await tick(service.current);
    expect(service.current.channel(p.channel.id)?.type).toBe('Suspended');
    await expect(p.pay(1_000n)).rejects.toBeInstanceOf(PeerError); // CHANNEL_NOT_OPEN
    expect(service.current.channel(p.channel.id)).toMatchObject({ paidSat: 1_000n });
    await env.mine(1); // the funding (back in the mempool) confirms again
    await tick(service.current);
    expect(service.current.channel(p.channel.id)).toMatchObject({ type: 'Open', paidSat: 1_000n });
    await store.close();
  });

  it('takes no payment from the close deadline on, so the refund at expiry cannot take what was acknowledged', async () => {
    // The attack: pay nothing until the payee's close deadline has passed (nothing to close, so
    // the closer leaves the channel alone), then pay for service, then refund at expiry.
    const store = openSqliteStore(path.join(dir, 'deadline.db'));
    const service = { current: await payee(store) };
    const p = await open(service, 'spilman-v2', 12);
    const deadline = p.channel.expiryHeight - 3; // closeMarginBlocks on regtest
    await env.mineTo(deadline);
    await tick(service.current);
    await expect(p.pay(1_000n)).rejects.toMatchObject({ code: 'CHANNEL_EXPIRING' });
    await env.mineTo(p.channel.expiryHeight);
    await tick(service.current);
    // The paywall's path (an HTTP header): the whole capacity for one request, at tip = expiry.
    const answer = await submitPayment(service.current, await p.authorize(CAPACITY - 1_000n));
    expect(answer).toMatchObject({ type: 'error', code: 'CHANNEL_EXPIRING' });
    const refund = await p.refund(2);
    await env.mine(1);
    await tick(service.current);
    expect(service.current.channel(p.channel.id)).toMatchObject({ type: 'Closed', settledBy: 'refund', closeTxid: refund.txid, paidSat: 0n });
    expect(p.state).toMatchObject({ ackedTotalSat: 0n }); // the payee acknowledged nothing
    await store.close();
  });

  it("a payer's refund that displaces a batch close holds back only its own channel", async () => {
    const store = openSqliteStore(path.join(dir, 'displaced.db'));
    const service = { current: await payee(store) };
    const early = await open(service, 'spilman-v2', 10); // its payer may refund first
    const others = [await open(service, 'spilman-v1', 40), await open(service, 'spilman-v2', 40)];
    await Promise.all([early.pay(3_000n), others[0]!.pay(40_000n), others[1]!.pay(50_000n)]);
    await service.current.drain();
    await env.mineTo(early.channel.expiryHeight);
    // The payee closes all three in one transaction; the early payer's refund, paying more,
    // replaces that whole batch in the mempool (BIP125).
    const batch = await service.current.close([early, ...others].map((p) => p.channel.id), 1);
    const refund = await early.refund(20);
    expect(await env.backend.getTransaction(batch.txid)).toBeNull();
    await tick(service.current);
    // The two other channels are closed again, together, without the refunded one.
    const [rebatch, other] = others.map((p) => closingTxid(service.current, p.channel.id));
    expect(rebatch).toBe(other);
    expect(rebatch).not.toBe(batch.txid);
    await env.mine(1);
    await tick(service.current);
    for (const p of others) expect(service.current.channel(p.channel.id)).toMatchObject({ type: 'Closed', settledBy: 'close', closeTxid: rebatch });
    // Outbidding a 20 sat/vB refund would cost more than the 3,000 sat paid: the refund wins.
    expect(service.current.channel(early.channel.id)).toMatchObject({ type: 'Closed', settledBy: 'refund', closeTxid: refund.txid });
    const close = await onChain(rebatch!);
    expect(close.inputs).toBe(2);
    expect(close.paysPayee).toBe(true);
    expect(close.values.slice(0, 2)).toEqual([CAPACITY - 40_000n, CAPACITY - 50_000n]);
    expect(close.values[2]).toBeGreaterThan(90_000n - 1_000n);
    await store.close();
  });

  it('closes a channel whose payer can already refund apart from the batch of the others', async () => {
    const store = openSqliteStore(path.join(dir, 'apart.db'));
    const service = { current: await payee(store) };
    const early = await open(service, 'spilman-v1', 10);
    const others = [await open(service, 'spilman-v2', 11), await open(service, 'spilman-v1', 11)]; // deadlines ≤ early's expiry
    await Promise.all([early.pay(20_000n), others[0]!.pay(30_000n), others[1]!.pay(40_000n)]);
    await service.current.drain();
    // Offline until the early payer's refund is final: all three are due, one is exposed.
    await env.mineTo(early.channel.expiryHeight);
    await tick(service.current);
    const [batch, other] = others.map((p) => closingTxid(service.current, p.channel.id));
    expect(batch).toBe(other);
    const alone = closingTxid(service.current, early.channel.id);
    expect(alone).not.toBe(batch);
    expect((await onChain(alone)).inputs).toBe(1);
    await env.mine(1);
    await tick(service.current);
    expect(service.current.channels().filter((s) => s.type === 'Closed' && s.settledBy === 'close')).toHaveLength(3);
    await store.close();
  });

  it("outbids the payer's refund in the mempool with a close of that channel (BIP125)", async () => {
    const store = openSqliteStore(path.join(dir, 'outbid.db'));
    const service = { current: await payee(store) };
    const p = await open(service, 'spilman-v1', 10);
    await p.pay(150_000n);
    await service.current.drain();
    // The payee is offline past expiry; the payer's refund is in the mempool, not yet mined.
    await env.mineTo(p.channel.expiryHeight);
    const refund = await p.refund(5);
    await tick(service.current);
    const closeTxid = closingTxid(service.current, p.channel.id);
    expect(await env.backend.getTransaction(refund.txid)).toBeNull(); // replaced
    await env.mine(1);
    await tick(service.current);
    expect(service.current.channel(p.channel.id)).toMatchObject({ type: 'Closed', settledBy: 'close', closeTxid });
    const close = await onChain(closeTxid);
    expect(close.paysPayee).toBe(true);
    expect(close.values[0]).toBe(CAPACITY - 150_000n);
    expect(close.values[1]).toBeGreaterThan(150_000n - 5_000n);
    await store.close();
  });

  it('closes anew, at a higher rate, a close the node does not have and refuses again', async () => {
    const store = openSqliteStore(path.join(dir, 'lost.db'));
    const service = { current: await payee(store) };
    const p = await open(service, 'spilman-v2', 40);
    await p.pay(50_000n);
    await service.current.drain();
    // A payee stores its close at 0.5 sat/vB (below what the node relays, as a filling mempool's
    // minimum rises) and dies while broadcasting it: the node never had it.
    const dying = await payee(store, diesWhileBroadcasting(env.backend));
    void dying.close(p.channel.id, 0.5);
    await waitUntil(() => dying.channel(p.channel.id)?.type === 'Closing', 'the close stored');
    const lost = closingTxid(dying, p.channel.id);
    service.current = await payee(store); // restarted
    expect(closingTxid(service.current, p.channel.id)).toBe(lost);
    await tick(service.current);
    const closeTxid = closingTxid(service.current, p.channel.id);
    expect(closeTxid).not.toBe(lost);
    expect(service.current.channel(p.channel.id)).toMatchObject({ close: { feeRateSatPerVb: 2 } });
    await env.mine(1);
    await tick(service.current);
    expect(service.current.channel(p.channel.id)).toMatchObject({ type: 'Closed', settledBy: 'close', closeTxid });
    const close = await onChain(closeTxid);
    expect(close.paysPayee).toBe(true);
    expect(close.values[0]).toBe(CAPACITY - 50_000n);
    await store.close();
  });

  it("notices the payer's refund of a channel nothing was paid on", async () => {
    const store = openSqliteStore(path.join(dir, 'refund.db'));
    const service = { current: await payee(store) };
    const p = await open(service, 'spilman-v2', 10);
    await env.mineTo(p.channel.expiryHeight);
    const refund = await p.refund(2);
    await env.mine(1);
    await tick(service.current);
    expect(service.current.channel(p.channel.id)).toMatchObject({ type: 'Closed', settledBy: 'refund', closeTxid: refund.txid, paidSat: 0n });
    await store.close();
  });
});
