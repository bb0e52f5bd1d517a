/**
 * Funding a channel from an external wallet through a PSBT (BIP174), on a real btcd. The
 * external wallet is bitcoinjs-lib's `Psbt` with a BIP32 key of its own (test/helpers/
 * external-signer.ts): paychan prints an output-only PSBT, the wallet adds its input and change
 * and signs, paychan checks it and finishes the opening; the channel opens and pays, for v1
 * (the payee signs the refund before the funding is shown) and v2. Refused PSBTs change nothing.
 */
import { Transaction } from 'bitcoinjs-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { equalBytes } from '../../src/protocol/bytes.js';
import { fundingScriptOf } from '../../src/protocol/channel.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { PsbtFundingError, type PsbtFundingErrorCode } from '../../src/wallet/psbt-funding.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { ExternalSigner, type Utxo } from '../helpers/external-signer.js';
import { localPair, waitUntil } from '../helpers/local-pair.js';
import { startFundedEnv, type RegtestEnv } from '../helpers/regtest-env.js';

const FEE_RATE = 2;
const CAPACITY = 1_000_000n;
const signer = new ExternalSigner('paychan psbt integration test wallet');
let env: RegtestEnv;

beforeAll(async () => {
  env = await startFundedEnv();
});
afterAll(async () => {
  await env?.stop();
});

/** Gives the external wallet one confirmed coin of `valueSat` (paid from the regtest env's mined coins). */
async function fundExternalWallet(valueSat: bigint): Promise<Utxo> {
  const { txHex, txid } = await env.wallet.fund([{ script: signer.script, valueSat }], FEE_RATE);
  await env.backend.broadcast(txHex);
  await env.mine(1);
  const vout = Transaction.fromHex(txHex).outs.findIndex((o) => equalBytes(o.script, signer.script) && o.value === valueSat);
  return { txid, vout, valueSat };
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof PsbtFundingError || err instanceof ProtocolError) return err.code;
    throw err;
  }
  throw new Error('not refused');
}

