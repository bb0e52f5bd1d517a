/**
 * Adding a variant is its module plus one table line: a test-only third variant
 * (test/helpers/fake-variant.ts) is added to the table the way src/protocol/variants/index.ts
 * builds it, and the real callers — the wire codec, the payee's policy, both machines, the
 * close and refund builders, the payee's packed states — run a whole channel of it with no
 * other change. (Types: `VariantName` is the table's keys, so the new line widens it too; the
 * test casts its name because the compiler sees the real table.)
 */
import { Transaction } from 'bitcoinjs-lib';
import { describe, expect, it, vi } from 'vitest';
import { equalBytes } from '../../src/protocol/bytes.js';
import type { PayeeEffect, PayerEffect } from '../../src/protocol/effects.js';
import { decodeMessage, encodeMessage, type Message } from '../../src/protocol/messages.js';
import { payeeAccept, payeeOpen, payeeStep, payeeVouched, type PayeeContext, type PayeeState } from '../../src/protocol/payee-machine.js';
import { payerPropose, payerStep, type PayerContext, type PayerState } from '../../src/protocol/payer-machine.js';
import { payeePolicy, payerPolicy } from '../../src/protocol/policy.js';
import { refundAuthorization, signRefund } from '../../src/protocol/refund.js';
import { p2wshOutputScript } from '../../src/protocol/scripts.js';
import { SIGHASH_ALL, SIGHASH_SINGLE_ACP } from '../../src/protocol/sighash.js';
import { VARIANT_NAMES, type VariantName } from '../../src/protocol/variants/index.js';
import { packState, unpackState } from '../../src/payee/compact-state.js';
import { schemeUses, testV3Script } from '../helpers/fake-variant.js';
import { PAYEE_KEY, PAYEE_PUB, PAYER_KEY, PAYER_PUB, PAYER_SCRIPT, closeRecordFor, fundingTx, secp, terms } from '../helpers/protocol.js';

vi.mock('../../src/protocol/variants/index.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/protocol/variants/index.js')>();
  const { testV3 } = await import('../helpers/fake-variant.js');
  const { variantLookup } = await import('../../src/protocol/variants/table.js');
  // The one new table line, and the look-ups index.ts derives from the table, as it does.
  const VARIANTS = { ...real.VARIANTS, 'test-v3': testV3 };
  const lookup = variantLookup(VARIANTS);
  return { ...real, VARIANTS, VARIANT_NAMES: lookup.names, isVariantName: lookup.has, variantOf: lookup.get };
});

const V3 = 'test-v3' as VariantName;
const payeeCtx: PayeeContext = { secp, policy: payeePolicy({ network: 'regtest' }), privateKey: () => PAYEE_KEY, openingSecret: new Uint8Array(32).fill(7) };
const payerCtx: PayerContext = { secp, policy: payerPolicy({ network: 'regtest' }), privateKey: () => PAYER_KEY };
const wire = (m: Message): Message => decodeMessage(encodeMessage(m));
const sent = (effects: readonly (PayeeEffect | PayerEffect)[]): Message[] => effects.flatMap((e) => (e.type === 'send' ? [wire(e.message)] : []));

