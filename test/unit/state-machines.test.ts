/**
 * Payer and payee state machines wired in one process through the wire codec, with no chain:
 * the seed's steps 1–9 for both variants, then properties over random payment sequences.
 */
import fc from 'fast-check';
import { Transaction } from 'bitcoinjs-lib';
import { describe, expect, it } from 'vitest';
import { dustThresholdSat } from '../../src/protocol/dust.js';
import type { PayeeEffect, PayerEffect } from '../../src/protocol/effects.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { decodeMessage, encodeMessage, msg, type Message } from '../../src/protocol/messages.js';
import { payeeAccept, payeeOpen, payeeSignRefund, payeeStep, payeeVouched, type PayeeContext, type PayeeState } from '../../src/protocol/payee-machine.js';
import { checkPayments, payerPropose, payerStep, type PayerContext, type PayerState } from '../../src/protocol/payer-machine.js';
import { payeePolicy, payerPolicy } from '../../src/protocol/policy.js';
import type { Variant } from '../../src/protocol/scripts.js';
import { PAYEE_KEY, PAYER_KEY, PAYER_PUB, PAYER_SCRIPT, closeRecordFor, codeOf, fundingTx, secp, terms } from '../helpers/protocol.js';

const payeeCtx: PayeeContext = { secp, policy: payeePolicy({ network: 'regtest' }), privateKey: () => PAYEE_KEY, openingSecret: new Uint8Array(32).fill(7) };
const payerCtx: PayerContext = { secp, policy: payerPolicy({ network: 'regtest' }), privateKey: () => PAYER_KEY };

/** The tip the payee knows in these tests: the channels expire at 150, their deadline is 147. */
const TIP = 100;
const wire = (m: Message): Message => decodeMessage(encodeMessage(m));
const sent = (effects: readonly (PayeeEffect | PayerEffect)[]): Message[] => effects.flatMap((e) => (e.type === 'send' ? [wire(e.message)] : []));

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
  // The payee keeps nothing until the funding: its answers are plain messages.
  p = payerStep(payerCtx, p.state, { type: 'message', message: wire(payeeAccept(payeeCtx, hello, 100)) });
  const create = p.effects.find((e) => e.type === 'create-funding');
  expect(create).toBeDefined();
  const tx = fundingTx(terms(variant, { capacitySat, expiryHeight: 150 }), { vout: 1 });
  p = payerStep(payerCtx, p.state, { type: 'funding-created', txHex: tx.toHex() });
  if (variant === 'spilman-v1') {
    const [refundRequest] = sent(p.effects);
    expect(refundRequest?.type).toBe('refund-request');
    if (refundRequest?.type !== 'refund-request') throw new Error('no refund request');
    // The funding is shown only after the refund signature is persisted.
    p = payerStep(payerCtx, p.state, { type: 'message', message: wire(payeeSignRefund(payeeCtx, refundRequest, payeeVouched(payeeCtx, refundRequest, 101))) });
    expect(p.effects.map((e) => e.type)).toEqual(['persist', 'send']);
  }
  const [funding] = sent(p.effects);
  if (funding?.type !== 'funding') throw new Error('no funding');
  let q = payeeOpen(payeeCtx, funding, payeeVouched(payeeCtx, funding, null), 102);
  // Stored only once the node took the funding: a refused one leaves nothing behind.
  expect(q.effects.map((e) => e.type)).toEqual(['broadcast', 'persist', 'watch-confirmations']);
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
      const q = payeeStep(payeeCtx, payee, { type: 'message', message: sent(p.effects)[0]!, tipHeight: TIP });
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
      payeeStep(payeeCtx, payee, { type: 'message', message: bad, tipHeight: TIP });
    } catch (err) {
      code = (err as ProtocolError).code;
    }
    expect(code).toBe('INVALID_SIGNATURE');
    expect(payee.type === 'Open' && payee.paidSat).toBe(0n);
  });
});

describe('the close deadline (expiry − closeMarginBlocks)', () => {
  const margin = payeeCtx.policy.closeMarginBlocks;
  const deadline = 150 - margin;
  const payment = (payer: PayerState) => sent(payerStep(payerCtx, payer, { type: 'pay', amountSat: 5_000n }).effects)[0]!;

  it('refuses every payment at the deadline with CHANNEL_EXPIRING, changing nothing, even on an Open channel', () => {
    const { payer, payee } = open('spilman-v2');
    const ok = payeeStep(payeeCtx, payee, { type: 'message', message: payment(payer), tipHeight: deadline - 1 });
    expect(ok.state).toMatchObject({ type: 'Open', paidSat: 5_000n });
    for (const tipHeight of [deadline, 150, 151]) {
      expect(codeOf(() => payeeStep(payeeCtx, payee, { type: 'message', message: payment(payer), tipHeight }))).toBe('CHANNEL_EXPIRING');
    }
    // The newest payment repeated is not acknowledged again past the deadline either.
    expect(codeOf(() => payeeStep(payeeCtx, ok.state, { type: 'message', message: payment(payer), tipHeight: deadline }))).toBe('CHANNEL_EXPIRING');
    expect(payee).toMatchObject({ type: 'Open', paidSat: 0n });
  });

  it('leaves Open at the deadline on the tip input, keeps what was paid, and can still be closed', () => {
    const { payer, payee } = open('spilman-v1');
    const paid = payeeStep(payeeCtx, payee, { type: 'message', message: payment(payer), tipHeight: TIP }).state;
    expect(payeeStep(payeeCtx, paid, { type: 'tip', height: deadline - 1 }).state).toBe(paid);
    const expiring = payeeStep(payeeCtx, paid, { type: 'tip', height: deadline });
    expect(expiring.effects.map((e) => e.type)).toEqual(['persist']);
    expect(expiring.state).toMatchObject({ type: 'Expiring', paidSat: 5_000n });
    // A tip lowered by a reorg does not reopen it: the payer's refund may still be mined.
    expect(payeeStep(payeeCtx, expiring.state, { type: 'tip', height: deadline - 1 }).state).toBe(expiring.state);
    expect(codeOf(() => payeeStep(payeeCtx, expiring.state, { type: 'message', message: payment(payer), tipHeight: TIP }))).toBe('CHANNEL_EXPIRING');
    const closing = payeeStep(payeeCtx, expiring.state, { type: 'close', close: closeRecordFor(expiring.state, 2) });
    expect(closing.state.type).toBe('Closing');
  });
});