describe.each(['spilman-v1', 'spilman-v2'] as const)('%s funded by an external wallet', (variant) => {
  it('prints an output-only PSBT, takes it back signed, opens, pays and closes on btcd', async () => {
    const utxo = await fundExternalWallet(3_000_000n);
    const payerStore = new MemoryStore();
    const pair = await localPair({ secp: env.secp, backend: env.backend, payerWallet: env.wallet, feeRateSatPerVb: FEE_RATE, payerStore });
    try {
      const walletCoinsBefore = env.wallet.balance().confirmedSat;
      const request = await pair.payer.proposeForExternalFunding({ variant, capacitySat: CAPACITY, expiryBlocks: 30 });
      expect(request.amountSat).toBe(CAPACITY);
      expect(request.variant).toBe(variant);
      // A wallet paying a URI broadcasts at once: offered only when no refund signature must come first.
      if (variant === 'spilman-v1') expect(request.bip21).toBeNull();
      else expect(request.bip21).toContain(request.channelAddress);
      // The pending opening is saved: another process could finish it.
      const saved = (await payerStore.loadPayerChannels()).find((c) => c.tempId === request.tempId);
      expect(saved?.state.type).toBe('Funding');

      // The wallet adds its coin and change and signs; paychan never sees its key.
      const signed = signer.fundAndSign(request.psbt, utxo, 1_000n);
      const opening = pair.payer.fundWithSigned(signed.toBase64());
      await Promise.race([pair.payer.waitFor((s) => s.type === 'AwaitingOpen'), opening]);
      const state = pair.payer.state;
      if (state?.type !== 'AwaitingOpen') throw new Error(`state ${state?.type}`);
      // v1: the payee's refund signature was verified before the funding went out; v2 needs none.
      if (variant === 'spilman-v1') expect(state.payeeRefundSignature).not.toBeNull();
      else expect(state.payeeRefundSignature).toBeNull();
      const fundingTxid = pair.payer.channel.funding.txid;
      expect(fundingTxid).toBe(signed.extractTransaction(true).getId());
      await waitUntil(async () => (await env.backend.getTransaction(fundingTxid)) !== null, 'the funding in the mempool');
      await env.mine(1);
      const channel = await opening;

      // On chain: the external coin pays the channel output, the payer's own wallet paid nothing.
      const funding = Transaction.fromHex((await env.backend.getTransaction(fundingTxid))!.hex);
      expect(funding.ins.map((i) => Buffer.from(i.hash).reverse().toString('hex'))).toEqual([utxo.txid]);
      expect(equalBytes(funding.outs[channel.funding.vout]!.script, fundingScriptOf(channel).fundingScript)).toBe(true);
      expect(funding.outs[channel.funding.vout]!.value).toBe(CAPACITY);
      await env.wallet.sync();
      expect(env.wallet.balance().confirmedSat).toBeGreaterThanOrEqual(walletCoinsBefore);

      let acked = 0n;
      for (let i = 0; i < 20; i++) acked = await pair.payer.pay(500n);
      expect(acked).toBe(10_000n);
      const close = await pair.payee.close(channel.id, FEE_RATE);
      await env.mine(1);
      await waitUntil(() => pair.payee.channel(channel.id)?.type === 'Closed', 'the close to confirm');
      const closeTx = Transaction.fromHex((await env.backend.getTransaction(close.txid))!.hex);
      expect(closeTx.outs.filter((o) => equalBytes(o.script, pair.payerScript)).reduce((s, o) => s + o.value, 0n)).toBe(CAPACITY - acked);
    } finally {
      pair.stop();
    }
  });

  it('refuses a PSBT that is unsigned, pays another amount or another output: nothing changes, nothing is broadcast', async () => {
    const utxo = await fundExternalWallet(2_000_000n);
    const pair = await localPair({ secp: env.secp, backend: env.backend, payerWallet: env.wallet, feeRateSatPerVb: FEE_RATE });
    try {
      const request = await pair.payer.proposeForExternalFunding({ variant, capacitySat: CAPACITY, expiryBlocks: 30 });
      const before = pair.payer.state;
      const codes: string[] = [];
      codes.push(await refusal(pair.payer.fundWithSigned(request.psbt)));
      codes.push(await refusal(pair.payer.fundWithSigned(signer.fundAndSign(request.psbt, utxo, 1_000n, { sign: false }).toBase64())));
      // A PSBT the wallet made for another amount, or for its own address.
      const other = (script: Uint8Array, valueSat: bigint) => {
        const tx = new Transaction();
        tx.version = 2;
        tx.addInput(Buffer.from(utxo.txid, 'hex').reverse(), utxo.vout);
        tx.addOutput(script, valueSat);
        return tx;
      };
      if (before?.type !== 'Funding') throw new Error(`state ${before?.type}`);
      const lock = fundingScriptOf(before.terms);
      const signedOther = (script: Uint8Array, valueSat: bigint) => {
        const t = other(script, valueSat);
        t.setWitness(0, [new Uint8Array(71), signer.publicKey]); // signed-looking: the output check comes first
        return t.toHex();
      };
      codes.push(await refusal(pair.payer.fundWithSigned(signedOther(lock.fundingScript, CAPACITY - 1n))));
      codes.push(await refusal(pair.payer.fundWithSigned(signedOther(signer.script, CAPACITY))));
      // A legacy-signed input could change the txid under the v1 refund: the protocol refuses it.
      const legacy = other(lock.fundingScript, CAPACITY);
      legacy.ins[0]!.script = Uint8Array.of(0x51);
      codes.push(await refusal(pair.payer.fundWithSigned(legacy.toHex())));
      expect(codes).toEqual<(PsbtFundingErrorCode | string)[]>(['PSBT_NOT_SIGNED', 'PSBT_NOT_SIGNED', 'PSBT_WRONG_AMOUNT', 'PSBT_WRONG_OUTPUT', 'FUNDING_NOT_SEGWIT']);
      expect(pair.payer.state).toBe(before);
      expect((await env.backend.getOutpointStatus({ txid: utxo.txid, vout: utxo.vout }, 0)).state).toBe('unspent');

      // The right one still goes through after the refusals.
      const opening = pair.payer.fundWithSigned(signer.fundAndSign(request.psbt, utxo, 1_000n).toHex());
      await Promise.race([pair.payer.waitFor((s) => s.type === 'AwaitingOpen'), opening]);
      await waitUntil(async () => (await env.backend.getTransaction(pair.payer.channel.funding.txid)) !== null, 'the funding in the mempool');
      await env.mine(1);
      await opening;
      expect(await pair.payer.pay(1_000n)).toBe(1_000n);
    } finally {
      pair.stop();
    }
  });
});

