/**
 * The seed's channel on a real btcd (Bitcoin-Core-like policy: non-standard and non-final
 * transactions are rejected). Every assertion about money reads the node, not our books.
 */
import { Transaction } from 'bitcoinjs-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BroadcastRejectedError } from '../../src/chain/backend.js';
import { equalBytes } from '../../src/protocol/bytes.js';
import type { Variant } from '../../src/protocol/scripts.js';
import { localPair, waitUntil, type LocalPair } from '../helpers/local-pair.js';
import { startFundedEnv, type RegtestEnv } from '../helpers/regtest-env.js';

const FEE_RATE = 2;
const CAPACITY = 1_000_000n;
let env: RegtestEnv;

beforeAll(async () => {
  env = await startFundedEnv();
});
afterAll(async () => {
  await env?.stop();
});

/** Opens a channel, mining the funding confirmation the payee waits for. */
async function openChannel(variant: Variant, expiryBlocks = 30): Promise<LocalPair> {
  const pair = await localPair({ secp: env.secp, backend: env.backend, payerWallet: env.wallet, feeRateSatPerVb: FEE_RATE });
  const opening = pair.payer.open({ variant, capacitySat: CAPACITY, expiryBlocks });
  await Promise.race([pair.payer.waitFor((s) => s.type === 'AwaitingOpen'), opening]);
  const txid = pair.payer.channel.funding.txid;
  await waitUntil(async () => (await env.backend.getTransaction(txid)) !== null, 'the funding in the mempool');
  await env.mine(1);
  await opening;
  return pair;
}

/** Output values of `txid` as the node has it, split by who they pay. */
async function onChainSplit(txid: string, pair: LocalPair) {
  const status = await env.backend.getTransaction(txid);
  if (!status) throw new Error(`node does not know ${txid}`);
  const tx = Transaction.fromHex(status.hex);
  const to = (script: Uint8Array) => tx.outs.filter((o) => equalBytes(o.script, script)).reduce((s, o) => s + o.value, 0n);
  const fee = CAPACITY - tx.outs.reduce((s, o) => s + o.value, 0n);
  return { confirmations: status.confirmations, payee: to(pair.payeeScript), payer: to(pair.payerScript), fee, outputs: tx.outs.length, tx };
}

describe.each(['spilman-v1', 'spilman-v2'] as const)('%s on regtest', (variant) => {
  it('happy path: 1,000 payments, the payee closes, the node pays each side exactly', async () => {
    const pair = await openChannel(variant);
    try {
      let acked = 0n;
      for (let i = 0; i < 1000; i++) acked = await pair.payer.pay(37n);
      expect(acked).toBe(37_000n);
      const close = await pair.payee.close(pair.payer.channel.id, FEE_RATE);
      await env.mine(1);
      await waitUntil(() => pair.payee.channel(pair.payer.channel.id)?.type === 'Closed', 'the close to confirm');
      const split = await onChainSplit(close.txid, pair);
      expect(split.confirmations).toBeGreaterThanOrEqual(1);
      expect(split.payer).toBe(CAPACITY - acked);
      expect(split.payee).toBe(acked - split.fee);
      expect(split.fee).toBe(close.feeSat);
      expect(split.payee + split.payer + split.fee).toBe(CAPACITY);
      expect(Number(split.fee)).toBeGreaterThanOrEqual(split.tx.virtualSize() * FEE_RATE);
    } finally {
      pair.stop();
    }
  });

  it('refund path: the payee vanishes; the refund is non-final before expiry and mined at expiry', async () => {
    const pair = await openChannel(variant, 15);
    pair.stop(); // the payee is gone
    const expiry = pair.payer.channel.expiryHeight;
    await env.mineTo(expiry - 1);
    const early = pair.payer.refund(FEE_RATE);
    await expect(early).rejects.toBeInstanceOf(BroadcastRejectedError);
    await expect(early).rejects.toThrow(/final|locktime/i);
    await env.mine(1); // tip = expiry: a tx with nLockTime = expiry may enter the next block
    const refund = await pair.payer.refund(FEE_RATE);
    await env.mine(1);
    const split = await onChainSplit(refund.txid, pair);
    expect(split.confirmations).toBe(1);
    expect(split.tx.locktime).toBe(expiry);
    expect(split.payer).toBe(CAPACITY - refund.feeSat);
    expect(split.fee).toBe(refund.feeSat);
  });

  it('fee replacement: the payee replaces its close with a higher fee from its own share (BIP125)', async () => {
    const pair = await openChannel(variant);
    try {
      for (let i = 0; i < 10; i++) await pair.payer.pay(5_000n);
      const first = await pair.payee.close(pair.payer.channel.id, 1);
      expect(await env.backend.getTransaction(first.txid)).toMatchObject({ confirmations: 0 });
      const bumped = await pair.payee.close(pair.payer.channel.id, 10);
      expect(bumped.txid).not.toBe(first.txid);
      expect(bumped.feeSat).toBeGreaterThan(first.feeSat);
      expect(await env.backend.getTransaction(first.txid)).toBeNull(); // evicted from the mempool
      await env.mine(1);
      const split = await onChainSplit(bumped.txid, pair);
      expect(split.confirmations).toBe(1);
      expect(split.payer).toBe(CAPACITY - 50_000n); // the payer's change is untouched
      expect(split.payee).toBe(50_000n - bumped.feeSat);
    } finally {
      pair.stop();
    }
  });
});
