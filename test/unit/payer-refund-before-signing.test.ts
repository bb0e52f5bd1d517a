/**
 * v1 funded by an external wallet, the safest way: the payer asks the refund for the funding the
 * wallet chose (inputs and change, unsigned), and the wallet signs only once the payer holds the
 * verified refund; the signed funding must then be that very transaction (same txid).
 */
import { describe, expect, it } from 'vitest';
import { fromHex } from '../../src/protocol/bytes.js';
import type { PayerEffect } from '../../src/protocol/effects.js';
import { decodeMessage, encodeMessage, msg, type Message } from '../../src/protocol/messages.js';
import { payeeAccept, payeeSignRefund, payeeVouched, type PayeeContext } from '../../src/protocol/payee-machine.js';
import { payerPropose, payerStep, resumeMessage, type PayerContext, type PayerState } from '../../src/protocol/payer-machine.js';
import { payeePolicy, payerPolicy } from '../../src/protocol/policy.js';
import type { Variant } from '../../src/protocol/scripts.js';
import { PAYEE_KEY, PAYER_KEY, PAYER_PUB, PAYER_SCRIPT, codeOf, fundingTx, secp, terms } from '../helpers/protocol.js';

const payeeCtx: PayeeContext = { secp, policy: payeePolicy({ network: 'regtest' }), privateKey: () => PAYEE_KEY, openingSecret: new Uint8Array(32).fill(7) };
const payerCtx: PayerContext = { secp, policy: payerPolicy({ network: 'regtest' }), privateKey: () => PAYER_KEY };
const wire = (m: Message): Message => decodeMessage(encodeMessage(m));
const sent = (effects: readonly PayerEffect[]): Message[] => effects.flatMap((e) => (e.type === 'send' ? [wire(e.message)] : []));

/** A payer in state Funding (the payee accepted), and the channel's terms. */
function funding(variant: Variant): PayerState {
  const p = payerPropose({ tempId: 'ab'.repeat(16), network: 'regtest', variant, keyIndex: 0, payerPubkey: PAYER_PUB, capacitySat: 1_000_000n, expiryHeight: 150, payerScript: PAYER_SCRIPT, maxTotalSat: 1_000_000n });
  const [hello] = sent(p.effects);
  if (hello?.type !== 'hello') throw new Error('no hello');
  const s = payerStep(payerCtx, p.state, { type: 'message', message: wire(payeeAccept(payeeCtx, hello, 100)) }).state;
  expect(s.type).toBe('Funding');
  return s;
}

/** The wallet's funding for the channel, unsigned (no witness) and signed. */
function walletFunding() {
  const signed = fundingTx(terms('spilman-v1', { expiryHeight: 150 }), { vout: 1 });
  const unsigned = signed.clone();
  unsigned.setWitness(0, []);
  return { signed, unsigned };
}

function refundSignature(request: Message): Message {
  if (request.type !== 'refund-request') throw new Error(`not a refund request: ${request.type}`);
  return wire(payeeSignRefund(payeeCtx, request, payeeVouched(payeeCtx, request, 101)));
}

describe('spilman-v1: the refund before the external wallet signs', () => {
  it('asks the refund for the unsigned funding, holds it, then takes the signed funding of the same txid and shows it', () => {
    const { signed, unsigned } = walletFunding();
    let p = payerStep(payerCtx, funding('spilman-v1'), { type: 'funding-unsigned', txHex: unsigned.toHex() });
    expect(p.state.type).toBe('RefundBeforeSigning');
    expect(p.effects.map((e) => e.type)).toEqual(['persist', 'send']);
    const [request] = sent(p.effects);
    expect(request?.type).toBe('refund-request');
    expect(resumeMessage(p.state)?.type).toBe('refund-request'); // a reconnect asks again
    if (request?.type !== 'refund-request') throw new Error('unreachable');
    expect(request.fundingTxid).toBe(signed.getId()); // witnesses do not change the txid

    p = payerStep(payerCtx, p.state, { type: 'message', message: refundSignature(request) });
    expect(p.state.type).toBe('AwaitingFundingSignature');
    expect(p.effects.map((e) => e.type)).toEqual(['persist']); // nothing shown: the funding is not even signed
    expect(resumeMessage(p.state)).toBeNull();

    p = payerStep(payerCtx, p.state, { type: 'funding-created', txHex: signed.toHex() });
    expect(p.state.type).toBe('AwaitingOpen');
    if (p.state.type !== 'AwaitingOpen') throw new Error('unreachable');
    expect(p.state.payeeRefundSignature).not.toBeNull();
    expect(p.effects.map((e) => e.type)).toEqual(['persist', 'send']);
    expect(sent(p.effects)[0]?.type).toBe('funding');
  });

  it('refuses a signed funding with another txid, a signed one as unsigned, a bad refund signature, and v2', () => {
    const { signed, unsigned } = walletFunding();
    const asked = payerStep(payerCtx, funding('spilman-v1'), { type: 'funding-unsigned', txHex: unsigned.toHex() });
    const held = payerStep(payerCtx, asked.state, { type: 'message', message: refundSignature(sent(asked.effects)[0]!) }).state;
    const other = signed.clone();
    other.ins[0]!.index = 2; // another coin: another txid
    expect(codeOf(() => payerStep(payerCtx, held, { type: 'funding-created', txHex: other.toHex() }))).toBe('FUNDING_MISMATCH');
    expect(codeOf(() => payerStep(payerCtx, funding('spilman-v1'), { type: 'funding-unsigned', txHex: signed.toHex() }))).toBe('FUNDING_NOT_SEGWIT');
    expect(() => payerStep(payerCtx, funding('spilman-v2'), { type: 'funding-unsigned', txHex: unsigned.toHex() })).toThrow(RangeError);

    const forged = msg('refund-signature', { tempId: 'ab'.repeat(16), signature: fromHex('01'.repeat(64)) });
    const aborted = payerStep(payerCtx, asked.state, { type: 'message', message: forged });
    expect(aborted.state.type).toBe('Aborted');
    expect(sent(aborted.effects)[0]?.type).toBe('error');
  });
});