describe('a third variant, registered by one table line', () => {
  it('is in the table the callers see', () => {
    expect(VARIANT_NAMES).toEqual(['spilman-v1', 'spilman-v2', 'test-v3']);
  });

  it('opens through the codec, pays, closes and refunds with its own script, witnesses and signature scheme', () => {
    // Open: hello and accept through the wire codec; no refund round trip (its opening flow says so).
    let p = payerPropose({ tempId: 'ab'.repeat(16), network: 'regtest', variant: V3, keyIndex: 0, payerPubkey: PAYER_PUB, capacitySat: 1_000_000n, expiryHeight: 150, payerScript: PAYER_SCRIPT, maxTotalSat: 1_000_000n });
    const [hello] = sent(p.effects);
    if (hello?.type !== 'hello') throw new Error('no hello');
    expect(hello.variant).toBe('test-v3');
    p = payerStep(payerCtx, p.state, { type: 'message', message: wire(payeeAccept(payeeCtx, hello, 100)) });
    const create = p.effects.find((e) => e.type === 'create-funding');
    const witnessScript = testV3Script(PAYER_PUB, PAYEE_PUB, 150);
    if (create?.type !== 'create-funding') throw new Error('no create-funding');
    // The funding output is the new variant's lock.
    expect(equalBytes(create.script, p2wshOutputScript(witnessScript))).toBe(true);
    const tx = fundingTx(terms(V3, { expiryHeight: 150 }), { vout: 1 });
    p = payerStep(payerCtx, p.state, { type: 'funding-created', txHex: tx.toHex() });
    const [funding] = sent(p.effects);
    expect(p.state.type).toBe('AwaitingOpen');
    if (funding?.type !== 'funding') throw new Error('no funding');
    let q = payeeOpen(payeeCtx, funding, payeeVouched(payeeCtx, funding, null), 102);
    q = payeeStep(payeeCtx, q.state, { type: 'confirmed', txid: tx.getId() });
    p = payerStep(payerCtx, p.state, { type: 'message', message: sent(q.effects)[0]! });
    expect([p.state.type, q.state.type]).toEqual(['Open', 'Open']);
    if (q.state.type !== 'Open') throw new Error('payee not open');
    expect(equalBytes(q.state.channel.witnessScript, witnessScript)).toBe(true);

    // Pay three times: signed and verified through the variant's scheme.
    const before = { ...schemeUses };
    let payer: PayerState = p.state;
    let payee: PayeeState = q.state;
    for (const amountSat of [1_000n, 2_000n, 3_000n]) {
      const paid = payerStep(payerCtx, payer, { type: 'pay', amountSat });
      payer = paid.state;
      const [payment] = sent(paid.effects);
      if (payment?.type !== 'payment') throw new Error('no payment');
      const taken = payeeStep(payeeCtx, payee, { type: 'message', message: payment, tipHeight: 103 });
      payee = taken.state;
      expect(sent(taken.effects)[0]?.type).toBe('payment-ack');
    }
    expect(schemeUses.sign - before.sign).toBe(3);
    expect(schemeUses.verify - before.verify).toBe(3);
    if (payee.type !== 'Open' || payee.signature === null) throw new Error('nothing paid');

    // The payee's packed state keeps the variant (its number is its place in the table).
    expect(unpackState(packState(payee)!)).toEqual(payee);

    // Close: the variant's witness (payer's signature on top, then the branch selector).
    const close = Transaction.fromHex(closeRecordFor(payee, 2).txHex);
    const witness = close.ins[0]!.witness;
    expect(witness).toHaveLength(4);
    expect(equalBytes(witness[2]!, Uint8Array.of(1))).toBe(true);
    expect(equalBytes(witness[3]!, witnessScript)).toBe(true);
    const payerSig = witness[1]!;
    expect(payerSig[payerSig.length - 1]).toBe(SIGHASH_SINGLE_ACP);
    const digest = close.hashForWitnessV0(0, witnessScript, 1_000_000n, SIGHASH_SINGLE_ACP);
    expect(secp.ecdsaVerify(payee.signature, digest, PAYER_PUB)).toBe(true);
    expect(witness[0]![witness[0]!.length - 1]).toBe(SIGHASH_ALL);

    // Refund: the payer alone, on the variant's CLTV branch.
    const refund = signRefund(secp, payee.channel, refundAuthorization(payee.channel, null), PAYER_KEY, PAYER_SCRIPT, 2);
    const refundWitness = Transaction.fromHex(refund.txHex).ins[0]!.witness;
    expect(refundWitness).toHaveLength(3);
    expect(refundWitness[1]).toHaveLength(0);
    expect(equalBytes(refundWitness[2]!, witnessScript)).toBe(true);
  });
});
