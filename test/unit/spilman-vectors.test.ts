/**
 * Frozen vectors for every spilman builder (test/fixtures/spilman.json), plus independent checks
 * of what the vectors claim: scripts equal bitcoinjs-lib's P2MS/P2WSH, every sighash equals
 * bitcoinjs-lib's hashForWitnessV0 on the transaction as finally built, and every signature
 * verifies. (That the node accepts these transactions is test/integration's job.)
 */
import { Transaction, payments } from 'bitcoinjs-lib';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../src/protocol/bytes.js';
import { signClose } from '../../src/protocol/close.js';
import { paymentDigest, paymentSighasher, signPayment } from '../../src/protocol/payment.js';
import { payeeRefundDigest, refundAuthorization, refundTemplateHex, signRefund } from '../../src/protocol/refund.js';
import type { Variant } from '../../src/protocol/scripts.js';
import { SIGHASH_ALL, SIGHASH_NONE_ACP, SIGHASH_SINGLE_ACP } from '../../src/protocol/sighash.js';
import vectors from '../fixtures/spilman.json' with { type: 'json' };
import { PAYEE_KEY, PAYEE_PUB, PAYEE_SCRIPT, PAYER_KEY, PAYER_PUB, channel, secp } from '../helpers/protocol.js';

describe.each(vectors.valid)('$variant vectors', (v) => {
  const variant = v.variant as Variant;
  const ch = channel(variant);
  const sighasher = paymentSighasher(ch);

  it('derives the funding outpoint, witness script and P2WSH output', () => {
    expect(ch.funding).toEqual({ txid: v.channel.fundingTxid, vout: v.channel.fundingVout });
    expect(toHex(ch.witnessScript)).toBe(v.witnessScript);
    expect(toHex(ch.fundingScript)).toBe(v.fundingScript);
    expect(toHex(payments.p2wsh({ redeem: { output: ch.witnessScript } }).output!)).toBe(v.fundingScript);
    if (variant === 'spilman-v1') {
      // OP_2 <K1> <K2> OP_2 OP_CHECKMULTISIG, keys in the seed's order (not sorted).
      expect(toHex(payments.p2ms({ m: 2, pubkeys: [PAYER_PUB, PAYEE_PUB] }).output!)).toBe(v.witnessScript);
    }
  });

  it('builds the refund template and the payee refund signature (v1)', () => {
    if (variant !== 'spilman-v1') return;
    expect(refundTemplateHex(ch)).toBe(v.refundTemplate);
    const digest = payeeRefundDigest(ch);
    expect(toHex(digest)).toBe(v.payeeRefundSighash);
    const template = Transaction.fromHex(v.refundTemplate!);
    expect(toHex(template.hashForWitnessV0(0, ch.witnessScript, ch.capacitySat, SIGHASH_NONE_ACP))).toBe(v.payeeRefundSighash);
    const sig = secp.ecdsaSign(digest, PAYEE_KEY);
    expect(toHex(sig)).toBe(v.payeeRefundSignature);
    expect(secp.ecdsaVerify(sig, digest, PAYEE_PUB)).toBe(true);
  });

  it.each(v.payments)('signs payment total $totalSat', (p) => {
    const total = BigInt(p.totalSat);
    expect(toHex(paymentDigest(ch, sighasher, total))).toBe(p.sighash);
    expect(toHex(signPayment(secp, ch, sighasher, PAYER_KEY, total))).toBe(p.signature);
  });

  it.each(v.closes)('closes at total $totalSat', (c) => {
    const total = BigInt(c.totalSat);
    const signature = signPayment(secp, ch, sighasher, PAYER_KEY, total);
    const close = signClose(secp, ch, { totalSat: total, signature }, PAYEE_KEY, PAYEE_SCRIPT, c.feeRateSatPerVb);
    expect(close.txHex).toBe(c.txHex);
    expect(close.txid).toBe(c.txid);
    expect(close.feeSat.toString()).toBe(c.feeSat);
    expect(close.vsize).toBe(c.vsize);
    // Independent: the payer's signature verifies against bitcoinjs-lib's sighash of the final tx.
    const tx = Transaction.fromHex(close.txHex);
    const hashType = total === ch.capacitySat ? SIGHASH_NONE_ACP : SIGHASH_SINGLE_ACP;
    expect(secp.ecdsaVerify(signature, tx.hashForWitnessV0(0, ch.witnessScript, ch.capacitySat, hashType), PAYER_PUB)).toBe(true);
    // outputs + fee = capacity, exactly.
    const outputs = tx.outs.reduce((sum, o) => sum + o.value, 0n);
    expect(outputs + close.feeSat).toBe(ch.capacitySat);
    expect(close.feeSat).toBeGreaterThanOrEqual(BigInt(Math.ceil(close.vsize * c.feeRateSatPerVb)));
  });

  it('signs the refund', () => {
    const auth = refundAuthorization(ch, variant === 'spilman-v1' ? fromHex(v.payeeRefundSignature!) : null);
    const refund = signRefund(secp, ch, auth, PAYER_KEY, ch.payerScript, v.refund.feeRateSatPerVb);
    expect(refund.txHex).toBe(v.refund.txHex);
    expect(refund.txid).toBe(v.refund.txid);
    expect(refund.feeSat.toString()).toBe(v.refund.feeSat);
    const tx = Transaction.fromHex(refund.txHex);
    expect(tx.locktime).toBe(ch.expiryHeight);
    expect(tx.outs[0]!.value + refund.feeSat).toBe(ch.capacitySat);
    const witness = tx.ins[0]!.witness;
    const payerSig = witness[variant === 'spilman-v1' ? 1 : 0]!;
    expect(payerSig[payerSig.length - 1]).toBe(SIGHASH_ALL);
  });
});
