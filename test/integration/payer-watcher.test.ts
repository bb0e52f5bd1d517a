/**
 * The payer's watcher on a real btcd: refunds at expiry when the payee vanished (not a block
 * earlier), replaces a stuck refund with a higher fee, and records the payee's close with what
 * the chain paid the payer.
 */
import { Transaction } from 'bitcoinjs-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localPair, waitUntil, type LocalPair } from '../helpers/local-pair.js';
import { PayerWatcher } from '../../src/payer/watcher.js';
import type { Variant } from '../../src/protocol/scripts.js';
import { startFundedEnv, type RegtestEnv } from '../helpers/regtest-env.js';

const CAPACITY = 300_000n;
let env: RegtestEnv;

beforeAll(async () => {
  env = await startFundedEnv();
});
afterAll(async () => {
  await env?.stop();
});

async function openPair(variant: Variant, expiryBlocks: number): Promise<LocalPair> {
  const pair = await localPair({ secp: env.secp, backend: env.backend, payerWallet: env.wallet, feeRateSatPerVb: 2 });
  const opening = pair.payer.open({ variant, capacitySat: CAPACITY, expiryBlocks });
  await Promise.race([pair.payer.waitFor((s) => s.type === 'AwaitingOpen'), opening]);
  await waitUntil(async () => (await env.backend.getTransaction(pair.payer.channel.funding.txid)) !== null, 'funding broadcast');
  await env.mine(1);
  await opening;
  return pair;
}

function watcher(pair: LocalPair): PayerWatcher {
  return new PayerWatcher(pair.payer, { backend: env.backend, fallbackFeeRateSatPerVb: 1, maxFeeRateSatPerVb: 50, bumpAfterBlocks: 2, log: () => undefined });
}

const tipPlus = async (n: number) => {
  const tip = await env.backend.getTip();
  return { height: tip.height + n, hash: tip.hash };
};

describe.each(['spilman-v1', 'spilman-v2'] as const)('payer watcher, %s', (variant) => {
  it('refunds once final when the payee vanished, and re-signs a stuck refund with a higher fee', async () => {
    const pair = await openPair(variant, 10);
    await pair.payer.pay(10_000n); // paid, but the payee never closes
    pair.stop();
    const w = watcher(pair);
    await env.mineTo(pair.payer.channel.expiryHeight - 1);
    expect(await w.tick(await env.backend.getTip())).toEqual({ type: 'waiting', blocksToExpiry: 1 });
    await env.mine(1);
    const first = await w.tick(await env.backend.getTip());
    expect(first.type).toBe('refund-broadcast');
    expect(await w.tick(await tipPlus(1))).toMatchObject({ type: 'spent-unconfirmed' }); // one block: wait
    // Two blocks pass without it confirming (simulated: btcd would mine it): replaced.
    const bumped = await w.tick(await tipPlus(2));
    if (first.type !== 'refund-broadcast' || bumped.type !== 'refund-bumped') throw new Error(`expected a bump, got ${JSON.stringify(bumped)}`);
    expect(bumped.feeRateSatPerVb).toBeGreaterThan(first.feeRateSatPerVb);
    expect(await env.backend.getTransaction(first.txid)).toBeNull();
    await env.mine(1);
    const settled = await w.tick(await env.backend.getTip());
    const tx = Transaction.fromHex((await env.backend.getTransaction(bumped.txid))!.hex);
    expect(settled).toEqual({ type: 'settled', by: 'refund', txid: bumped.txid, payerValueSat: tx.outs[0]!.value });
    expect(CAPACITY - tx.outs[0]!.value).toBeGreaterThanOrEqual(BigInt(Math.ceil(tx.virtualSize() * bumped.feeRateSatPerVb))); // the fee is the payer's
    expect(pair.payer.state).toMatchObject({ type: 'Closed', settlement: { by: 'refund' } });
  });

  it("records the payee's close with what the chain paid the payer", async () => {
    const pair = await openPair(variant, 30);
    for (let i = 0; i < 5; i++) await pair.payer.pay(7_000n);
    const close = await pair.payee.close(pair.payer.channel.id, 2);
    const w = watcher(pair);
    expect(await w.tick(await env.backend.getTip())).toEqual({ type: 'spent-unconfirmed', txid: close.txid });
    await env.mine(1);
    expect(await w.tick(await env.backend.getTip())).toEqual({ type: 'settled', by: 'close', txid: close.txid, payerValueSat: CAPACITY - 35_000n });
    pair.stop();
  });
});
