/**
 * Payer and payee state machines wired in one process through the wire codec, with no chain:
 * the seed's steps 1–9 for both variants, then properties over random payment sequences.
 */
import fc from 'fast-check';
import { Transaction } from 'bitcoinjs-lib';
import { describe, expect, it } from 'vitest';
import { dustThresholdSat } from '../../src/protocol/dust.js';
import type { Effect } from '../../src/protocol/effects.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { decodeMessage, encodeMessage, msg, type Message } from '../../src/protocol/messages.js';
import { payeeAccept, payeeStep, type PayeeContext, type PayeeState } from '../../src/protocol/payee-machine.js';
import { checkPayments, payerPropose, payerStep, type PayerContext, type PayerState } from '../../src/protocol/payer-machine.js';
import { payeePolicy, payerPolicy } from '../../src/protocol/policy.js';
import type { Variant } from '../../src/protocol/scripts.js';
import { PAYEE_KEY, PAYEE_PUB, PAYER_KEY, PAYER_PUB, PAYER_SCRIPT, closeRecordFor, fundingTx, secp, terms } from '../helpers/protocol.js';

const payeeCtx: PayeeContext = { secp, policy: payeePolicy({ network: 'regtest' }), privateKey: () => PAYEE_KEY };
const payerCtx: PayerContext = { secp, policy: payerPolicy({ network: 'regtest' }), privateKey: () => PAYER_KEY };

const wire = (m: Message): Message => decodeMessage(encodeMessage(m));
const sent = (effects: readonly Effect[]): Message[] => effects.flatMap((e) => (e.type === 'send' ? [wire(e.message)] : []));

/** Runs the open handshake; returns both sides in state Open. */
function open(variant: Variant, capacitySat = 1_000_000n, maxTotalSat = capacitySat): { payer: PayerState; payee: PayeeState } {
  let p = payerPropose({
    tempId: 'ab'.repeat(16),
    network: 'regtest',
    variant,
    keyIndex: 0,
    payerPubkey: PAYER_PUB,
    capacitySat,
    expiryHeight: 150,
    payerScript: PAYER_SCRIPT,
    maxTotalSat,
  });
  const [hello] = sent(p.effects);
  if (hello?.type !== 'hello') throw new Error('no hello');
  let q = payeeAccept(payeeCtx, hello, 100, { index: 0, publicKey: PAYEE_PUB });
  p = payerStep(payerCtx, p.state, { type: 'message', message: sent(q.effects)[0]! });
  const create = p.effects.find((e) => e.type === 'create-funding');
  expect(create).toBeDefined();
  const tx = fundingTx(terms(variant, { capacitySat, expiryHeight: 150 }), { vout: 1 });
  p = payerStep(payerCtx, p.state, { type: 'funding-created', txHex: tx.toHex() });
  if (variant === 'spilman-v1') {
    const [refundRequest] = sent(p.effects);
    expect(refundRequest?.type).toBe('refund-request');
    q = payeeStep(payeeCtx, q.state, { type: 'message', message: refundRequest! });
    // The funding is shown only after the refund signature is persisted.
    p = payerStep(payerCtx, p.state, { type: 'message', message: sent(q.effects)[0]! });
    expect(p.effects.map((e) => e.type)).toEqual(['persist', 'send']);
  }
  const [funding] = sent(p.effects);
  expect(funding?.type).toBe('funding');
  q = payeeStep(payeeCtx, q.state, { type: 'message', message: funding! });
  expect(q.effects.map((e) => e.type)).toEqual(['persist', 'broadcast', 'watch-confirmations']);
  q = payeeStep(payeeCtx, q.state, { type: 'confirmed', txid: tx.getId() });
  p = payerStep(payerCtx, p.state, { type: 'message', message: sent(q.effects)[0]! });
  expect(p.state.type).toBe('Open');
  expect(q.state.type).toBe('Open');
  return { payer: p.state, payee: q.state };
}

describe.each(['spilman-v1', 'spilman-v2'] as const)('%s in memory', (variant) => {
  it('opens, pays 1,000 times, and closes with outputs + fee = capacity', () => {
    let { payer, payee } = open(variant);
    for (let i = 1; i <= 1000; i++) {
      const p = payerStep(payerCtx, payer, { type: 'pay', amountSat: 7n });
      expect(p.effects[0]?.type).toBe('persist'); // stored before it is sent
      const q = payeeStep(payeeCtx, payee, { type: 'message', message: sent(p.effects)[0]! });
      expect(q.effects.map((e) => e.type)).toEqual(['persist', 'send']); // stored before it is acked
      payer = payerStep(payerCtx, p.state, { type: 'message', message: sent(q.effects)[0]! }).state;
      payee = q.state;
    }
    expect(payer.type === 'Open' && payer.ackedTotalSat).toBe(7000n);
    const c = payeeStep(payeeCtx, payee, { type: 'close', close: closeRecordFor(payee, 1.5) });
    expect(c.effects.map((e) => e.type)).toEqual(['persist']); // stored; the payer hears of it once the node took it
    if (c.state.type !== 'Closing') throw new Error('not closing');
    const tx = Transaction.fromHex(c.state.close.txHex);
    expect(tx.outs.map((o) => o.value)).toEqual([1_000_000n - 7000n, 7000n - c.state.close.feeSat]);
  });

  it('refuses a bad payment without changing state', () => {
    const { payee } = open(variant);
    const bad = msg('payment', { channelId: payee.type === 'Open' ? payee.channel.id : '', totalSat: 10n, signature: new Uint8Array(64).fill(3) });
    let code = '';
    try {
      payeeStep(payeeCtx, payee, { type: 'message', message: bad });
    } catch (err) {
      code = (err as ProtocolError).code;
    }
    expect(code).toBe('INVALID_SIGNATURE');
    expect(payee.type === 'Open' && payee.paidSat).toBe(0n);
  });
});

