/**
 * Two duplex machines (A and B) wired in one process through the wire codec, with no chain and
 * no I/O: the test answers the machines' requests (coins, keys, node lookups, input signatures)
 * as a driver would, from a fake chain of made-up segwit coins. Refused inputs must change no
 * state; every persist must come before the signature that depends on it leaves.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import fs from 'node:fs';
import { Transaction } from 'bitcoinjs-lib';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../src/protocol/bytes.js';
import {
  answerMempoolSpend,
  duplexOpen,
  duplexReceiveOpen,
  duplexStep,
  liveChannel,
  NEEDS_CLOSE_FLOOR,
  resumeDigest,
  type DuplexChannelState,
  type DuplexContext,
  type DuplexEffect,
  type DuplexInput,
  type DuplexStep,
  type InputFact,
  type LiveState,
  type StateOf,
} from '../../src/protocol/duplex-machine.js';
import { decodeDuplexState, type LegacyDuplexRecord } from '../../src/protocol/duplex-state-legacy.js';
import { signedCloseTx, stateLocktime, stateSighash, buildRolloverTx } from '../../src/protocol/duplex-tx.js';
import { duplexPolicy } from '../../src/protocol/duplex-update.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { decodeMessage, encodeMessage, errorMessage, type Message } from '../../src/protocol/messages.js';
import { decodeState, encodeState } from '../../src/store/codec.js';
import { secp } from '../helpers/protocol.js';

const policy = duplexPolicy({ network: 'regtest' });
const TIP = 200;
/** The challenge B's transport sent first on the connection (src/protocol/auth.ts). */
const CHALLENGE = new Uint8Array(32).fill(7);
const wire = (m: Message): Message => decodeMessage(encodeMessage(m));
const keyOf = (side: 'A' | 'B', index: number) => sha256(new TextEncoder().encode(`duplex test key ${side} ${index}`));
const pubOf = (side: 'A' | 'B', index: number) => secp.publicKeyCreate(keyOf(side, index));
const scriptOf = (side: 'A' | 'B') => fromHex('0014' + (side === 'A' ? '11' : '22').repeat(20));

/** The fake chain: coins by `txid:vout`, with their owner. */
const coins = new Map<string, { valueSat: bigint; owner: 'A' | 'B' }>();
let coinCounter = 0;

interface Side {
  readonly name: 'A' | 'B';
  readonly ctx: DuplexContext;
  state: DuplexChannelState | null;
  /** States persisted, in order (a `create` joins the next persist). */
  persisted: DuplexChannelState[];
  created: DuplexChannelState[];
  outbox: Message[];
  /** Every effect carried out, in order (requests answered in place). */
  trace: DuplexEffect[];
  /** Answers the driver would hand its callers. */
  resolved: Map<string, unknown>;
  rejected: Map<string, ProtocolError>;
  connected: boolean;
  proposals: Extract<DuplexEffect, { type: 'propose-request' }>[];
}

/** Proposes B's requests A was asked for, one at a time, as the driver's proposal queue does. */
function drainProposals(s: Side): void {
  const st = s.state;
  if (!st || st.type !== 'Open' || st.pending) return;
  const next = s.proposals.shift();
  if (next) input(s, { type: 'pay', payer: 'B', amountSat: next.amountSat, requestId: next.requestId, tipHeight: TIP });
}

function side(name: 'A' | 'B'): Side {
  return {
    name,
    ctx: { role: name, network: 'regtest', secp, policy, sign: (index, digest) => secp.ecdsaSign(digest, keyOf(name, index)) },
    state: null,
    persisted: [],
    created: [],
    outbox: [],
    trace: [],
    resolved: new Map(),
    rejected: new Map(),
    connected: true,
    proposals: [],
  };
}