it('spilman-v2: a wallet that paid the BIP21 URI and broadcast at once hands over its transaction; the channel opens', async () => {
  const utxo = await fundExternalWallet(2_000_000n);
  const pair = await localPair({ secp: env.secp, backend: env.backend, payerWallet: env.wallet, feeRateSatPerVb: FEE_RATE });
  try {
    const request = await pair.payer.proposeForExternalFunding({ variant: 'spilman-v2', capacitySat: CAPACITY, expiryBlocks: 30 });
    expect(request.bip21).toMatch(/^bitcoin:bcrt1q[0-9a-z]+\?amount=0\.01&label=/);
    const tx = signer.fundAndSign(request.psbt, utxo, 1_000n).extractTransaction();
    await env.backend.broadcast(tx.toHex()); // the wallet broadcast it itself
    const opening = pair.payer.fundWithSigned(tx.toHex());
    await Promise.race([pair.payer.waitFor((s) => s.type === 'AwaitingOpen'), opening]);
    expect(pair.payer.channel.funding.txid).toBe(tx.getId());
    await env.mine(1);
    await opening;
    expect(await pair.payer.pay(2_000n)).toBe(2_000n);
  } finally {
    pair.stop();
  }
});

it('spilman-v1: a wallet that broadcast on signing (the risk docs/psbt.md names) can still finish within the proposal window', async () => {
  const utxo = await fundExternalWallet(2_000_000n);
  const pair = await localPair({ secp: env.secp, backend: env.backend, payerWallet: env.wallet, feeRateSatPerVb: FEE_RATE });
  try {
    const request = await pair.payer.proposeForExternalFunding({ variant: 'spilman-v1', capacitySat: CAPACITY, expiryBlocks: 30 });
    const tx = signer.fundAndSign(request.psbt, utxo, 1_000n).extractTransaction();
    await env.backend.broadcast(tx.toHex());
    const opening = pair.payer.fundWithSigned(tx.toHex());
    await Promise.race([pair.payer.waitFor((s) => s.type === 'AwaitingOpen'), opening]);
    const state = pair.payer.state;
    expect(state?.type === 'AwaitingOpen' && state.payeeRefundSignature !== null).toBe(true);
    await env.mine(1);
    await opening;
    expect(await pair.payer.pay(2_000n)).toBe(2_000n);
  } finally {
    pair.stop();
  }
});

it('spilman-v1, refund before signing: the payee signs the refund of the funded, unsigned PSBT; the wallet signs after; the channel opens', async () => {
  const utxo = await fundExternalWallet(2_000_000n);
  const pair = await localPair({ secp: env.secp, backend: env.backend, payerWallet: env.wallet, feeRateSatPerVb: FEE_RATE });
  try {
    const request = await pair.payer.proposeForExternalFunding({ variant: 'spilman-v1', capacitySat: CAPACITY, expiryBlocks: 30 });
    const funded = signer.fundAndSign(request.psbt, utxo, 1_000n, { sign: false });
    await pair.payer.refundBeforeSigning(funded.toBase64());
    const held = pair.payer.state;
    if (held?.type !== 'AwaitingFundingSignature') throw new Error(`state ${held?.type}`);
    expect(held.payeeRefundSignature.length).toBe(64);
    // The wallet has signed nothing yet, and nothing is on chain.
    expect((await env.backend.getOutpointStatus({ txid: utxo.txid, vout: utxo.vout }, 0)).state).toBe('unspent');

    // Signing another funding (another fee, so another txid) is refused: the refund is for this one.
    const other = signer.fundAndSign(request.psbt, utxo, 2_000n);
    expect(await refusal(pair.payer.fundWithSigned(other.toBase64()))).toBe('FUNDING_MISMATCH');
    expect(pair.payer.state).toBe(held);

    funded.signAllInputs(signer.signer);
    const opening = pair.payer.fundWithSigned(funded.toBase64()); // signed, not finalized: paychan finalizes
    await Promise.race([pair.payer.waitFor((s) => s.type === 'AwaitingOpen'), opening]);
    expect(pair.payer.channel.funding.txid).toBe(held.channel.funding.txid);
    await waitUntil(async () => (await env.backend.getTransaction(held.channel.funding.txid)) !== null, 'the funding in the mempool');
    await env.mine(1);
    await opening;
    expect(await pair.payer.pay(3_000n)).toBe(3_000n);
  } finally {
    pair.stop();
  }
});