describe('properties', () => {
  const amounts = fc.array(fc.bigInt({ min: -5n, max: 400_000n }), { minLength: 1, maxLength: 40 });

  it('the paid total only grows, never passes the agreed maximum, and leaves no dust', () => {
    fc.assert(
      fc.property(fc.constantFrom<Variant>('spilman-v1', 'spilman-v2'), amounts, fc.bigInt({ min: 1n, max: 1_000_000n }), (variant, pays, maxTotalSat) => {
        let { payer, payee } = open(variant, 1_000_000n, maxTotalSat);
        let last = 0n;
        for (const amountSat of pays) {
          let p;
          try {
            p = payerStep(payerCtx, payer, { type: 'pay', amountSat });
          } catch (err) {
            expect(err).toBeInstanceOf(RangeError); // our caller's mistake, refused before signing
            continue;
          }
          const q = payeeStep(payeeCtx, payee, { type: 'message', message: sent(p.effects)[0]! });
          payer = p.state;
          payee = q.state;
          if (payee.type !== 'Open' || payer.type !== 'Open') throw new Error('left Open');
          expect(payee.paidSat).toBeGreaterThan(last);
          expect(payee.paidSat).toBeLessThanOrEqual(maxTotalSat);
          const change = 1_000_000n - payee.paidSat;
          expect(change === 0n || change >= dustThresholdSat(PAYER_SCRIPT)).toBe(true);
          last = payee.paidSat;
          // The same payment again (a resend after a reconnect) is acknowledged again and changes nothing.
          const again = payeeStep(payeeCtx, payee, { type: 'message', message: sent(p.effects)[0]! });
          expect(again.state).toBe(payee);
          expect(again.effects.map((e) => e.type)).toEqual(['send']);
        }
        if (payee.type === 'Open' && payee.paidSat >= 1000n) {
          const c = payeeStep(payeeCtx, payee, { type: 'close', close: closeRecordFor(payee, 2) });
          if (c.state.type !== 'Closing') throw new Error('not closing');
          const tx = Transaction.fromHex(c.state.close.txHex);
          expect(tx.outs.reduce((s, o) => s + o.value, 0n) + c.state.close.feeSat).toBe(1_000_000n);
          for (const o of tx.outs) expect(o.value).toBeGreaterThanOrEqual(dustThresholdSat(o.script));
          expect(tx.outs[0]!.value).toBeGreaterThanOrEqual(1_000_000n - maxTotalSat);
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('checkPayments (a run of equal payments, checked before any is signed)', () => {
  it('accepts a run exactly when paying it one payment at a time would succeed', () => {
    const base = open('spilman-v2', 10_000n).payer;
    if (base.type !== 'Open') throw new Error('not open');
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 9_900n }), fc.bigInt({ min: 1n, max: 800n }), fc.integer({ min: 1, max: 40 }), fc.bigInt({ min: 9_000n, max: 10_000n }), (paid, amountSat, count, maxTotalSat) => {
        const start: PayerState = { ...base, signedTotalSat: paid, ackedTotalSat: paid, proposal: { ...base.proposal, maxTotalSat } };
        let stepped = true;
        let s: PayerState = start;
        for (let i = 0; i < count && stepped; i++) {
          try {
            s = payerStep(payerCtx, s, { type: 'pay', amountSat }).state;
          } catch {
            stepped = false;
          }
        }
        let checked = true;
        try {
          checkPayments(start, amountSat, count);
        } catch (err) {
          expect(err).toMatchObject({ code: expect.stringMatching(/^(AMOUNT_EXCEEDS_CAPACITY|CHANGE_BELOW_DUST)$/) });
          checked = false;
        }
        expect(checked).toBe(stepped);
      }),
      { numRuns: 300 },
    );
    // Whole capacity on the last payment is allowed, but the one before it would leave dust.
    expect(() => checkPayments(base, 200n, 50)).toThrow(/payment 49: paying 200 would leave 200 sat change, below dust/);
    expect(() => checkPayments(base, 400n, 25)).not.toThrow();
  });
});