/** Carries out a step's effects as a driver would, answering requests with the next input at once. */
function apply(s: Side, step: DuplexStep): void {
  s.state = step.state;
  for (const e of step.effects) {
    s.trace.push(e);
    switch (e.type) {
      case 'persist':
        s.persisted.push(s.state);
        break;
      case 'create':
        s.created.push(e.state);
        break;
      case 'send':
        s.outbox.push(wire(e.message));
        break;
      case 'send-if-connected':
        if (s.connected) s.outbox.push(wire(e.message));
        break;
      case 'resolve':
        s.resolved.set(e.key, e.value);
        break;
      case 'reject':
        s.rejected.set(e.key, e.error);
        break;
      case 'contribute': {
        const total = e.outputs.reduce((sum, o) => sum + o.valueSat, 0n);
        const txid = toHex(sha256(new TextEncoder().encode(`coin ${coinCounter++}`)));
        coins.set(`${txid}:0`, { valueSat: total + 50_000n, owner: s.name });
        input(s, { type: 'contributed', inputs: [{ txid, vout: 0, valueSat: total + 50_000n }], outputs: [...e.outputs.slice(1), { script: scriptOf(s.name), valueSat: 49_000n }] });
        break;
      }
      case 'check-inputs':
        input(s, {
          type: 'inputs-checked',
          inputs: e.inputs.map((i): InputFact => {
            const coin = coins.get(`${i.txid}:${i.vout}`);
            return { ...i, state: coin ? 'unspent' : 'unknown', scriptHex: '0014' + '33'.repeat(20), valueSat: coin?.valueSat ?? 0n, ownCoin: coin?.owner === s.name };
          }),
        });
        break;
      case 'allocate-key':
        input(s, { type: 'key-allocated', keyIndex: 0, publicKey: pubOf(s.name, 0), payoutScript: scriptOf(s.name) });
        break;
      case 'sign-funding-inputs':
        input(s, { type: 'funding-inputs-signed', txHex: e.txHex, witnesses: e.inputIndexes.map((index) => ({ index, stack: [new Uint8Array(71).fill(7), pubOf(s.name, 0)] })) });
        break;
      case 'publish-funding':
        input(s, { type: 'funding-published' });
        break;
      case 'propose-request':
        // The driver queues proposals: the next waits for the previous one's countersignature.
        s.proposals.push(e);
        break;
      default:
        break;
    }
  }
}

function input(s: Side, i: DuplexInput, tipHeight = TIP): void {
  if (!s.state) throw new Error('no state');
  void tipHeight;
  apply(s, duplexStep(s.ctx, s.state, i));
}

/** Delivers `from`'s outbox to `to`; a refused message is answered with an error (as the driver does), which `from` takes as a peer error. */
function deliver(from: Side, to: Side, tipHeight = TIP, floor = 1): ProtocolError[] {
  const errors: ProtocolError[] = [];
  while (from.outbox.length > 0) {
    const m = from.outbox.shift() as Message;
    const before = to.state;
    try {
      if (m.type === 'duplex-open') apply(to, duplexReceiveOpen(to.ctx, m, tipHeight, null));
      else {
        if (!to.state) throw new Error('no state');
        apply(to, duplexStep(to.ctx, to.state, { type: 'message', message: m, tipHeight, closeFloorSatPerVb: NEEDS_CLOSE_FLOOR.has(m.type) ? floor : null, challenge: CHALLENGE }));
      }
      drainProposals(to);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      expect(to.state).toBe(before); // a refused message changes nothing
      errors.push(err);
      const ref = m.type === 'duplex-update' ? `${m.channelId}/${m.index}` : m.type === 'duplex-pay-request' ? `${m.channelId}#${m.requestId}` : undefined;
      const reply = wire(errorMessage(err.code, err.message, err.action, ref));
      if (reply.type === 'error' && from.state) {
        const about = m.type === 'duplex-update' ? { index: m.index } : m.type === 'duplex-pay-request' ? { requestId: m.requestId } : {};
        apply(from, duplexStep(from.ctx, from.state, { type: 'peer-error', code: reply.code, text: reply.message, about, tipHeight, rolloverAwaited: m.type === 'duplex-rollover' }));
      }
    }
  }
  return errors;
}

function live(s: Side): LiveState {
  const st = s.state;
  if (!st || (st.type !== 'Open' && st.type !== 'Closing' && st.type !== 'Closed')) throw new Error(`${s.name} is ${st?.type ?? 'nothing'}`);
  return st;
}

function effectTypes(s: Side): string[] {
  return s.trace.map((e) => e.type);
}

/** Opens a channel A funds with `contributionASat` and B with `contributionBSat`; both confirmed. */
function openPair(contributionASat = 300_000n, contributionBSat = 100_000n): { a: Side; b: Side } {
  const a = side('A');
  const b = side('B');
  apply(
    a,
    duplexOpen(a.ctx, {
      tempId: 'ab'.repeat(16),
      tipHeight: TIP,
      keyIndex: 0,
      publicKey: pubOf('A', 0),
      payoutScript: scriptOf('A'),
      contributionASat,
      contributionBSat,
      fundingFeeRateSatPerVb: 2,
      stateFeeRateSatPerVb: 2,
    }),
  );
  expect(a.state?.type).toBe('Proposed');
  deliver(a, b); // duplex-open → accept
  expect(b.state?.type).toBe('Accepted');
  deliver(b, a); // accept → fund
  expect(a.state?.type).toBe('Funding');
  deliver(a, b); // fund → funded
  expect(b.state?.type).toBe('Open');
  deliver(b, a); // funded → channel
  expect(a.state?.type).toBe('Open');
  expect(a.resolved.get('opened')).toBe(live(a).channelId);
  deliver(a, b); // duplex-channel: nothing changes
  for (const s of [a, b]) input(s, { type: 'funding-confirmed', height: TIP + 1 });
  a.trace = [];
  b.trace = [];
  return { a, b };
}

