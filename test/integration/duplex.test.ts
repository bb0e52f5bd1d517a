/**
 * Duplex channels on the real node: dual funding, payments both ways, cooperative close,
 * unilateral close by each side, an old state that cannot beat the newest, a fee bump with a fee
 * input, and the update budget running out (rollover).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Transaction } from 'bitcoinjs-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignedState } from '../../src/protocol/duplex-state.js';
import { signedStateTx, stateLocktime, stateSighash } from '../../src/protocol/duplex-tx.js';
import { errorMessage, msg, type Message } from '../../src/protocol/messages.js';
import { duplexPair, heldTip, type DuplexPair } from '../helpers/duplex-pair.js';
import { waitUntil } from '../helpers/local-pair.js';
import { startFundedEnv, type RegtestEnv } from '../helpers/regtest-env.js';
import { hashToTxid, txidToHash } from '../../src/protocol/bytes.js';
import { bumpedFeeRate } from '../../src/chain/fee-rate.js';
import { SEQUENCE_LOCKTIME_RBF } from '../../src/protocol/transactions.js';
import { Wallet } from '../../src/wallet/wallet.js';

let env: RegtestEnv;
beforeAll(async () => {
  env = await startFundedEnv();
});
afterAll(async () => {
  await env?.stop();
});

async function openConfirmed(pair: DuplexPair, contributionASat = 600_000n, contributionBSat = 400_000n): Promise<string> {
  const id = await pair.a.open({ link: pair.link.a, contributionASat, contributionBSat, fundingFeeRateSatPerVb: 2 });
  await pair.mine(1);
  expect(pair.a.get(id)?.fundingConfirmed).toBe(true);
  expect(pair.b.get(id)?.fundingConfirmed).toBe(true);
  return id;
}

async function outputsOf(txid: string): Promise<Transaction> {
  const status = await env.backend.getTransaction(txid);
  expect(status).not.toBeNull();
  return Transaction.fromHex(status!.hex);
}

describe('duplex channel', () => {
  it('is funded by both, pays both ways and closes cooperatively to the satoshi', async () => {
    const pair = await duplexPair(env);
    const id = await openConfirmed(pair);
    const funding = await outputsOf(id.split(':')[0]!);
    const ownInputs = pair.a.get(id)!.ownInputs!.length;
    expect(funding.ins.length).toBeGreaterThan(ownInputs); // B's coins are in it too
    expect(funding.outs[0]!.value).toBe(1_000_000n);

    for (let i = 0; i < 5; i++) await pair.a.pay(id, 10_000n);
    await (await pair.b.payBack(id, 7_000n)).applied;
    await pair.a.pay(id, 1_000n);
    await (await pair.b.payBack(id, 2_000n)).applied;
    await waitUntil(() => pair.a.get(id)!.current!.index === 8, 'A to receive the countersignature');
    const stateA = pair.a.get(id)!.current!;
    expect(stateA).toMatchObject({ index: 8, balanceASat: 600_000n - 51_000n + 9_000n, balanceBSat: 400_000n + 51_000n - 9_000n });
    expect(pair.b.get(id)!.current).toMatchObject({ index: 8, balanceASat: stateA.balanceASat, balanceBSat: stateA.balanceBSat });
    expect(pair.a.summary(pair.a.get(id)!)).toMatchObject({ paidAtoBSat: 51_000n, paidBtoASat: 9_000n, updates: 8 });

    // B cannot promise more than it holds.
    await expect(pair.b.payBack(id, 10_000_000n)).rejects.toMatchObject({ code: 'INSUFFICIENT_BALANCE' });

    // A pay-back asked while A is away waits, durably, for A to come back and resume.
    pair.cut(true);
    const queued = await pair.b.payBack(id, 3_000n);
    expect(queued.sent).toBe(true); // the loopback link is "open" but drops everything now
    pair.cut(false);
    await pair.a.resume(id, pair.link.a);
    await queued.applied;
    await waitUntil(() => pair.a.get(id)!.current!.index === 9, 'A to receive the countersignature');
    expect(pair.a.get(id)!.current).toMatchObject({ index: 9, balanceASat: stateA.balanceASat + 3_000n });
    expect(pair.b.get(id)!.payBackQueue).toEqual([]);

    const closeTxid = await pair.a.close(id, 2);
    const last = pair.a.get(id)!.current!;
    await pair.mine(1);
    const close = await outputsOf(closeTxid);
    expect(close.locktime).toBe(0);
    const settlement = pair.a.get(id)!.settlement!;
    expect(settlement).toMatchObject({ kind: 'cooperative', txid: closeTxid });
    expect(settlement.valueASat + settlement.valueBSat + settlement.feeSat).toBe(1_000_000n);
    expect(last.balanceASat - settlement.valueASat + (last.balanceBSat - settlement.valueBSat)).toBe(settlement.feeSat);
    expect(pair.b.get(id)!.phase).toBe('closed');
  });

  it('refuses a state that takes B’s money without B asking', async () => {
    const pair = await duplexPair(env, {}, 0n);
    const id = await openConfirmed(pair, 300_000n, 0n);
    await pair.a.pay(id, 50_000n);
    const record = pair.a.get(id)!;
    // A proposes a "payment" in B's direction that B never asked for.
    const channel = pair.a.channelOf(record);
    const stolen = { index: 2, balanceASat: 290_000n, balanceBSat: 10_000n };
    const errors: string[] = [];
    const sig = env.secp.ecdsaSign(stateSighash(channel, stolen), pair.a.ownKey(record).privateKey);
    await pair.b.receive(msg('duplex-update', { channelId: id, ...stolen, signature: sig }), { send: (m) => m.type === 'error' && errors.push(m.code) });
    expect(errors).toEqual(['BALANCE_MISMATCH']);
    expect(pair.b.get(id)!.current!.index).toBe(1);

    // A stranger naming the channel cannot take over B's connection to A: not with a signature
    // of its own, not by replaying A's real resume (signed over A's connection challenge) on its
    // connection, and not on a connection without a challenge.
    const strangerGot: string[] = [];
    const stranger = { send: (m: { type: string; code?: string }) => strangerGot.push(m.code ?? m.type), challenge: new Uint8Array(32).fill(1) };
    await pair.b.receive(msg('duplex-resume', { channelId: id, index: 1, signature: sig }), stranger);
    expect(strangerGot).toEqual(['INVALID_SIGNATURE']);
    const seen: Message[] = [];
    const tapped = { send: (m: Message) => (seen.push(m), pair.link.a.send(m)) };
    await pair.a.receive(msg('challenge', { challenge: pair.link.b.challenge! }), tapped);
    await pair.a.resume(id, tapped);
    const resume = seen.find((m) => m.type === 'duplex-resume');
    expect(resume).toBeDefined();
    await pair.b.receive(resume!, stranger);
    expect(strangerGot).toEqual(['INVALID_SIGNATURE', 'INVALID_SIGNATURE']);
    await pair.b.receive(resume!, { send: (m: { type: string; code?: string }) => strangerGot.push(m.code ?? m.type) });
    expect(strangerGot).toEqual(['INVALID_SIGNATURE', 'INVALID_SIGNATURE', 'AUTH_INVALID']);
    const back = await pair.b.payBack(id, 1_000n); // still reaches A, which proposes it
    await back.applied;
    expect(strangerGot).toHaveLength(3);
  });

  it('takes no update once its close signature is out, even if the peer refuses or never answers', async () => {
    const pair = await duplexPair(env, {}, 0n);
    const id = await openConfirmed(pair, 300_000n, 0n);
    await pair.a.pay(id, 10_000n);
    // B refuses a close above its ceiling: A hears it at once (not by timeout)...
    await expect(pair.a.close(id, 600)).rejects.toMatchObject({ code: 'FEE_RATE_INVALID' });
    // ...but B holds A's signature on that close and could broadcast it any time: A is done updating.
    expect(pair.a.get(id)).toMatchObject({ phase: 'closing', close: { kind: 'cooperative', txHex: '' } });
    await expect(pair.a.pay(id, 1_000n)).rejects.toMatchObject({ code: 'CHANNEL_NOT_OPEN' });
    // Asking again at a rate B takes is safe (every close A signed pays the same balances).
    const txid = await pair.a.close(id, 2);
    await pair.mine(1);
    expect(pair.a.get(id)!.settlement).toMatchObject({ kind: 'cooperative', txid });
    expect(pair.b.get(id)!.phase).toBe('closed');
  });

  it('publishes the newest state at its locktime when a close is never answered', async () => {
    const pair = await duplexPair(env, { plannedUpdates: 4 }, 0n);
    const id = await openConfirmed(pair, 300_000n, 0n);
    await pair.a.pay(id, 10_000n);
    pair.cut(true);
    await expect(pair.a.close(id, 2)).rejects.toThrow(/timed out/);
    expect(pair.a.get(id)!.phase).toBe('closing');
    await pair.mineTo(stateLocktime(pair.a.get(id)!.terms!, 1));
    await pair.mine(1);
    expect(pair.a.get(id)!.settlement).toMatchObject({ kind: 'unilateral', stateIndex: 1 });
  });

  it('cancels a refused proposal (B still holds A’s signature on it) with a state above it', async () => {
    const pair = await duplexPair(env, {}, 0n);
    const id = await openConfirmed(pair, 300_000n, 0n);
    await pair.a.pay(id, 10_000n);
    pair.cut(true);
    const paying = pair.a.pay(id, 50_000n); // state 2: B "refuses" it, yet keeps A's signature
    await waitUntil(() => pair.a.get(id)!.pending?.index === 2, 'A to propose state 2');
    const refused = pair.a.get(id)!.pending!;
    pair.cut(false);
    await pair.a.receive(errorMessage('BALANCE_MISMATCH', 'no', 'reject', `${id}/2`), pair.link.a);
    await expect(paying).rejects.toMatchObject({ code: 'BALANCE_MISMATCH' });
    // A proposed state 3 with state 1's balances; B countersigns it (its balance does not drop).
    await waitUntil(() => pair.a.get(id)!.current!.index === 3, 'the cancelling state');
    expect(pair.a.get(id)!.current).toMatchObject({ balanceASat: 290_000n, balanceBSat: 10_000n });
    expect(pair.b.get(id)!.current).toMatchObject({ index: 3, balanceBSat: 10_000n });
    // B completes the refused state 2 itself: it is final only Δ blocks after state 3.
    const channel = pair.b.channelOf(pair.b.get(id)!);
    const sigB = env.secp.ecdsaSign(stateSighash(channel, refused), pair.b.ownKey(pair.b.get(id)!).privateKey);
    const claimed = signedStateTx(channel, refused, refused.sigA, sigB);
    pair.cut(true);
    await pair.mineTo(stateLocktime(channel, 3));
    const early = await env.backend.testAccept(claimed.toHex());
    expect(early.allowed === false && early.reason).toMatch(/final/i);
    expect(pair.a.summary(pair.a.get(id)!)).toMatchObject({ paidAtoBSat: 10_000n });
  });

  it('closes unilaterally from A: the newest state goes out the moment it is final', async () => {
    const pair = await duplexPair(env, { plannedUpdates: 5 });
    const id = await openConfirmed(pair);
    await pair.a.pay(id, 100_000n);
    await (await pair.b.payBack(id, 30_000n)).applied;
    await waitUntil(() => pair.a.get(id)!.current!.index === 2, 'A to receive the countersignature');
    pair.cut(true); // B vanishes
    const finalAt = await pair.watchA.forceClose(id);
    expect(finalAt).toBe(stateLocktime(pair.a.get(id)!.terms!, 2) + 1);
    await pair.mineTo(finalAt - 1); // tip = locktime: final now, A's watcher publishes it
    const record = pair.a.get(id)!;
    expect(record.close?.broadcastHeight).toBeDefined();
    await pair.mine(1);
    expect(pair.a.get(id)!.settlement).toMatchObject({ kind: 'unilateral', stateIndex: 2, valueASat: expect.any(BigInt) });
    const s = pair.a.get(id)!.settlement!;
    expect(s.valueASat + s.valueBSat + s.feeSat).toBe(1_000_000n);
    expect(pair.b.get(id)!.settlement).toMatchObject({ kind: 'unilateral', stateIndex: 2 }); // B's watcher reads the same spend
  });

  it('closes unilaterally from B, and an old state cannot beat the newest', async () => {
    const pair = await duplexPair(env, { plannedUpdates: 6 });
    const id = await openConfirmed(pair);
    await pair.a.pay(id, 100_000n);
    const old: SignedState = pair.b.get(id)!.current!; // state 1: B has 500,000
    await (await pair.b.payBack(id, 60_000n)).applied;
    await pair.a.pay(id, 5_000n); // state 3, newest
    pair.cut(true);
    await pair.watchB.forceClose(id);
    const channel = pair.b.channelOf(pair.b.get(id)!);
    const newestLock = stateLocktime(channel, 3);
    await pair.mineTo(newestLock - 1);
    // One block before its locktime, even the newest cannot be mined yet: the node says so.
    expect(pair.b.get(id)!.close?.broadcastHeight).toBeUndefined();
    const tooEarly = await env.backend.testAccept(pair.b.get(id)!.close!.txHex);
    expect(tooEarly.allowed === false && tooEarly.reason).toMatch(/final/i);
    const oldTx = signedStateTx(channel, old, old.sigA, old.sigB);
    await pair.mine(1);
    // At the newest state's locktime the old one is still Δ·2 blocks from final: not mineable.
    const early = await env.backend.testAccept(oldTx.toHex());
    expect(early.allowed).toBe(false);
    expect(early.allowed === false && early.reason).toMatch(/final/i);
    // Now the newest is published by B's watcher; A, the would-be cheater, tries state 1.
    const verdict = await env.backend.testAccept(oldTx.toHex());
    expect(verdict.allowed).toBe(false); // non-final for Δ more blocks (and in conflict with the newest)
    const inMempool = await env.backend.getTransaction(pair.b.get(id)!.close!.txid);
    expect(inMempool?.confirmations).toBe(0);
    await pair.mine(1);
    expect(pair.b.get(id)!.settlement).toMatchObject({ kind: 'unilateral', stateIndex: 3 });
    expect(pair.a.get(id)!.settlement).toMatchObject({ kind: 'unilateral', stateIndex: 3 });
    await expect(env.backend.broadcast(oldTx.toHex())).rejects.toThrow();
  });

  it('replaces at once an older state published with a high fee once its newest is final (no block in between)', async () => {
    const pair = await duplexPair(env, { plannedUpdates: 6 });
    const id = await openConfirmed(pair);
    await pair.a.pay(id, 100_000n);
    await (await pair.b.payBack(id, 60_000n)).applied;
    const old: SignedState = pair.b.get(id)!.current!; // state 2: A has 560,000
    await pair.a.pay(id, 50_000n); // state 3, newest: A has 510,000
    expect(old.index).toBe(2);
    const channel = pair.b.channelOf(pair.b.get(id)!);
    // A fee coin of A's own, confirmed, for the old state: its whole value is fee (~30 sat/vB).
    await env.wallet.send(env.wallet.receiveAddress(), 9_000n, 2);
    await env.mine(1);
    await env.wallet.sync();
    const coin = env.wallet.coins().find((c) => c.valueSat === 9_000n && c.confirmations > 0 && !c.reserved)!;
    // No watcher runs until the old state is final too (B's watcher was away meanwhile).
    await env.mineTo(stateLocktime(channel, 2));
    const cheat = signedStateTx(channel, old, old.sigA, old.sigB);
    cheat.addInput(txidToHash(coin.outpoint.txid), coin.outpoint.vout, SEQUENCE_LOCKTIME_RBF);
    for (const { index, stack } of env.wallet.signContribution(cheat, [1])) cheat.setWitness(index, stack);
    await env.backend.broadcast(cheat.toHex());
    // One check of B's: the old state must leave the mempool now, not a block later.
    await pair.b.options.wallet.sync();
    await pair.watchB.check();
    const close = pair.b.get(id)!.close!;
    expect(close).toMatchObject({ kind: 'unilateral', stateIndex: 3 });
    expect(await env.backend.getTransaction(cheat.getId())).toBeNull();
    expect((await env.backend.getTransaction(close.txid))?.confirmations).toBe(0);
    await pair.mine(1);
    expect(pair.b.get(id)!.settlement).toMatchObject({ kind: 'unilateral', stateIndex: 3, txid: close.txid });
  });

  it('bumps a published state to its target rate with a fee coin sized for it, the surplus back to the wallet', async () => {
    const pair = await duplexPair(env, { plannedUpdates: 4 });
    const id = await openConfirmed(pair);
    await pair.a.pay(id, 20_000n);
    pair.cut(true);
    const finalAt = await pair.watchA.forceClose(id); // splits off the first bump's coin now
    await pair.mineTo(finalAt - 1); // that coin confirms; at the locktime the state goes out
    const first = pair.a.get(id)!.close!;
    expect(first.broadcastHeight).toBeDefined();
    const replaced = { feeSat: first.feeSat, vsize: Transaction.fromHex(first.txHex).virtualSize() };
    // +25 % over the state's rate, and strictly above the replaced version's own rate (BIP125).
    const replacedRate = Math.floor(Number(replaced.feeSat) / replaced.vsize) + 1;
    const targetRate = Math.max(bumpedFeeRate(first.feeRateSatPerVb, pair.a.options.policy.maxFeeRateSatPerVb), replacedRate);
    const bumped = await pair.watchA.bump(pair.a.get(id)!, (await env.backend.getTip()).height, replaced);
    expect(bumped).not.toBeNull();
    expect(await env.backend.getTransaction(first.txid)).toBeNull(); // replaced (BIP125)
    // The node's view of the bumped state: its fee rate is the target's, not a whole coin's.
    const tx = await outputsOf(bumped!);
    expect(tx.ins.length).toBe(2);
    const feeInput = tx.ins[1]!;
    const split = await outputsOf(hashToTxid(feeInput.hash));
    const coinSat = split.outs[feeInput.index]!.value;
    const feeSat = 1_000_000n + coinSat - tx.outs.reduce((sum, o) => sum + o.value, 0n);
    const vsize = BigInt(tx.virtualSize());
    expect(feeSat).toBeGreaterThanOrEqual(BigInt(targetRate) * vsize);
    // Never more than the most of what the target rate, BIP125 (the replaced fee plus 1 sat/vB of
    // the new size) and dust (a fee coin of at least 294 sat) force; sizes are planned worst-case.
    const forcedSat = [BigInt(targetRate) * (vsize + 3n), replaced.feeSat + vsize + 3n, first.feeSat + 294n].reduce((a, b) => (a > b ? a : b));
    expect(feeSat).toBeLessThanOrEqual(forcedSat);
    // The coin was split off A's wallet coins: their surplus went back to the wallet as change
    // (none only when it was smaller than a change output costs: the wallet's coin selection).
    let splitInSat = 0n;
    for (const input of split.ins) splitInSat += (await outputsOf(hashToTxid(input.hash))).outs[input.index]!.value;
    const splitFeeSat = splitInSat - split.outs.reduce((sum, o) => sum + o.value, 0n);
    expect(splitFeeSat).toBeLessThan(1_000n);
    await env.wallet.sync();
    split.outs.forEach((_, vout) => {
      // Wallet coins (the next bump's split may have spent the change already: the wallet still knows it).
      expect(env.wallet.state().coins[`${split.getId()}:${vout}`]).toBeDefined();
    });
    await pair.mine(1);
    expect(pair.a.get(id)!.settlement).toMatchObject({ kind: 'unilateral', txid: bumped, stateIndex: 1 });
  });

  it('frees the bump’s fee coin when the channel is settled by another transaction', async () => {
    const pair = await duplexPair(env, { plannedUpdates: 4 });
    const id = await openConfirmed(pair);
    await pair.a.pay(id, 20_000n);
    pair.cut(true);
    const finalAt = await pair.watchA.forceClose(id);
    await pair.mineTo(finalAt - 1); // A's state goes out at its locktime
    const first = pair.a.get(id)!.close!;
    const bumped = await pair.watchA.bump(pair.a.get(id)!, (await env.backend.getTip()).height, { feeSat: first.feeSat, vsize: Transaction.fromHex(first.txHex).virtualSize() });
    expect(bumped).not.toBeNull();
    const bumpReservations = () => env.wallet.state().reservations.filter((r) => r.txid.startsWith(`bump:${id}:`));
    expect(bumpReservations()).toHaveLength(1);
    // B's own version of the same state, with B's fee reserve coin as its fee input, replaces A's.
    const walletB = pair.b.options.wallet;
    await walletB.sync();
    const reserve = walletB.coins().find((c) => c.valueSat === pair.b.options.policy.feeReserveSat && c.confirmations > 0 && !c.reserved)!;
    const b = pair.b.get(id)!;
    const theirs = signedStateTx(pair.b.channelOf(b), b.current!, b.current!.sigA, b.current!.sigB);
    theirs.addInput(txidToHash(reserve.outpoint.txid), reserve.outpoint.vout, SEQUENCE_LOCKTIME_RBF);
    for (const { index, stack } of walletB.signContribution(theirs, [1])) theirs.setWitness(index, stack);
    await env.backend.broadcast(theirs.toHex());
    expect(await env.backend.getTransaction(bumped!)).toBeNull();
    await pair.mine(1);
    expect(pair.a.get(id)!.settlement).toMatchObject({ kind: 'unilateral', txid: theirs.getId(), stateIndex: 1 });
    // A's fee coin was never spent: it is A's to use again.
    expect(bumpReservations()).toEqual([]);
  });

  it('resumes a proposal whose countersignature was lost when A crashed', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-duplex-restart-'));
    try {
      const pair = await duplexPair(env, {}, 0n, path.join(dir, 'a.db'));
      const id = await openConfirmed(pair, 200_000n, 0n);
      await pair.a.pay(id, 1_000n);
      pair.cutToA(true); // B gets the next proposal and countersigns; A never hears back
      const lost = pair.a.pay(id, 2_000n);
      await waitUntil(() => pair.b.get(id)!.current!.index === 2, 'B to countersign state 2');
      expect(pair.a.get(id)!.pending?.index).toBe(2);
      // A restarts from its store (and reconnects: B's messages reach it again, the connection's
      // challenge first): the proposal is there, signed and durable.
      pair.cutToA(false);
      const a2 = await pair.restartA();
      lost.catch(() => undefined);
      expect(a2.get(id)!.pending).toMatchObject({ index: 2, balanceASat: 197_000n });
      await a2.resume(id, pair.link.a); // resends it; B answers with its countersignature again
      expect(a2.get(id)!.current).toMatchObject({ index: 2, balanceASat: 197_000n, balanceBSat: 3_000n });
      expect(a2.get(id)!.pending).toBeUndefined();
      await a2.pay(id, 500n);
      expect(pair.b.get(id)!.current).toMatchObject({ index: 3, balanceBSat: 3_500n });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a rollover while updates are left, and the channel carries on', async () => {
    const pair = await duplexPair(env, { plannedUpdates: 20 });
    const id = await openConfirmed(pair);
    await expect(pair.a.rollover(id)).rejects.toMatchObject({ code: 'UNEXPECTED_MESSAGE' });
    expect(pair.a.get(id)).toMatchObject({ phase: 'open', rolloverProposal: { refused: true } });
    expect(pair.b.get(id)!.phase).toBe('open');
    await pair.a.pay(id, 1_000n);
    expect(pair.b.get(id)!.current!.index).toBe(1);
  });

  it('rolls over into a new channel when the update budget runs out', async () => {
    const pair = await duplexPair(env, { plannedUpdates: 3 });
    const id = await openConfirmed(pair);
    let paid = 0;
    while (pair.a.get(id)!.phase === 'open' && paid < 10) {
      let settled = false;
      const paying = pair.a.pay(id, 1_000n).finally(() => (settled = true));
      paid++;
      // A payment that needs a rollover waits for the new funding: mine it once it is in the mempool.
      const rollover = () => (pair.a.get(id)!.close?.kind === 'rollover' ? pair.a.get(id)!.close!.txid : undefined);
      const inMempool = async () => rollover() !== undefined && (await env.backend.getTransaction(rollover()!)) !== null;
      await waitUntil(async () => settled || (await inMempool()), 'the payment, or its rollover in the mempool');
      if (!settled) await pair.mine(1);
      await paying;
    }
    const old = pair.a.get(id)!;
    expect(old.close?.kind).toBe('rollover');
    const next = pair.a.get(id, true)!;
    expect(next.channelId).toBe(old.close!.successorId);
    expect(next.predecessorId).toBe(id);
    expect(next.current!.index).toBe(1); // the payment that triggered it went into the new channel
    await pair.mine(1);
    expect(pair.a.get(id)!.settlement).toMatchObject({ kind: 'rollover' });
    expect(pair.b.get(next.channelId!)!.current!.index).toBe(1);
    const total = next.terms!.contributionASat + next.terms!.contributionBSat;
    expect(total + pair.a.get(id)!.settlement!.feeSat).toBe(1_000_000n);
  });

  it('lets no force close land between B’s tip read and its countersignature', async () => {
    const tip = heldTip(env.backend);
    const pair = await duplexPair(env, {}, 0n, ':memory:', tip.backend);
    const id = await openConfirmed(pair, 300_000n, 0n);
    await pair.a.pay(id, 10_000n);
    tip.hold(); // B's next tip read (checking state 2) waits until released
    const paying = pair.a.pay(id, 20_000n);
    await waitUntil(() => tip.waiting === 1, 'B to read the tip for state 2');
    const tempId = pair.b.get(id)!.tempId;
    expect(pair.b.lockQueueLength(tempId)).toBe(1); // B's step of state 2, at its tip read
    const closing = pair.watchB.forceClose(id);
    // The close queues behind that step on the channel's lock (unlocked, it would run now).
    await waitUntil(() => pair.b.lockQueueLength(tempId) === 2, 'the force close to queue on the channel lock');
    tip.release();
    await paying.catch(() => undefined);
    await closing;
    const b = pair.b.get(id)!;
    // Whatever B countersigned last is what its watcher publishes.
    expect(b.close).toMatchObject({ kind: 'unilateral', stateIndex: b.current!.index });
    expect(b.current!.index).toBe(2);
  });

  it('publishes the state countersigned after a force close, not the one the close first stored', async () => {
    const pair = await duplexPair(env);
    const id = await openConfirmed(pair);
    await pair.a.pay(id, 100_000n); // state 1
    pair.cutToA(true); // B's countersignature of state 2 is held back
    const paying = pair.a.pay(id, 20_000n);
    await waitUntil(() => pair.b.get(id)!.current!.index === 2, 'B to countersign state 2');
    await pair.watchA.forceClose(id); // A stores a close of state 1, its newest both signed so far
    expect(pair.a.get(id)!.close).toMatchObject({ kind: 'unilateral', stateIndex: 1 });
    // Now the countersignature arrives.
    const signed = pair.b.get(id)!.current!;
    await pair.a.receive(msg('duplex-countersign', { channelId: id, index: 2, signature: signed.sigB }), pair.link.a);
    await paying;
    expect(pair.a.get(id)!.current!.index).toBe(2);
    expect(pair.a.get(id)!.close).toMatchObject({ kind: 'unilateral', stateIndex: 2 });
    pair.cutToA(false);
    const channel = pair.a.channelOf(pair.a.get(id)!);
    await pair.mineTo(stateLocktime(channel, 2));
    await pair.mine(1);
    expect(pair.a.get(id)!.settlement).toMatchObject({ kind: 'unilateral', stateIndex: 2, txid: pair.a.get(id)!.close!.txid });
  });

  it('lets its own older state confirm when the state countersigned after the force close pays it less (no ceiling-sized fee)', async () => {
    const pair = await duplexPair(env);
    const id = await openConfirmed(pair);
    await pair.a.pay(id, 100_000n); // state 1: A has 500,000
    pair.cutToA(true); // B's countersignature of state 2 is held back
    const paying = pair.a.pay(id, 20_000n); // state 2 pays B: A has 480,000
    await waitUntil(() => pair.b.get(id)!.current!.index === 2, 'B to countersign state 2');
    // A confirmed coin of A's own that a bump up to the ceiling could take whole as fee.
    await env.wallet.send(env.wallet.receiveAddress(), 20_000n, 2);
    await env.mine(1);
    await env.wallet.sync();
    const channel = pair.a.channelOf(pair.a.get(id)!);
    // State 1 is final now, so A's force close puts it in the mempool at once (no watcher ran).
    await env.mineTo(stateLocktime(channel, 1));
    await pair.watchA.forceClose(id);
    const first = pair.a.get(id)!.close!;
    expect(first).toMatchObject({ kind: 'unilateral', stateIndex: 1 });
    expect((await env.backend.getTransaction(first.txid))?.confirmations).toBe(0);
    // Then B's countersignature of state 2 arrives: the close is rebuilt to state 2.
    const signed = pair.b.get(id)!.current!;
    await pair.a.receive(msg('duplex-countersign', { channelId: id, index: 2, signature: signed.sigB }), pair.link.a);
    await paying;
    pair.cutToA(false);
    expect(pair.a.get(id)!.close).toMatchObject({ kind: 'unilateral', stateIndex: 2 });
    // One check of A's: its own state 1 pays A more than state 2; nothing is spent to replace it.
    await pair.a.options.wallet.sync();
    await pair.watchA.check();
    expect(await env.backend.getTransaction(first.txid)).not.toBeNull();
    expect(pair.a.get(id)!.close!.bumpReservation).toBeUndefined();
    expect(env.wallet.state().reservations.some((r) => r.txid.startsWith(`bump:${id}:`))).toBe(false);
    await env.mine(1);
    await pair.watchA.check();
    expect(pair.a.get(id)!.settlement).toMatchObject({ kind: 'unilateral', stateIndex: 1, txid: first.txid });
  });

  it('signs the rollover SIGHASH_ALL: a third party cannot add an input and change the new channel’s funding txid', async () => {
    const pair = await duplexPair(env, { plannedUpdates: 2 }, 0n);
    const id = await openConfirmed(pair, 300_000n, 0n);
    await pair.a.pay(id, 10_000n);
    // A stranger with a confirmed 5,000-sat coin of its own.
    const stranger = await Wallet.open({ seed: randomBytes(32), network: 'regtest', backend: env.backend, secp: env.secp, birthdayHeight: (await env.backend.getTip()).height });
    await env.wallet.send(stranger.receiveAddress(), 5_000n, 2);
    await pair.mine(1);
    await stranger.sync();
    const nextId = await pair.a.rollover(id);
    const roll = Transaction.fromHex(pair.a.get(id)!.close!.txHex);
    expect(`${roll.getId()}:0`).toBe(nextId);
    expect((await env.backend.getTransaction(roll.getId()))?.confirmations).toBe(0);
    // It adds that coin as an input (all fee) to the rollover in the mempool.
    const coin = stranger.coins().find((c) => c.valueSat === 5_000n)!;
    const mutated = roll.clone();
    mutated.addInput(txidToHash(coin.outpoint.txid), coin.outpoint.vout, SEQUENCE_LOCKTIME_RBF);
    for (const { index, stack } of stranger.signContribution(mutated, [1])) mutated.setWitness(index, stack);
    expect(mutated.getId()).not.toBe(roll.getId());
    // The channel signatures commit to every input: the node refuses the mutated rollover.
    await expect(env.backend.broadcast(mutated.toHex())).rejects.toThrow(/signature|script|verify/i);
    await pair.mine(1);
    expect(pair.a.get(id)!.settlement).toMatchObject({ kind: 'rollover', txid: roll.getId() });
    await pair.a.pay(nextId, 1_000n); // the new channel's states spend an outpoint that exists
    expect(pair.b.get(nextId)!.current!.index).toBe(1);
  });

  it('applies a pay request queued before a rollover in the new channel, and its caller hears of it', async () => {
    const pair = await duplexPair(env, { plannedUpdates: 2 }, 0n);
    const id = await openConfirmed(pair, 300_000n, 0n);
    await pair.a.pay(id, 10_000n);
    pair.cut(true);
    const back = await pair.b.payBack(id, 2_000n); // A is away: B's request waits in its queue
    let applied: SignedState | undefined;
    void back.applied.then((s) => (applied = s));
    pair.cut(false);
    const nextId = await pair.a.rollover(id);
    expect(pair.b.get(nextId)!.payBackQueue).toEqual([{ requestId: back.requestId, amountSat: 2_000n }]);
    const bBefore = pair.b.get(nextId)!.current!.balanceBSat; // B's 10,000 less its share of the rollover's fee
    await pair.mine(1);
    await pair.a.resume(nextId, pair.link.a); // B sends the queued request on the new channel; A proposes it
    await waitUntil(() => applied !== undefined, 'the pay-back call to hear its request was applied in the new channel');
    expect(applied).toMatchObject({ index: 1, balanceBSat: bBefore - 2_000n });
    expect(pair.a.get(nextId)!.current).toEqual(pair.b.get(nextId)!.current);
  });

  it('takes a payment right after a rollover confirmed, when the payer saw the block before the payee’s watcher', async () => {
    const pair = await duplexPair(env, { plannedUpdates: 2 }, 0n);
    const id = await openConfirmed(pair, 300_000n, 0n);
    await pair.a.pay(id, 10_000n);
    const nextId = await pair.a.rollover(id);
    await env.mine(1);
    await env.wallet.sync();
    await pair.watchA.check(); // only A's watcher has seen the block: B's view is one tip stale
    expect(pair.a.get(nextId)!.fundingConfirmed).toBe(true);
    expect(pair.b.get(nextId)!.fundingConfirmed).toBe(false);
    await pair.a.pay(nextId, 600n); // B asks the node before refusing for missing confirmations
    expect(pair.b.get(nextId)!.current).toMatchObject({ index: 1, balanceASat: pair.a.get(nextId)!.current!.balanceASat });
    expect(pair.b.get(nextId)!.fundingConfirmed).toBe(true);
  });

  it('aborts a rollover’s new channel once the old one is settled by its newest state instead', async () => {
    const pair = await duplexPair(env, { plannedUpdates: 2 }, 0n);
    const id = await openConfirmed(pair, 300_000n, 0n);
    await pair.a.pay(id, 10_000n);
    pair.cutToA(true); // B signs the rollover; A never hears back, so nobody completes it
    await expect(pair.a.rollover(id)).rejects.toThrow(/timed out/);
    const successorId = pair.b.get(id)!.close!.successorId!;
    expect(pair.b.get(successorId)!.phase).toBe('open');
    await pair.mineTo(stateLocktime(pair.b.get(id)!.terms!, 1)); // final: B's watcher publishes state 1
    await pair.mine(1);
    expect(pair.b.get(id)!.settlement).toMatchObject({ kind: 'unilateral', stateIndex: 1 });
    expect(pair.b.get(successorId)!.phase).toBe('aborted');
  });
});