describe('a resent hello', () => {
  it('gets a second accept (maybe another cookie and key) that the payer ignores: the first stands', () => {
    const p = payerPropose({ tempId: 'cd'.repeat(16), network: 'regtest', variant: 'spilman-v2', keyIndex: 0, payerPubkey: PAYER_PUB, capacitySat: 100_000n, expiryHeight: 150, payerScript: PAYER_SCRIPT, maxTotalSat: 100_000n });
    const [hello] = sent(p.effects);
    if (hello?.type !== 'hello') throw new Error('no hello');
    const first = payerStep(payerCtx, p.state, { type: 'message', message: wire(payeeAccept(payeeCtx, hello, 100)) });
    const again = payerStep(payerCtx, first.state, { type: 'message', message: wire(payeeAccept(payeeCtx, hello, 101)) });
    expect(again.state).toBe(first.state);
    expect(again.effects).toEqual([]);
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
          const q = payeeStep(payeeCtx, payee, { type: 'message', message: sent(p.effects)[0]!, tipHeight: TIP });
          payer = p.state;
          payee = q.state;
          if (payee.type !== 'Open' || payer.type !== 'Open') throw new Error('left Open');
          expect(payee.paidSat).toBeGreaterThan(last);
          expect(payee.paidSat).toBeLessThanOrEqual(maxTotalSat);
          const change = 1_000_000n - payee.paidSat;
          expect(change === 0n || change >= dustThresholdSat(PAYER_SCRIPT)).toBe(true);
          last = payee.paidSat;
          // The same payment again (a resend after a reconnect) is acknowledged again and changes nothing.
          const again = payeeStep(payeeCtx, payee, { type: 'message', message: sent(p.effects)[0]!, tipHeight: TIP });
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

describe('a payer waiting for its channel to open', () => {
  function awaitingOpen(): PayerState {
    const p = payerPropose({ tempId: 'ef'.repeat(16), network: 'regtest', variant: 'spilman-v2', keyIndex: 0, payerPubkey: PAYER_PUB, capacitySat: 100_000n, expiryHeight: 150, payerScript: PAYER_SCRIPT, maxTotalSat: 100_000n });
    const [hello] = sent(p.effects);
    if (hello?.type !== 'hello') throw new Error('no hello');
    const accepted = payerStep(payerCtx, p.state, { type: 'message', message: wire(payeeAccept(payeeCtx, hello, 100)) });
    const tx = fundingTx(terms('spilman-v2', { capacitySat: 100_000n, expiryHeight: 150 }), { vout: 1 });
    const funded = payerStep(payerCtx, accepted.state, { type: 'funding-created', txHex: tx.toHex() });
    expect(funded.state.type).toBe('AwaitingOpen');
    return funded.state;
  }
  const error = (code: 'UNKNOWN_CHANNEL' | 'INVALID_SIGNATURE' | 'CHANNEL_MOVED') => msg('error', { code, message: code, action: 'reject', ref: 'ef'.repeat(16) });

  it('takes UNKNOWN_CHANNEL (its auth reached a restarted payee before its resent funding) as no failure', () => {
    const state = awaitingOpen();
    const step = payerStep(payerCtx, state, { type: 'message', message: error('UNKNOWN_CHANNEL') });
    expect(step.state).toBe(state);
    expect(step.effects).toEqual([]);
  });

  it('takes CHANNEL_MOVED (another payee instance serves the channel now) as no failure: its payments wait for the resume', () => {
    const state = awaitingOpen();
    const step = payerStep(payerCtx, state, { type: 'message', message: error('CHANNEL_MOVED') });
    expect(step.state).toBe(state);
    expect(step.effects).toEqual([]);
  });

  it('still reports any other refusal of its opening', () => {
    const step = payerStep(payerCtx, awaitingOpen(), { type: 'message', message: error('INVALID_SIGNATURE') });
    expect(step.effects.map((e) => e.type)).toEqual(['peer-error']);
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