describe('duplex machine: opening', () => {
  it('opens a channel both fund; state 0 is stored before either side signs a funding input', () => {
    const { a, b } = openPair();
    const la = live(a);
    const lb = live(b);
    expect(la.channelId).toBe(lb.channelId);
    expect(la.current).toEqual(lb.current);
    expect(la.current).toMatchObject({ index: 0, balanceASat: 300_000n, balanceBSat: 100_000n });
    // Both signatures on state 0 verify.
    const channel = liveChannel(la);
    expect(secp.ecdsaVerify(la.current.sigA, stateSighash(channel, la.current), la.terms.keyA)).toBe(true);
    expect(secp.ecdsaVerify(la.current.sigB, stateSighash(channel, la.current), la.terms.keyB)).toBe(true);
    // A's funding carries both sides' witnesses; B's record never sees A's.
    const funding = Transaction.fromHex(la.fundingTxHex);
    expect(funding.ins.every((_, i) => funding.ins[i] !== undefined && funding.hasWitnesses())).toBe(true);
    expect(funding.getId()).toBe(la.channelId.split(':')[0]);
    expect(la.fundingConfirmed && lb.fundingConfirmed).toBe(true);
  });

  it('orders every step: persist before the signature that depends on it', () => {
    const a = side('A');
    const b = side('B');
    apply(a, duplexOpen(a.ctx, { tempId: 'cd'.repeat(16), tipHeight: TIP, keyIndex: 0, publicKey: pubOf('A', 0), payoutScript: scriptOf('A'), contributionASat: 200_000n, contributionBSat: 0n, fundingFeeRateSatPerVb: 2, stateFeeRateSatPerVb: 2 }));
    expect(effectTypes(a)).toEqual(['contribute', 'persist', 'send']);
    deliver(a, b);
    // B puts nothing in: no node lookup, no coins; stored before it answers.
    expect(effectTypes(b)).toEqual(['allocate-key', 'adopt-link', 'persist', 'send']);
    deliver(b, a);
    expect(effectTypes(a).slice(3)).toEqual(['persist', 'send']);
    b.trace = [];
    deliver(a, b);
    expect(effectTypes(b)).toEqual(['check-inputs', 'adopt-link', 'persist', 'sign-funding-inputs', 'send', 'log']);
    a.trace = [];
    deliver(b, a);
    expect(effectTypes(a)).toEqual(['persist', 'sign-funding-inputs', 'persist', 'publish-funding', 'send', 'log', 'resolve']);
  });

  it('B refuses an opener naming coins the node does not have, and keeps nothing', () => {
    const a = side('A');
    const b = side('B');
    apply(a, duplexOpen(a.ctx, { tempId: 'ef'.repeat(16), tipHeight: TIP, keyIndex: 0, publicKey: pubOf('A', 0), payoutScript: scriptOf('A'), contributionASat: 200_000n, contributionBSat: 50_000n, fundingFeeRateSatPerVb: 2, stateFeeRateSatPerVb: 2 }));
    const open = a.outbox[0];
    if (open?.type !== 'duplex-open') throw new Error('no open');
    const first = open.inputs[0];
    if (!first) throw new Error('no input');
    coins.delete(`${first.txid}:${first.vout}`);
    const step = duplexReceiveOpen(b.ctx, open, TIP, null);
    expect(step.effects).toEqual([{ type: 'check-inputs', inputs: [{ txid: first.txid, vout: first.vout }] }]);
    expect(() => duplexStep(b.ctx, step.state, { type: 'inputs-checked', inputs: [{ txid: first.txid, vout: first.vout, state: 'unknown', scriptHex: '', valueSat: 0n, ownCoin: false }] })).toThrow(
      expect.objectContaining({ code: 'FUNDING_MISMATCH' }),
    );
  });

  it('refuses terms outside the policy before anything is allocated', () => {
    const b = side('B');
    const a = side('A');
    apply(a, duplexOpen(a.ctx, { tempId: '12'.repeat(16), tipHeight: TIP, keyIndex: 0, publicKey: pubOf('A', 0), payoutScript: scriptOf('A'), contributionASat: 200_000n, contributionBSat: 0n, fundingFeeRateSatPerVb: 2, stateFeeRateSatPerVb: 2 }));
    const open = a.outbox[0];
    if (open?.type !== 'duplex-open') throw new Error('no open');
    expect(() => duplexReceiveOpen(b.ctx, { ...open, network: 'mainnet' }, TIP, null)).toThrow(expect.objectContaining({ code: 'WRONG_NETWORK' }));
    expect(() => duplexReceiveOpen(b.ctx, { ...open, contributionBSat: policy.maxContributionSat + 1n }, TIP, null)).toThrow(expect.objectContaining({ code: 'CAPACITY_TOO_LARGE' }));
    expect(() => duplexReceiveOpen(b.ctx, { ...open, deltaBlocks: 1 }, TIP, null)).toThrow(expect.objectContaining({ code: 'LOCKTIME_INVALID' }));
    expect(() => duplexReceiveOpen(a.ctx, open, TIP, null)).toThrow(expect.objectContaining({ code: 'UNEXPECTED_MESSAGE' }));
  });
});

describe('duplex machine: updates', () => {
  it('A pays B: A stores its proposal before it leaves, B stores the state before its countersignature leaves', () => {
    const { a, b } = openPair();
    input(a, { type: 'pay', payer: 'A', amountSat: 10_000n, requestId: null, tipHeight: TIP });
    expect(effectTypes(a)).toEqual(['persist', 'send']);
    expect(live(a).pending).toMatchObject({ index: 1, balanceASat: 290_000n, balanceBSat: 110_000n });
    deliver(a, b);
    expect(effectTypes(b).slice(0, 3)).toEqual(['adopt-link', 'persist', 'send']);
    deliver(b, a);
    expect(live(a).current).toEqual(live(b).current);
    expect(live(a).pending).toBeNull();
    expect(a.resolved.get('countersign:1')).toEqual(live(a).current);
    expect(live(a)).toMatchObject({ updates: 1, paidAtoBSat: 10_000n, paidBtoASat: 0n });
    expect(live(b)).toMatchObject({ updates: 1, paidAtoBSat: 10_000n });
  });

  it('B pays A through a pay request; a repeated request is not paid twice', () => {
    const { a, b } = openPair();
    input(b, { type: 'pay-back', amountSat: 7_000n, requestId: '77'.repeat(16) });
    expect(effectTypes(b)).toEqual(['persist', 'send-if-connected']);
    const request = b.outbox[0];
    deliver(b, a); // A proposes it at once
    expect(live(a).pending).toMatchObject({ index: 1, requestId: '77'.repeat(16), balanceBSat: 93_000n });
    deliver(a, b);
    expect(b.resolved.get(`request:${'77'.repeat(16)}`)).toMatchObject({ index: 1, balanceASat: 307_000n });
    expect(live(b).payBackQueue).toEqual([]);
    deliver(b, a);
    expect(live(a).current.index).toBe(1);
    // The same request again: A ignores it.
    if (!request) throw new Error('no request');
    b.outbox.push(request);
    a.trace = [];
    deliver(b, a);
    expect(a.trace).toEqual([]);
    expect(live(a)).toMatchObject({ paidBtoASat: 7_000n, updates: 1 });
  });

  it('refuses without changing anything: bad signature, wrong index, B paying without asking, over balance', () => {
    const { a, b } = openPair();
    const before = b.state;
    input(a, { type: 'pay', payer: 'A', amountSat: 10_000n, requestId: null, tipHeight: TIP });
    const update = a.outbox.shift();
    if (update?.type !== 'duplex-update') throw new Error('no update');
    const step = (m: Message) => () => duplexStep(b.ctx, b.state as DuplexChannelState, { type: 'message', message: wire(m), tipHeight: TIP, closeFloorSatPerVb: null });
    const sig = new Uint8Array(update.signature);
    sig[5] = (sig[5] ?? 0) ^ 1;
    expect(step({ ...update, signature: sig })).toThrow(expect.objectContaining({ code: 'INVALID_SIGNATURE' }));
    expect(step({ ...update, index: 0 })).toThrow(expect.objectContaining({ code: 'STATE_INDEX_MISMATCH' }));
    expect(step({ ...update, balanceASat: update.balanceASat + 20_000n, balanceBSat: update.balanceBSat - 20_000n })).toThrow(expect.objectContaining({ code: 'BALANCE_MISMATCH' }));
    expect(step({ ...update, requestId: '99'.repeat(16) })).toThrow(expect.objectContaining({ code: 'BALANCE_MISMATCH' }));
    expect(b.state).toBe(before);
    // Over balance, either way.
    const { a: a2, b: b2 } = openPair();
    const a2Before = a2.state;
    expect(() => duplexStep(a2.ctx, a2.state as DuplexChannelState, { type: 'pay', payer: 'A', amountSat: 300_001n, requestId: null, tipHeight: TIP })).toThrow(expect.objectContaining({ code: 'INSUFFICIENT_BALANCE' }));
    expect(() => duplexStep(b2.ctx, b2.state as DuplexChannelState, { type: 'pay-back', amountSat: 100_001n, requestId: '88'.repeat(16) })).toThrow(expect.objectContaining({ code: 'INSUFFICIENT_BALANCE' }));
    expect(a2.state).toBe(a2Before);
    // One proposal at a time.
    input(a2, { type: 'pay', payer: 'A', amountSat: 1_000n, requestId: null, tipHeight: TIP });
    expect(() => duplexStep(a2.ctx, a2.state as DuplexChannelState, { type: 'pay', payer: 'A', amountSat: 1_000n, requestId: null, tipHeight: TIP })).toThrow(expect.objectContaining({ code: 'UPDATE_IN_FLIGHT' }));
  });

  it('a refused state is cancelled by a state above it with the current balances', () => {
    const { a, b } = openPair();
    input(a, { type: 'pay', payer: 'A', amountSat: 10_000n, requestId: null, tipHeight: TIP });
    // The proposal reaches B damaged: B refuses it, A cancels it with state 2.
    const update = a.outbox[0];
    if (update?.type !== 'duplex-update') throw new Error('no update');
    const sig = new Uint8Array(update.signature);
    sig[0] = (sig[0] ?? 0) ^ 1;
    a.outbox[0] = { ...update, signature: sig };
    const errors = deliver(a, b);
    expect(errors.map((e) => e.code)).toEqual(['INVALID_SIGNATURE']);
    expect(a.rejected.get('countersign:1')?.code).toBe('INVALID_SIGNATURE');
    expect(live(a)).toMatchObject({ refusedIndex: 1, pending: { index: 2, cancels: 1, balanceASat: 300_000n, balanceBSat: 100_000n } });
    deliver(a, b);
    deliver(b, a);
    expect(live(a).current).toMatchObject({ index: 2, balanceASat: 300_000n, balanceBSat: 100_000n });
    expect(live(b).current.index).toBe(2);
    // The refused index is never reused: the next payment is state 3.
    input(a, { type: 'pay', payer: 'A', amountSat: 1_000n, requestId: null, tipHeight: TIP });
    expect(live(a).pending?.index).toBe(3);
    // The refused state, completed as B could, is not final before the cancelling one.
    const channel = liveChannel(live(a));
    expect(stateLocktime(channel, 1)).toBeGreaterThan(stateLocktime(channel, 2));
  });

  it('A refusing a pay request drops it from B queue and fails only that request', () => {
    const { a, b } = openPair();
    input(b, { type: 'pay-back', amountSat: 5_000n, requestId: '55'.repeat(16) });
    const request = b.outbox.shift();
    if (request?.type !== 'duplex-pay-request') throw new Error('no request');
    apply(b, duplexStep(b.ctx, b.state as DuplexChannelState, { type: 'peer-error', code: 'INSUFFICIENT_BALANCE', text: 'no', about: { requestId: request.requestId }, tipHeight: TIP, rolloverAwaited: false }));
    expect(live(b).payBackQueue).toEqual([]);
    expect(b.rejected.get(`request:${'55'.repeat(16)}`)?.code).toBe('INSUFFICIENT_BALANCE');
    void a;
  });

  it('resumes after a lost countersignature, and takes the pay requests B queued while A was away', () => {
    const { a, b } = openPair();
    input(a, { type: 'pay', payer: 'A', amountSat: 4_000n, requestId: null, tipHeight: TIP });
    deliver(a, b);
    b.outbox = []; // the countersignature is lost
    expect(live(a).pending?.index).toBe(1);
    expect(live(b).current.index).toBe(1);
    b.connected = false;
    input(b, { type: 'pay-back', amountSat: 1_500n, requestId: '15'.repeat(16) });
    expect(b.outbox).toEqual([]); // A is away: queued only
    b.connected = true;
    input(a, { type: 'resume', challenge: CHALLENGE });
    expect(a.outbox.map((m) => m.type)).toEqual(['duplex-resume', 'duplex-update']);
    deliver(a, b);
    expect(b.outbox.map((m) => m.type)).toEqual(['duplex-pay-request', 'duplex-resumed', 'duplex-countersign']);
    deliver(b, a);
    expect(a.resolved.get('resumed')).toBe(1);
    expect(live(a).current.index).toBe(1);
    // A proposed B's queued request on the way: state 2.
    deliver(a, b);
    deliver(b, a);
    expect(live(a).current).toMatchObject({ index: 2, balanceASat: 297_500n, balanceBSat: 102_500n });
    expect(live(b).current).toEqual(live(a).current);
  });

  it('signs a resume over the connection challenge, the channel and the index (vector)', () => {
    // sha256("paychan/v1/duplex-resume" 0x00 ‖ challenge ‖ 0x00 channelId 0x00 index): computed by hand.
    expect(toHex(resumeDigest(new Uint8Array(32).fill(7), `${'ab'.repeat(32)}:1`, 5))).toBe('99602b132c2d5355ec3ea18978360f1642f71d34590f5a19802158f7541a16c7');
    expect(() => resumeDigest(new Uint8Array(31), 'x:0', 0)).toThrow(RangeError);
  });

  it('refuses a resume not signed by A, and one signed for another connection (a replay)', () => {
    const { a, b } = openPair();
    input(a, { type: 'resume', challenge: CHALLENGE });
    const resume = a.outbox[0];
    if (resume?.type !== 'duplex-resume') throw new Error('no resume');
    const on = (m: Message, challenge?: Uint8Array) => () =>
      duplexStep(b.ctx, b.state as DuplexChannelState, { type: 'message', message: m, tipHeight: TIP, closeFloorSatPerVb: null, ...(challenge ? { challenge } : {}) });
    expect(on(resume, CHALLENGE)).not.toThrow();
    expect(on({ ...resume, index: 5 }, CHALLENGE)).toThrow(expect.objectContaining({ code: 'INVALID_SIGNATURE' }));
    expect(on(resume, new Uint8Array(32).fill(9))).toThrow(expect.objectContaining({ code: 'INVALID_SIGNATURE' }));
    expect(on(resume)).toThrow(expect.objectContaining({ code: 'AUTH_INVALID' }));
  });
});

describe('duplex machine: ending', () => {
  it('closes cooperatively: the closer stores the close before its signature leaves', () => {
    const { a, b } = openPair();
    input(a, { type: 'pay', payer: 'A', amountSat: 25_000n, requestId: null, tipHeight: TIP });
    deliver(a, b);
    deliver(b, a);
    a.trace = [];
    input(a, { type: 'close', feeRateSatPerVb: 3, tipHeight: TIP });
    expect(effectTypes(a)).toEqual(['persist', 'send']);
    expect(a.state).toMatchObject({ type: 'Closing', close: { kind: 'cooperative', txHex: '' } });
    // No update once the close is signed.
    expect(() => duplexStep(a.ctx, a.state as DuplexChannelState, { type: 'pay', payer: 'A', amountSat: 1n, requestId: null, tipHeight: TIP })).toThrow(expect.objectContaining({ code: 'CHANNEL_NOT_OPEN' }));
    // B refuses a rate below its floor, then takes it.
    const close = a.outbox[0];
    expect(deliver(a, b, TIP, 4).map((e) => e.code)).toEqual(['FEE_RATE_INVALID']);
    if (!close) throw new Error('no close');
    a.outbox.push(close);
    b.trace = [];
    deliver(a, b, TIP, 1);
    expect(effectTypes(b)).toEqual(['adopt-link', 'persist', 'send', 'broadcast', 'log']);
    deliver(b, a);
    const la = live(a);
    const lb = live(b);
    if (la.type !== 'Closing' || lb.type !== 'Closing') throw new Error('not closing');
    expect(la.close.txHex).toBe(lb.close.txHex);
    expect(a.resolved.get('closed')).toBe(la.close.txid);
    const channel = liveChannel(la);
    const tx = Transaction.fromHex(la.close.txHex);
    expect(tx.locktime).toBe(0);
    expect(tx.getId()).toBe(signedCloseTx(channel, la.current, 3, la.current.sigA, la.current.sigA).getId());
  });

  it('rolls over in three messages: nobody signs the rollover before holding the new state 0 signed by both', () => {
    const { a, b } = openPair();
    const terms = live(a).terms;
    // A tip at which the budget is nearly spent: one update left.
    const tip = terms.initialLocktime - policy.marginBlocks - 1 * terms.deltaBlocks;
    const before = b.state;
    // B refuses a rollover while updates are left.
    input(a, { type: 'rollover', feeRateSatPerVb: 2, tipHeight: TIP });
    expect(deliver(a, b, TIP).map((e) => e.code)).toEqual(['UNEXPECTED_MESSAGE']);
    expect(b.state).toBe(before);
    expect(live(a).rolloverProposal).toMatchObject({ refused: true });
    const l0 = live(a).rolloverProposal?.initialLocktime;
    a.trace = [];
    input(a, { type: 'rollover', feeRateSatPerVb: 3, tipHeight: tip });
    expect(live(a).rolloverProposal).toEqual({ feeRateSatPerVb: 3, initialLocktime: l0, refused: false }); // same L0 after a refusal
    expect(effectTypes(a)).toEqual(['persist', 'send']);
    b.trace = [];
    deliver(a, b, tip);
    expect(effectTypes(b)).toEqual(['adopt-link', 'create', 'persist', 'send']);
    a.trace = [];
    deliver(b, a, tip);
    expect(effectTypes(a)).toEqual(['create', 'persist', 'send', 'broadcast', 'log', 'resolve']);
    b.trace = [];
    deliver(a, b, tip);
    expect(effectTypes(b)).toEqual(['persist', 'broadcast', 'log']);
    const [na] = a.created;
    const [nb] = b.created;
    if (na?.type !== 'Open' || nb?.type !== 'Open') throw new Error('no new channel');
    expect(na.channelId).toBe(nb.channelId);
    expect(na.current).toEqual(nb.current);
    expect(a.resolved.get('rolled')).toBe(na.channelId);
    const la = live(a);
    const lb = live(b);
    if (la.type !== 'Closing' || lb.type !== 'Closing') throw new Error('not closing');
    expect(la.close.txHex).toBe(lb.close.txHex);
    expect(Transaction.fromHex(la.close.txHex).getId()).toBe(na.channelId.split(':')[0]);
    expect(na.predecessorId).toBe(la.channelId);
    // The rollover is signed by both, SIGHASH_ALL.
    const channel = liveChannel(la);
    const roll = buildRolloverTx(channel, la.current, 3);
    expect(roll.tx.getId()).toBe(la.close.txid);
    expect(secp.ecdsaVerify(la.current.sigA, stateSighash(channel, la.current), la.terms.keyA)).toBe(true);
    // A retry of the same rollover is answered again (B stored the new channel); one with other terms is refused.
  });

  it('B answers a repeated rollover again, and refuses one with other terms for a new channel it signed', () => {
    const { a, b } = openPair();
    const terms = live(a).terms;
    const tip = terms.initialLocktime - policy.marginBlocks - terms.deltaBlocks;
    input(a, { type: 'rollover', feeRateSatPerVb: 3, tipHeight: tip });
    const rollover = a.outbox[0];
    if (rollover?.type !== 'duplex-rollover') throw new Error('no rollover');
    deliver(a, b, tip);
    const [nb] = b.created;
    if (nb?.type !== 'Open') throw new Error('no new channel');
    const signed = b.state;
    const again = duplexStep(b.ctx, signed as DuplexChannelState, { type: 'message', message: rollover, tipHeight: tip, closeFloorSatPerVb: 1 }, { successorL0: nb.terms.initialLocktime });
    expect(again.state).toBe(signed);
    expect(again.effects.map((e) => e.type)).toEqual(['send']); // answered where it came from; a replay cannot take B's link
    const other = { ...rollover, initialLocktime: rollover.initialLocktime + 1 };
    expect(() => duplexStep(b.ctx, signed as DuplexChannelState, { type: 'message', message: other, tipHeight: tip, closeFloorSatPerVb: 1 }, { successorL0: nb.terms.initialLocktime })).toThrow(
      expect.objectContaining({ code: 'UNEXPECTED_MESSAGE' }),
    );
  });

  it('a countersignature after a force close makes the close publish the newer state', () => {
    const { a, b } = openPair();
    input(a, { type: 'pay', payer: 'A', amountSat: 9_000n, requestId: null, tipHeight: TIP });
    deliver(a, b);
    input(a, { type: 'force-close' });
    expect(a.state).toMatchObject({ type: 'Closing', close: { kind: 'unilateral', stateIndex: 0 } });
    deliver(b, a);
    expect(a.state).toMatchObject({ type: 'Closing', close: { kind: 'unilateral', stateIndex: 1 } });
    const la = live(a);
    if (la.type !== 'Closing') throw new Error('not closing');
    expect(la.close.olderOwnTxids).toHaveLength(1);
    expect(Transaction.fromHex(la.close.txHex).locktime).toBe(stateLocktime(liveChannel(la), 1));
    input(a, { type: 'close-broadcast', height: TIP + 3 });
    input(a, { type: 'bumped', txid: 'ff'.repeat(32), txHex: la.close.txHex, feeSat: 999n, feeRateSatPerVb: 5, height: TIP + 4, reservation: 'bump:x:5' });
    a.trace = [];
    input(a, { type: 'settled', settlement: { txid: 'ff'.repeat(32), confirmations: 1, kind: 'unilateral', stateIndex: 1, valueASat: 1n, valueBSat: 2n, feeSat: 3n } });
    expect(a.state).toMatchObject({ type: 'Closed', close: { kind: 'unilateral', bumpReservation: 'bump:x:5' }, settlement: { stateIndex: 1 } });
  });
});

describe('duplex machine: stored records of the older peer', () => {
  const fixture = new URL('../fixtures/duplex-legacy-record.json', import.meta.url);

  it('loads an old record (a bag of optional fields) as the tagged state it stands for', () => {
    const old = decodeState<LegacyDuplexRecord>(fs.readFileSync(fixture, 'utf8'));
    const state = decodeDuplexState(old);
    expect(state.type).toBe('Open');
    if (state.type !== 'Open') throw new Error('not open');
    expect(state).toMatchObject({ channelId: old.channelId, role: 'A', fundingConfirmed: true, pending: null, refusedIndex: null, rolloverProposal: null, payBackQueue: [], predecessorId: null, openedBy: null });
    expect(state.current).toEqual(old.current);
    // It takes the next payment as any channel does.
    const a = side('A');
    const next = duplexStep(a.ctx, state, { type: 'pay', payer: 'A', amountSat: 1_000n, requestId: null, tipHeight: TIP });
    expect(next.state).toMatchObject({ pending: { index: (old.current?.index ?? 0) + 1 } });
    // A new state round-trips through the store codec unchanged.
    expect(decodeDuplexState(decodeState(encodeState(state)))).toEqual(state);
  });

  it('reads the other old phases', () => {
    const old = decodeState<LegacyDuplexRecord>(fs.readFileSync(fixture, 'utf8'));
    const close = { kind: 'cooperative' as const, txid: 'aa'.repeat(32), txHex: '', feeSat: 300n, feeRateSatPerVb: 2 };
    expect(decodeDuplexState({ ...old, phase: 'closing', close })).toMatchObject({ type: 'Closing', close });
    expect(decodeDuplexState({ ...old, phase: 'aborted' })).toMatchObject({ type: 'Aborted', live: { channelId: old.channelId } });
    const { current: _c, channelId: _id, fundingTxHex: _f, ...opening } = old;
    expect(decodeDuplexState({ ...opening, phase: 'opening' })).toMatchObject({ type: 'Proposed' });
    expect(decodeDuplexState({ ...opening, role: 'B', phase: 'opening' })).toMatchObject({ type: 'Accepted', role: 'B' });
    expect(() => decodeDuplexState({ ...opening, phase: 'open' })).toThrow(TypeError);
  });
});

export type { StateOf };


describe('duplex machine: the watcher’s answer to a rival spend in the mempool', () => {
  const close = { kind: 'unilateral' as const, txid: 'aa'.repeat(32), txHex: '00', feeSat: 300n, feeRateSatPerVb: 2, supersededTxid: 'cc'.repeat(32), olderOwnTxids: ['dd'.repeat(32)] };
  const rival = (over: Partial<{ txid: string; sameState: boolean; ourInRivalSat: bigint; ourNewestSat: bigint }> = {}) => ({ txid: 'bb'.repeat(32), sameState: false, ourInRivalSat: 100n, ourNewestSat: 200n, ...over });
  it.each([
    ['an older state paying us less is contested at once', close, rival(), TIP, { type: 'Contest', ownOlderVersion: false }],
    ['our own older version is contested as ours', close, rival({ txid: 'dd'.repeat(32) }), TIP, { type: 'Contest', ownOlderVersion: true }],
    ['an older state paying us at least our newest is let confirm', close, rival({ ourInRivalSat: 200n }), TIP, { type: 'LetConfirm', firstSeen: true }],
    ['the peer’s copy of our newest state is waited for', close, rival({ sameState: true }), TIP, { type: 'Wait', firstSeen: true }],
    ['the close ours stands in for is waited for', close, rival({ txid: 'cc'.repeat(32) }), TIP, { type: 'Wait', firstSeen: true }],
    ['same balances, seen a block ago: still waited for', { ...close, rivalSeenHeight: TIP }, rival({ sameState: true }), TIP + policy.bumpAfterBlocks - 1, { type: 'Wait', firstSeen: false }],
    ['same balances, stuck bumpAfterBlocks: bumped past', { ...close, rivalSeenHeight: TIP }, rival({ sameState: true }), TIP + policy.bumpAfterBlocks, { type: 'BumpPast' }],
  ] as const)('%s', (_name, c, r, tip, expected) => {
    expect(answerMempoolSpend(c, r, tip, policy.bumpAfterBlocks)).toEqual(expected);
  });
});
