/**
 * The rules of a duplex channel's life (src/protocol/duplex-update.ts) and the arithmetic they
 * rest on (src/protocol/duplex-tx.ts): properties of the fee split, the locktimes, the update
 * budget and nextState under fast-check; each refused term, state or proposal with its error
 * code; and the duplex-* wire messages.
 */
import fc from 'fast-check';
import { Transaction } from 'bitcoinjs-lib';
import { describe, expect, it } from 'vitest';
import { loadNativeSecp256k1 } from '../../src/crypto/index.js';
import { fromHex } from '../../src/protocol/bytes.js';
import { dustThresholdSat } from '../../src/protocol/dust.js';
import {
  buildRolloverTx,
  buildStateTx,
  duplexOutputs,
  duplexSighash,
  duplexSpendVsize,
  DUPLEX_STATE_HASHTYPE,
  makeDuplexChannel,
  rolloverSighash,
  stateLocktime,
  stateSighash,
  type DuplexChannel,
  type DuplexRole,
  type DuplexState,
  type DuplexTerms,
} from '../../src/protocol/duplex-tx.js';
import {
  checkDuplexTerms,
  checkNextState,
  checkProposalForB,
  duplexPolicy,
  nextState,
  plannedInitialLocktime,
  updatesLeft,
} from '../../src/protocol/duplex-update.js';
import { codeOf } from '../helpers/protocol.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { decodeMessage, encodeMessage, msg, type Message } from '../../src/protocol/messages.js';
import { MAX_SIGNATURE_BYTES, feeForVsize } from '../../src/protocol/transactions.js';

const secp = loadNativeSecp256k1();
const KEY_A = secp.publicKeyCreate(fromHex('11'.repeat(32)));
const KEY_B = secp.publicKeyCreate(fromHex('22'.repeat(32)));
/** One script of each standard template we pay to (their dust thresholds differ: 546, 540, 294, 330, 330). */
const SCRIPTS = {
  p2pkh: fromHex('76a914' + '11'.repeat(20) + '88ac'),
  p2sh: fromHex('a914' + '22'.repeat(20) + '87'),
  p2wpkh: fromHex('0014' + '33'.repeat(20)),
  p2wsh: fromHex('0020' + '44'.repeat(32)),
  p2tr: fromHex('5120' + '55'.repeat(32)),
};
const SCRIPT_A = SCRIPTS.p2wpkh;
const SCRIPT_B = SCRIPTS.p2tr;
const FUNDING = { txid: 'ab'.repeat(32), vout: 0 };

const TIP = 500;
const policy = duplexPolicy({ network: 'regtest' }); // Δ 6, margin 3, 100 planned updates, lock ≤ 10000 blocks

function terms(overrides: Partial<DuplexTerms> = {}): DuplexTerms {
  return {
    network: 'regtest',
    keyA: KEY_A,
    keyB: KEY_B,
    scriptA: SCRIPT_A,
    scriptB: SCRIPT_B,
    contributionASat: 600_000n,
    contributionBSat: 400_000n,
    initialLocktime: plannedInitialLocktime(policy, TIP), // 500 + 3 + 100·6 = 1103
    deltaBlocks: policy.deltaBlocks,
    stateFeeRateSatPerVb: 1,
    ...overrides,
  };
}

function channel(overrides: Partial<DuplexTerms> = {}): DuplexChannel {
  return makeDuplexChannel(terms(overrides), FUNDING);
}

/** vsize of `tx` once signed with two maximal (72-byte) signatures. */
function maxSignedVsize(ch: DuplexChannel, tx: Transaction): number {
  const sized = tx.clone();
  sized.setWitness(0, [new Uint8Array(0), new Uint8Array(MAX_SIGNATURE_BYTES), new Uint8Array(MAX_SIGNATURE_BYTES), ch.witnessScript]);
  return sized.virtualSize();
}

const arbScript = fc.constantFrom(...Object.values(SCRIPTS));
const arbRate = fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.double({ min: 0, max: 50, noNaN: true }));
/** A channel and balances, biased towards the dust edges: small balances on either side. */
const arbChannelBalances = fc
  .record({
    scriptA: arbScript,
    scriptB: arbScript,
    capacity: fc.oneof(fc.bigInt({ min: 1n, max: 5_000n }), fc.bigInt({ min: 1n, max: 2_100_000_000_000_000n })),
    share: fc.oneof(fc.bigInt({ min: 0n, max: 2_000n }), fc.bigInt({ min: 0n, max: 2_100_000_000_000_000n })),
    smallSide: fc.constantFrom('A', 'B'),
  })
  .map(({ scriptA, scriptB, capacity, share, smallSide }) => {
    const small = share > capacity ? share % (capacity + 1n) : share;
    const [contributionASat, contributionBSat] = smallSide === 'A' ? [small, capacity - small] : [capacity - small, small];
    return { ch: channel({ scriptA, scriptB, contributionASat, contributionBSat }), balances: { balanceASat: contributionASat, balanceBSat: contributionBSat } };
  });

describe('duplexOutputs (property)', () => {
  it('conserves the capacity, drops dust, splits the fee A ceil(fee/2), B floor(fee/2), and never pays less than the fee', () => {
    fc.assert(
      fc.property(arbChannelBalances, arbRate, ({ ch, balances }, rate) => {
        const fee = feeForVsize(duplexSpendVsize(ch), rate);
        const halfA = (fee + 1n) / 2n;
        const halfB = fee / 2n;
        const keepA = balances.balanceASat - halfA >= dustThresholdSat(ch.scriptA);
        const keepB = balances.balanceBSat - halfB >= dustThresholdSat(ch.scriptB);
        // A kept side pays its half, or what the dropped side's whole balance leaves of the fee.
        const valueA = !keepA ? 0n : keepB ? balances.balanceASat - halfA : balances.balanceASat - (halfA > fee - balances.balanceBSat ? halfA : fee - balances.balanceBSat);
        const valueB = !keepB ? 0n : keepA ? balances.balanceBSat - halfB : balances.balanceBSat - (halfB > fee - balances.balanceASat ? halfB : fee - balances.balanceASat);
        const okA = !keepA || valueA >= dustThresholdSat(ch.scriptA);
        const okB = !keepB || valueB >= dustThresholdSat(ch.scriptB);
        if ((!keepA && !keepB) || !okA || !okB) {
          expect(() => duplexOutputs(ch, balances, rate)).toThrow(RangeError);
          return;
        }
        const o = duplexOutputs(ch, balances, rate);
        expect(o.valueASat).toBe(valueA);
        expect(o.valueBSat).toBe(valueB);
        expect(o.valueASat + o.valueBSat + o.feeSat).toBe(ch.capacitySat);
        expect(o.outputs.reduce((sum, out) => sum + out.valueSat, 0n) + o.feeSat).toBe(ch.capacitySat);
        // In order A then B, each present output at or above its dust threshold, none empty.
        expect(o.outputs).toEqual([...(keepA ? [{ script: ch.scriptA, valueSat: valueA }] : []), ...(keepB ? [{ script: ch.scriptB, valueSat: valueB }] : [])]);
        for (const out of o.outputs) expect(out.valueSat).toBeGreaterThanOrEqual(dustThresholdSat(out.script));
        expect(o.feeSat).toBeGreaterThanOrEqual(fee);
        if (keepA && keepB) expect(o.feeSat).toBe(fee);
        expect(o.valueASat).toBeLessThanOrEqual(balances.balanceASat);
        expect(o.valueBSat).toBeLessThanOrEqual(balances.balanceBSat);
      }),
      { numRuns: 2000 },
    );
  });

  it('pays at least the rate on the signed vsize whenever a dropped side could cover its half', () => {
    fc.assert(
      fc.property(arbChannelBalances, fc.integer({ min: 1, max: 100 }), fc.nat({ max: 100 }), ({ ch, balances }, rate, index) => {
        const rated = makeDuplexChannel({ ...ch, stateFeeRateSatPerVb: rate }, ch.funding);
        const fee = feeForVsize(duplexSpendVsize(rated), rate);
        let o;
        try {
          o = duplexOutputs(rated, balances, rate);
        } catch {
          return; // both dust: no state to build
        }
        const coversA = o.valueASat > 0n || balances.balanceASat >= (fee + 1n) / 2n;
        const coversB = o.valueBSat > 0n || balances.balanceBSat >= fee / 2n;
        fc.pre(coversA && coversB);
        const tx = buildStateTx(rated, { index, ...balances });
        expect(o.feeSat).toBeGreaterThanOrEqual(feeForVsize(maxSignedVsize(rated, tx), rate));
        if (o.outputs.length === 2) expect(maxSignedVsize(rated, tx)).toBe(duplexSpendVsize(rated));
      }),
      { numRuns: 500 },
    );
  });

  // A side holding less than its half of the fee (B in state 0 of a channel A alone funded) has
  // its output dropped; the kept side pays the rest, so the state still pays the agreed rate.
  it('state 0 of a single-funded channel pays its state fee rate', () => {
    const ch = channel({ contributionASat: 1_000_000n, contributionBSat: 0n, stateFeeRateSatPerVb: 1 });
    const state = { index: 0, balanceASat: 1_000_000n, balanceBSat: 0n };
    const tx = buildStateTx(ch, state);
    const o = duplexOutputs(ch, state, 1);
    expect(o.outputs).toHaveLength(1);
    expect(o.feeSat).toBeGreaterThanOrEqual(feeForVsize(maxSignedVsize(ch, tx), 1));
  });

  it('refuses balances that do not add up to the capacity, or are negative', () => {
    const ch = channel();
    for (const [a, b] of [
      [600_000n, 400_001n],
      [599_999n, 400_000n],
      [-1n, 1_000_001n],
      [1_000_001n, -1n],
    ] as const) {
      expect(() => duplexOutputs(ch, { balanceASat: a, balanceBSat: b }, 1)).toThrow(RangeError);
    }
  });
});

describe('rollover signatures', () => {
  it('commit to every input (SIGHASH_ALL): an added input changes what is signed, unlike a state', () => {
    const ch = channel();
    const balances = { balanceASat: ch.capacitySat / 2n, balanceBSat: ch.capacitySat - ch.capacitySat / 2n };
    const roll = buildRolloverTx(ch, balances, 2).tx;
    const grown = roll.clone();
    grown.addInput(new Uint8Array(32).fill(9), 1, 0xfffffffd);
    expect(rolloverSighash(ch, grown)).not.toEqual(rolloverSighash(ch, roll));
    // A state's signatures (ALL|ANYONECANPAY) survive an added fee input: that is what a bump uses.
    const state = { index: 0, ...balances };
    const stateTx = buildStateTx(ch, state);
    stateTx.addInput(new Uint8Array(32).fill(9), 1, 0xfffffffd);
    expect(duplexSighash(ch, stateTx, DUPLEX_STATE_HASHTYPE)).toEqual(stateSighash(ch, state));
  });
});

describe('buildRolloverTx (property)', () => {
  it('funds the same script with the capacity less the fee, split half and half unless a side has less', () => {
    fc.assert(
      fc.property(arbChannelBalances, fc.integer({ min: 0, max: 500 }), ({ ch, balances }, rate) => {
        const unsigned = new Transaction();
        unsigned.addInput(new Uint8Array(32), 0, 0xfffffffd);
        unsigned.addOutput(ch.fundingScript, 0n);
        const fee = feeForVsize(maxSignedVsize(ch, unsigned), rate);
        if (ch.capacitySat < fee || ch.capacitySat - fee < dustThresholdSat(ch.fundingScript)) {
          expect(() => buildRolloverTx(ch, balances, rate)).toThrow(RangeError);
          return;
        }
        const r = buildRolloverTx(ch, balances, rate);
        expect(r.feeSat).toBe(fee);
        expect(r.tx.locktime).toBe(0);
        expect(r.tx.ins).toHaveLength(1);
        expect(r.tx.outs).toHaveLength(1);
        expect(r.tx.outs[0]!.script).toEqual(ch.fundingScript);
        expect(r.tx.outs[0]!.value).toBe(ch.capacitySat - fee);
        expect(r.contributionASat + r.contributionBSat + fee).toBe(ch.capacitySat);
        const paidA = balances.balanceASat - r.contributionASat;
        const paidB = balances.balanceBSat - r.contributionBSat;
        expect(paidA).toBeGreaterThanOrEqual(0n);
        expect(paidB).toBeGreaterThanOrEqual(0n);
        if (balances.balanceASat >= (fee + 1n) / 2n && balances.balanceBSat >= fee / 2n) {
          expect([paidA, paidB]).toEqual([(fee + 1n) / 2n, fee / 2n]);
        } else {
          // The poorer side pays all it has.
          expect(r.contributionASat === 0n || r.contributionBSat === 0n).toBe(true);
        }
        // Its fee pays the rate on its own signed size (one output, the worst-case signatures).
        expect(r.feeSat).toBeGreaterThanOrEqual(feeForVsize(maxSignedVsize(ch, r.tx), rate));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('stateLocktime (property)', () => {
  const arbTerms = fc.record({ initialLocktime: fc.integer({ min: 1, max: 499_999_999 }), deltaBlocks: fc.integer({ min: 1, max: 10_000 }) });

  it('is L0 − i·Δ, strictly decreasing in i, Δ apart, and refuses an index with no locktime ≥ 1', () => {
    fc.assert(
      fc.property(arbTerms, fc.nat({ max: 100_000 }), fc.nat({ max: 100_000 }), (t, i, j) => {
        const last = Math.floor((t.initialLocktime - 1) / t.deltaBlocks); // highest index with a locktime ≥ 1
        for (const k of [i, j]) {
          if (k <= last) expect(stateLocktime(t, k)).toBe(t.initialLocktime - k * t.deltaBlocks);
          else expect(() => stateLocktime(t, k)).toThrow(RangeError);
        }
        if (i < j && j <= last) expect(stateLocktime(t, i)).toBeGreaterThan(stateLocktime(t, j));
        if (i + 1 <= last) expect(stateLocktime(t, i) - stateLocktime(t, i + 1)).toBe(t.deltaBlocks);
        expect(stateLocktime(t, last)).toBeGreaterThanOrEqual(1);
        expect(() => stateLocktime(t, last + 1)).toThrow(RangeError);
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses negative, fractional and unsafe indexes, and heights that are times', () => {
    const t = { initialLocktime: 1000, deltaBlocks: 6 };
    for (const index of [-1, 0.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1, 167]) expect(() => stateLocktime(t, index)).toThrow(RangeError);
    expect(stateLocktime(t, 166)).toBe(4);
    expect(() => stateLocktime({ initialLocktime: 12, deltaBlocks: 6 }, 2)).toThrow(RangeError); // locktime 0: no state
    expect(stateLocktime({ initialLocktime: 12, deltaBlocks: 6 }, 1)).toBe(6);
    expect(() => stateLocktime({ initialLocktime: 500_000_000, deltaBlocks: 1 }, 0)).toThrow(RangeError);
    expect(stateLocktime({ initialLocktime: 500_000_000, deltaBlocks: 1 }, 1)).toBe(499_999_999);
  });
});

describe('updatesLeft (property)', () => {
  it('counts the states k > index with L0 − k·Δ ≥ tip + margin and ≥ 1, never negative', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5_000 }),
        fc.integer({ min: 1, max: 300 }),
        fc.nat({ max: 200 }),
        fc.nat({ max: 6_000 }),
        fc.nat({ max: 200 }),
        (initialLocktime, deltaBlocks, index, tip, margin) => {
          const t = { initialLocktime, deltaBlocks };
          let allowed = 0;
          // A state's locktime must also be at least 1: nLockTime 0 locks nothing, so it could
          // not be ordered after the states before it.
          for (let k = index + 1; initialLocktime - k * deltaBlocks >= Math.max(tip + margin, 1); k++) allowed++;
          const left = updatesLeft(t, index, tip, margin);
          expect(left).toBe(allowed);
          expect(left).toBeGreaterThanOrEqual(0);
          expect(Number.isInteger(left)).toBe(true);
          // One block later never leaves more updates; one state later leaves one fewer (or none).
          expect(updatesLeft(t, index, tip + 1, margin)).toBeLessThanOrEqual(left);
          expect(updatesLeft(t, index + 1, tip, margin)).toBe(Math.max(0, left - 1));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('is what checkNextState enforces: UPDATE_BUDGET_EXHAUSTED exactly when no update is left', () => {
    fc.assert(
      fc.property(fc.integer({ min: 50, max: 5_000 }), fc.integer({ min: 1, max: 300 }), fc.nat({ max: 60 }), fc.integer({ min: 1, max: 6_000 }), fc.nat({ max: 200 }), (l0, delta, index, tip, margin) => {
        const ch = channel({ initialLocktime: l0, deltaBlocks: delta });
        const current = { index, balanceASat: 600_000n, balanceBSat: 400_000n };
        const next = { index: index + 1, balanceASat: 590_000n, balanceBSat: 410_000n };
        const left = updatesLeft(ch, index, tip, margin);
        expect(codeOf(() => checkNextState(ch, current, next, tip, margin))).toBe(left < 1 ? 'UPDATE_BUDGET_EXHAUSTED' : 'NO_ERROR');
        // An accepted state has its locktime and leaves margin blocks before it.
        if (left >= 1) expect(stateLocktime(ch, next.index)).toBeGreaterThanOrEqual(tip + margin);
      }),
      { numRuns: 1000 },
    );
  });

  it('gives a channel opened at plannedInitialLocktime exactly plannedUpdates updates', () => {
    fc.assert(
      fc.property(fc.nat({ max: 1_000_000 }), fc.constantFrom('regtest', 'mainnet') as fc.Arbitrary<'regtest' | 'mainnet'>, (tip, network) => {
        const p = duplexPolicy({ network });
        const t = terms({ network, initialLocktime: plannedInitialLocktime(p, tip), deltaBlocks: p.deltaBlocks });
        expect(updatesLeft(t, 0, tip, p.marginBlocks)).toBe(p.plannedUpdates);
        expect(codeOf(() => checkDuplexTerms(secp, p, t, tip))).toBe('NO_ERROR'); // A's own check passes
      }),
      { numRuns: 200 },
    );
  });
});

describe('nextState (property)', () => {
  const arbCase = fc.record({
    capacity: fc.bigInt({ min: 10_000n, max: 100_000_000n }),
    shareA: fc.double({ min: 0, max: 1, noNaN: true }),
    index: fc.nat({ max: 99 }),
    payer: fc.constantFrom('A', 'B') as fc.Arbitrary<DuplexRole>,
    fraction: fc.double({ min: 0, max: 1, noNaN: true }),
    rate: fc.integer({ min: 1, max: 100 }),
  });

  it('moves exactly the amount from the payer to the other side, keeps the capacity, bumps the index', () => {
    fc.assert(
      fc.property(arbCase, ({ capacity, shareA, index, payer, fraction, rate }) => {
        const a = BigInt(Math.floor(Number(capacity) * shareA));
        const ch = channel({ contributionASat: a, contributionBSat: capacity - a, stateFeeRateSatPerVb: rate });
        const current: DuplexState = { index, balanceASat: a, balanceBSat: capacity - a };
        const from = payer === 'A' ? current.balanceASat : current.balanceBSat;
        fc.pre(from > 0n);
        const amount = 1n + BigInt(Math.floor(Number(from - 1n) * fraction));
        let next: DuplexState;
        try {
          next = nextState(ch, current, payer, amount, TIP, policy.marginBlocks);
        } catch (err) {
          // Only a state whose two outputs would both be dust is refused (the capacity is tiny next to the fee).
          expect((err as ProtocolError).code).toBe('BALANCE_MISMATCH');
          expect(() => duplexOutputs(ch, { balanceASat: payer === 'A' ? a - amount : a + amount, balanceBSat: capacity - a + (payer === 'A' ? amount : -amount) }, rate)).toThrow(RangeError);
          return;
        }
        expect(next.index).toBe(index + 1);
        expect(next.balanceASat + next.balanceBSat).toBe(ch.capacitySat);
        expect(next.balanceASat - current.balanceASat).toBe(payer === 'A' ? -amount : amount);
        expect(next.balanceBSat - current.balanceBSat).toBe(payer === 'B' ? -amount : amount);
        expect(next.balanceASat).toBeGreaterThanOrEqual(0n);
        expect(next.balanceBSat).toBeGreaterThanOrEqual(0n);
        // What A proposes this way passes B's check when B asked for exactly this amount (or was paid).
        expect(codeOf(() => checkProposalForB(ch, current, next, payer === 'B' ? amount : null, TIP, policy.marginBlocks))).toBe('NO_ERROR');
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses a payment above the payer balance with INSUFFICIENT_BALANCE', () => {
    fc.assert(
      fc.property(arbCase, fc.bigInt({ min: 1n, max: 10n ** 9n }), ({ capacity, shareA, index, payer }, excess) => {
        const a = BigInt(Math.floor(Number(capacity) * shareA));
        const ch = channel({ contributionASat: a, contributionBSat: capacity - a });
        const current: DuplexState = { index, balanceASat: a, balanceBSat: capacity - a };
        const from = payer === 'A' ? current.balanceASat : current.balanceBSat;
        expect(codeOf(() => nextState(ch, current, payer, from + excess, TIP, policy.marginBlocks))).toBe('INSUFFICIENT_BALANCE');
      }),
      { numRuns: 300 },
    );
  });
});

describe('checkDuplexTerms (B’s and A’s own check)', () => {
  const maxLock = policy.maxLockBlocks;
  const soonest = TIP + policy.marginBlocks + policy.deltaBlocks; // state 1 must fit: 509
  const cases: [string, Partial<DuplexTerms>, string][] = [
    ['honest terms', {}, 'NO_ERROR'],
    ['keyA of 32 bytes', { keyA: KEY_A.subarray(1) }, 'INVALID_PUBKEY'],
    ['keyA uncompressed (65 bytes)', { keyA: Uint8Array.of(0x04, ...KEY_A.subarray(1), ...new Uint8Array(32).fill(1)) }, 'INVALID_PUBKEY'],
    ['keyB off the curve (x ≥ p)', { keyB: fromHex('02' + 'ff'.repeat(32)) }, 'INVALID_PUBKEY'],
    ['keyB with a bad prefix', { keyB: Uint8Array.of(0x05, ...KEY_B.subarray(1)) }, 'INVALID_PUBKEY'],
    ['keyB all zeros', { keyB: new Uint8Array(33) }, 'INVALID_PUBKEY'],
    ['scriptA OP_RETURN', { scriptA: fromHex('6a04deadbeef') }, 'INVALID_SCRIPT'],
    ['scriptB P2A (anchor)', { scriptB: fromHex('51024e73') }, 'INVALID_SCRIPT'],
    ['scriptA P2PK (not a template we pay to)', { scriptA: Uint8Array.of(0x21, ...KEY_A, 0xac) }, 'INVALID_SCRIPT'],
    ['scriptB empty', { scriptB: new Uint8Array(0) }, 'INVALID_SCRIPT'],
    ['scriptB witness v0 with a 21-byte program', { scriptB: fromHex('0015' + '33'.repeat(21)) }, 'INVALID_SCRIPT'],
    ['scriptA a truncated P2PKH', { scriptA: SCRIPTS.p2pkh.subarray(0, 24) }, 'INVALID_SCRIPT'],
    ['every standard template for A and B', { scriptA: SCRIPTS.p2pkh, scriptB: SCRIPTS.p2sh }, 'NO_ERROR'],
    ['P2WSH and P2TR', { scriptA: SCRIPTS.p2wsh, scriptB: SCRIPTS.p2tr }, 'NO_ERROR'],
    ['capacity 1 sat below the minimum', { contributionASat: 5_000n, contributionBSat: 4_999n }, 'CAPACITY_TOO_SMALL'],
    ['capacity at the minimum', { contributionASat: 10_000n, contributionBSat: 0n }, 'NO_ERROR'],
    ['a negative contribution', { contributionASat: -1n, contributionBSat: 1_000_000n }, 'CAPACITY_TOO_SMALL'],
    ['a negative contribution hiding in a big capacity', { contributionASat: 200_000_000n, contributionBSat: -150_000_000n }, 'CAPACITY_TOO_SMALL'],
    ['capacity 1 sat above the maximum', { contributionASat: 50_000_000n, contributionBSat: 50_000_001n }, 'CAPACITY_TOO_LARGE'],
    ['capacity at the maximum', { contributionASat: 50_000_000n, contributionBSat: 50_000_000n }, 'NO_ERROR'],
    ['Δ below the policy', { deltaBlocks: policy.deltaBlocks - 1 }, 'LOCKTIME_INVALID'],
    ['Δ 0', { deltaBlocks: 0 }, 'LOCKTIME_INVALID'],
    ['Δ fractional', { deltaBlocks: policy.deltaBlocks + 0.5 }, 'LOCKTIME_INVALID'],
    ['Δ above the policy', { deltaBlocks: policy.deltaBlocks + 1 }, 'NO_ERROR'],
    ['L0 too soon: no update fits', { initialLocktime: soonest - 1 }, 'LOCKTIME_INVALID'],
    ['L0 in the past', { initialLocktime: TIP - 1 }, 'LOCKTIME_INVALID'],
    ['L0 leaving exactly one update', { initialLocktime: soonest }, 'NO_ERROR'],
    ['L0 too late', { initialLocktime: TIP + maxLock + 1 }, 'LOCKTIME_INVALID'],
    ['L0 at the longest lock', { initialLocktime: TIP + maxLock }, 'NO_ERROR'],
    ['state fee rate 0', { stateFeeRateSatPerVb: 0 }, 'FEE_RATE_INVALID'],
    ['state fee rate above the policy', { stateFeeRateSatPerVb: policy.maxStateFeeRateSatPerVb + 1 }, 'FEE_RATE_INVALID'],
    ['state fee rate fractional', { stateFeeRateSatPerVb: 1.5 }, 'FEE_RATE_INVALID'],
    ['state fee rate NaN', { stateFeeRateSatPerVb: Number.NaN }, 'FEE_RATE_INVALID'],
    ['state fee rate negative', { stateFeeRateSatPerVb: -1 }, 'FEE_RATE_INVALID'],
    ['state fee rate at the maximum', { stateFeeRateSatPerVb: policy.maxStateFeeRateSatPerVb }, 'NO_ERROR'],
  ];
  it.each(cases)('%s → %s', (_d, overrides, code) => {
    expect(codeOf(() => checkDuplexTerms(secp, policy, terms(overrides), TIP))).toBe(code);
  });

  it("holds B's Δ to its own (mainnet) minimum", () => {
    const mainnet = duplexPolicy({ network: 'mainnet' });
    const t = (deltaBlocks: number) => terms({ network: 'mainnet', deltaBlocks, initialLocktime: TIP + mainnet.marginBlocks + 10 * deltaBlocks });
    expect(codeOf(() => checkDuplexTerms(secp, mainnet, t(143), TIP))).toBe('LOCKTIME_INVALID');
    expect(codeOf(() => checkDuplexTerms(secp, mainnet, t(144), TIP))).toBe('NO_ERROR');
  });

  it('agrees with updatesLeft on the soonest L0', () => {
    for (let l0 = soonest - 10; l0 <= soonest + 10; l0++) {
      const t = terms({ initialLocktime: l0 });
      const ok = updatesLeft(t, 0, TIP, policy.marginBlocks) >= 1;
      expect(codeOf(() => checkDuplexTerms(secp, policy, t, TIP))).toBe(ok ? 'NO_ERROR' : 'LOCKTIME_INVALID');
    }
  });

  // Terms whose state 0 cannot be built (10000 sat at 100 sat/vB needs 18100 sat of fee) are
  // refused with a ProtocolError before anything is signed.
  it('refuses terms whose state 0 cannot pay its fee', () => {
    const t = terms({ contributionASat: 5_000n, contributionBSat: 5_000n, stateFeeRateSatPerVb: 100 });
    expect(() => buildStateTx(makeDuplexChannel(t, FUNDING), { index: 0, balanceASat: 5_000n, balanceBSat: 5_000n })).toThrow(RangeError);
    expect(codeOf(() => checkDuplexTerms(secp, policy, t, TIP))).toBe('CAPACITY_TOO_SMALL');
  });
});

describe('duplexPolicy', () => {
  it('has per-network defaults and takes overrides', () => {
    expect(duplexPolicy({ network: 'regtest' })).toMatchObject({ deltaBlocks: 6, marginBlocks: 3, plannedUpdates: 100 });
    expect(duplexPolicy({ network: 'mainnet' })).toMatchObject({ deltaBlocks: 144, marginBlocks: 12, plannedUpdates: 30 });
    expect(duplexPolicy({ network: 'mainnet', deltaBlocks: 200 }).deltaBlocks).toBe(200);
  });
  it.each([{ deltaBlocks: 0 }, { plannedUpdates: 0 }, { marginBlocks: -1 }, { maxLockBlocks: 1.5 }, { bumpAfterBlocks: Number.NaN }])('refuses %o', (o) => {
    expect(() => duplexPolicy({ network: 'regtest', ...o })).toThrow(RangeError);
  });
});

describe('nextState (A proposing)', () => {
  const ch = channel();
  const current: DuplexState = { index: 0, balanceASat: 600_000n, balanceBSat: 400_000n };
  const margin = policy.marginBlocks;
  const last = updatesLeft(ch, 0, TIP, margin); // 100: states 1..100

  it('pays both ways', () => {
    expect(nextState(ch, current, 'A', 150_000n, TIP, margin)).toEqual({ index: 1, balanceASat: 450_000n, balanceBSat: 550_000n });
    expect(nextState(ch, current, 'B', 150_000n, TIP, margin)).toEqual({ index: 1, balanceASat: 750_000n, balanceBSat: 250_000n });
  });
  it('lets a side pay out its whole balance (its output then goes away)', () => {
    const next = nextState(ch, current, 'B', 400_000n, TIP, margin);
    expect(next).toEqual({ index: 1, balanceASat: 1_000_000n, balanceBSat: 0n });
    expect(duplexOutputs(ch, next, 1).outputs).toHaveLength(1);
  });
  it.each([
    ['A', 600_001n],
    ['B', 400_001n],
    ['B', 10n ** 15n],
  ] as const)('%s paying %s → INSUFFICIENT_BALANCE', (payer, amount) => {
    expect(codeOf(() => nextState(ch, current, payer, amount, TIP, margin))).toBe('INSUFFICIENT_BALANCE');
  });
  it('refuses a non-positive amount as a caller bug (RangeError)', () => {
    expect(() => nextState(ch, current, 'A', 0n, TIP, margin)).toThrow(RangeError);
    expect(() => nextState(ch, current, 'B', -1n, TIP, margin)).toThrow(RangeError);
  });
  it('→ UPDATE_BUDGET_EXHAUSTED once the last state inside the margin is signed', () => {
    expect(last).toBe(100);
    const atLast = { ...current, index: last - 1 };
    expect(nextState(ch, atLast, 'A', 1n, TIP, margin).index).toBe(last);
    expect(stateLocktime(ch, last)).toBe(TIP + margin);
    expect(codeOf(() => nextState(ch, { ...current, index: last }, 'A', 1n, TIP, margin))).toBe('UPDATE_BUDGET_EXHAUSTED');
    expect(codeOf(() => nextState(ch, { ...current, index: last + 50 }, 'B', 1n, TIP, margin))).toBe('UPDATE_BUDGET_EXHAUSTED');
  });
  it('→ UPDATE_BUDGET_EXHAUSTED as the tip rises, even for state 1', () => {
    const tipLeavingOne = ch.initialLocktime - ch.deltaBlocks - margin; // state 1's locktime is tip + margin
    expect(nextState(ch, current, 'A', 1n, tipLeavingOne, margin).index).toBe(1);
    expect(codeOf(() => nextState(ch, current, 'A', 1n, tipLeavingOne + 1, margin))).toBe('UPDATE_BUDGET_EXHAUSTED');
    expect(codeOf(() => nextState(ch, current, 'A', 1n, ch.initialLocktime + 1000, margin))).toBe('UPDATE_BUDGET_EXHAUSTED');
  });
  it('checks the balance before the budget', () => {
    expect(codeOf(() => nextState(ch, { ...current, index: last }, 'A', 600_001n, TIP, margin))).toBe('INSUFFICIENT_BALANCE');
  });
});

describe('checkNextState', () => {
  const ch = channel();
  const margin = policy.marginBlocks;
  const current: DuplexState = { index: 3, balanceASat: 600_000n, balanceBSat: 400_000n };
  const ok: DuplexState = { index: 4, balanceASat: 590_000n, balanceBSat: 410_000n };
  const cases: [string, DuplexState, string][] = [
    ['the next state', ok, 'NO_ERROR'],
    ['the same balances again (a no-op update)', { ...current, index: 4 }, 'NO_ERROR'],
    ['the same index (a replay)', { ...ok, index: 3 }, 'STATE_INDEX_MISMATCH'],
    ['an index skipped (A never reuses the index of a state B refused)', { ...ok, index: 5 }, 'NO_ERROR'],
    ['an older index', { ...ok, index: 2 }, 'STATE_INDEX_MISMATCH'],
    ['index 0 again', { ...ok, index: 0 }, 'STATE_INDEX_MISMATCH'],
    ['balances 1 sat above the capacity', { ...ok, balanceBSat: 410_001n }, 'BALANCE_MISMATCH'],
    ['balances 1 sat below the capacity (money to the fee)', { ...ok, balanceASat: 589_999n }, 'BALANCE_MISMATCH'],
    ['a negative balance making up the sum', { index: 4, balanceASat: -1n, balanceBSat: 1_000_001n }, 'BALANCE_MISMATCH'],
    ['both balances 0', { index: 4, balanceASat: 0n, balanceBSat: 0n }, 'BALANCE_MISMATCH'],
  ];
  it.each(cases)('%s → %s', (_d, next, code) => {
    expect(codeOf(() => checkNextState(ch, current, next, TIP, margin))).toBe(code);
  });
  it('→ BALANCE_MISMATCH when both outputs would be dust', () => {
    const tiny = channel({ contributionASat: 300n, contributionBSat: 300n });
    expect(codeOf(() => checkNextState(tiny, { index: 0, balanceASat: 300n, balanceBSat: 300n }, { index: 1, balanceASat: 299n, balanceBSat: 301n }, TIP, margin))).toBe('BALANCE_MISMATCH');
  });
  it('checks the index first, then the balances, then the budget', () => {
    const late = ch.initialLocktime; // no update left
    expect(codeOf(() => checkNextState(ch, current, { index: 3, balanceASat: 0n, balanceBSat: 0n }, late, margin))).toBe('STATE_INDEX_MISMATCH');
    expect(codeOf(() => checkNextState(ch, current, { index: 4, balanceASat: 0n, balanceBSat: 0n }, late, margin))).toBe('BALANCE_MISMATCH');
    expect(codeOf(() => checkNextState(ch, current, ok, late, margin))).toBe('UPDATE_BUDGET_EXHAUSTED');
  });
});

describe('checkProposalForB (B countersigning what A proposed)', () => {
  const ch = channel();
  const margin = policy.marginBlocks;
  const current: DuplexState = { index: 4, balanceASat: 600_000n, balanceBSat: 400_000n };
  const bPays: DuplexState = { index: 5, balanceASat: 610_000n, balanceBSat: 390_000n };
  const aPays: DuplexState = { index: 5, balanceASat: 590_000n, balanceBSat: 410_000n };
  const cases: [string, DuplexState, bigint | null, string][] = [
    ['A pays B, nothing requested', aPays, null, 'NO_ERROR'],
    ["a state naming B's request in which A pays (B would report a pay-back that never happened)", aPays, 10_000n, 'BALANCE_MISMATCH'],
    ["B's balance unchanged", { ...current, index: 5 }, null, 'NO_ERROR'],
    ['B pays exactly what it asked', bPays, 10_000n, 'NO_ERROR'],
    ['B pays without asking', bPays, null, 'BALANCE_MISMATCH'],
    ['B pays 1 sat more than it asked', bPays, 9_999n, 'BALANCE_MISMATCH'],
    ['B pays 1 sat less than it asked', bPays, 10_001n, 'BALANCE_MISMATCH'],
    ['B pays everything, having asked for 1 sat', { index: 5, balanceASat: 1_000_000n, balanceBSat: 0n }, 1n, 'BALANCE_MISMATCH'],
    ['B pays what it asked but A does not get it (sum below capacity)', { index: 5, balanceASat: 600_000n, balanceBSat: 390_000n }, 10_000n, 'BALANCE_MISMATCH'],
    ['B pays what it asked in a replayed state', { ...bPays, index: 4 }, 10_000n, 'STATE_INDEX_MISMATCH'],
  ];
  it.each(cases)('%s → %s', (_d, proposed, requested, code) => {
    expect(codeOf(() => checkProposalForB(ch, current, proposed, requested, TIP, margin))).toBe(code);
  });
  it('→ UPDATE_BUDGET_EXHAUSTED for the exact request when no update is left', () => {
    expect(codeOf(() => checkProposalForB(ch, current, bPays, 10_000n, ch.initialLocktime, margin))).toBe('UPDATE_BUDGET_EXHAUSTED');
  });
});

describe('duplex-* wire messages', () => {
  const channelId = `${'cd'.repeat(32)}:1`;
  const tempId = 'ef'.repeat(16);
  const sig = new Uint8Array(64).map((_, i) => i + 1);
  const fundingTx = new Transaction();
  fundingTx.version = 2;
  fundingTx.addInput(fromHex('aa'.repeat(32)), 0, 0xfffffffd);
  fundingTx.addOutput(fromHex('0020' + '44'.repeat(32)), 1_000_000n);
  const valid: Message[] = [
    msg('duplex-open', {
      tempId,
      network: 'regtest',
      keyA: KEY_A,
      scriptA: SCRIPT_A,
      contributionASat: 600_000n,
      contributionBSat: 400_000n,
      initialLocktime: 1103,
      deltaBlocks: 6,
      stateFeeRateSatPerVb: 1,
      fundingFeeRateSatPerVb: 2,
      inputs: [{ txid: 'a3'.repeat(32), vout: 1, valueSat: 650_000n }],
      outputs: [{ script: SCRIPTS.p2wpkh, valueSat: 20_000n }],
    }),
    msg('duplex-accept', {
      tempId,
      keyB: KEY_B,
      scriptB: SCRIPT_B,
      minFundingConfirmations: 1,
      inputs: [
        { txid: 'a1'.repeat(32), vout: 0, valueSat: 300_000n },
        { txid: 'a2'.repeat(32), vout: 65_535, valueSat: 150_000n },
      ],
      outputs: [{ script: SCRIPTS.p2wpkh, valueSat: 49_000n }],
    }),
    msg('duplex-accept', { tempId, keyB: KEY_B, scriptB: SCRIPTS.p2pkh, minFundingConfirmations: 0, inputs: [], outputs: [] }),
    msg('duplex-fund', { tempId, fundingTx: fundingTx.toHex(), fundingVout: 0, signature: sig }),
    msg('duplex-funded', { tempId, signature: sig, witnesses: [{ index: 1, stack: [new Uint8Array(72).fill(0x30), KEY_B] }] }),
    msg('duplex-funded', { tempId, signature: sig, witnesses: [] }),
    msg('duplex-channel', { tempId, channelId }),
    msg('duplex-update', { channelId, index: 7, balanceASat: 590_000n, balanceBSat: 410_000n, signature: sig }),
    msg('duplex-update', { channelId, index: 1_000_000, balanceASat: 0n, balanceBSat: 2_100_000_000_000_000n, signature: sig, requestId: tempId }),
    msg('duplex-countersign', { channelId, index: 0, signature: sig }),
    msg('duplex-pay-request', { channelId, amountSat: 10_000n, requestId: tempId }),
    msg('duplex-close', { channelId, index: 7, feeRateSatPerVb: 10_000, signature: sig }),
    msg('duplex-closed', { channelId, closeTxid: '9f'.repeat(32), signature: sig }),
  ];

  it('covers every duplex-* message type', () => {
    expect(new Set(valid.map((m) => m.type))).toEqual(
      new Set(['duplex-open', 'duplex-accept', 'duplex-fund', 'duplex-funded', 'duplex-channel', 'duplex-update', 'duplex-countersign', 'duplex-pay-request', 'duplex-close', 'duplex-closed']),
    );
  });

  it.each(valid.map((m, i) => [`${m.type} #${i}`, m] as const))('%s round-trips exactly', (_d, m) => {
    const text = encodeMessage(m);
    const decoded = decodeMessage(text);
    expect(decoded).toEqual(m);
    expect(encodeMessage(decoded)).toBe(text);
    // And through a general-path spelling (a leading space bypasses any fast path).
    expect(decodeMessage(` ${text}`)).toEqual(m);
  });

  const byType = (type: Message['type']): Record<string, unknown> => JSON.parse(encodeMessage(valid.find((m) => m.type === type)!)) as Record<string, unknown>;
  const malformed: [string, Message['type'], (o: Record<string, unknown>) => void][] = [
    ['signature in uppercase hex', 'duplex-update', (o) => void (o.signature = (o.signature as string).toUpperCase())],
    ['signature of 63 bytes', 'duplex-countersign', (o) => void (o.signature = (o.signature as string).slice(2))],
    ['signature with a non-hex digit', 'duplex-close', (o) => void (o.signature = 'zz' + (o.signature as string).slice(2))],
    ['keyA of odd length', 'duplex-open', (o) => void (o.keyA = (o.keyA as string).slice(1))],
    ['scriptB not hex', 'duplex-accept', (o) => void (o.scriptB = '0014xyz')],
    ['scriptA above 42 bytes', 'duplex-open', (o) => void (o.scriptA = '00'.repeat(43))],
    ['fundingTx of odd length', 'duplex-fund', (o) => void (o.fundingTx = (o.fundingTx as string).slice(1))],
    ['a witness item above 100 bytes', 'duplex-funded', (o) => void (o.witnesses = [{ index: 0, stack: ['00'.repeat(101)] }])],
    ['unknown field in duplex-update', 'duplex-update', (o) => void (o.feeSat = '1')],
    ['unknown field in duplex-open', 'duplex-open', (o) => void (o.keyB = o.keyA)],
    ['duplex-open without A’s inputs', 'duplex-open', (o) => void delete o.inputs],
    ['unknown field in an open input', 'duplex-open', (o) => void ((o.inputs as Record<string, unknown>[])[0]!.script = '00')],
    ['five open outputs', 'duplex-open', (o) => void (o.outputs = Array.from({ length: 5 }, () => ({ script: '00', valueSat: '1' })))],
    ['unknown field in an accept input', 'duplex-accept', (o) => void ((o.inputs as Record<string, unknown>[])[0]!.script = '00')],
    ['unknown field in duplex-closed', 'duplex-closed', (o) => void (o.index = 1)],
    ['index negative', 'duplex-update', (o) => void (o.index = -1)],
    ['index negative (countersign)', 'duplex-countersign', (o) => void (o.index = -1)],
    ['index fractional', 'duplex-close', (o) => void (o.index = 1.5)],
    ['index above 1000000', 'duplex-update', (o) => void (o.index = 1_000_001)],
    ['index as a string', 'duplex-countersign', (o) => void (o.index = '1')],
    ['state fee rate 0', 'duplex-open', (o) => void (o.stateFeeRateSatPerVb = 0)],
    ['funding fee rate 0', 'duplex-open', (o) => void (o.fundingFeeRateSatPerVb = 0)],
    ['close fee rate 0', 'duplex-close', (o) => void (o.feeRateSatPerVb = 0)],
    ['close fee rate above 10000', 'duplex-close', (o) => void (o.feeRateSatPerVb = 10_001)],
    ['deltaBlocks 0', 'duplex-open', (o) => void (o.deltaBlocks = 0)],
    ['initialLocktime a time, not a height', 'duplex-open', (o) => void (o.initialLocktime = 500_000_000)],
    ['unknown network', 'duplex-open', (o) => void (o.network = 'bitcoin')],
    ['balance as a JSON number', 'duplex-update', (o) => void (o.balanceASat = 590000)],
    ['balance with a leading zero', 'duplex-update', (o) => void (o.balanceBSat = '0410000')],
    ['balance negative', 'duplex-update', (o) => void (o.balanceBSat = '-1')],
    ['amount above 21 million BTC', 'duplex-pay-request', (o) => void (o.amountSat = '2100000000000001')],
    ['requestId of 15 bytes', 'duplex-pay-request', (o) => void (o.requestId = 'ab'.repeat(15))],
    ['channelId without a vout', 'duplex-update', (o) => void (o.channelId = 'cd'.repeat(32))],
    ['five accept outputs', 'duplex-accept', (o) => void (o.outputs = Array.from({ length: 5 }, () => ({ script: '00', valueSat: '1' })))],
    ['a missing signature', 'duplex-update', (o) => void delete o.signature],
    ['a missing requestId', 'duplex-pay-request', (o) => void delete o.requestId],
  ];
  it.each(malformed)('%s (%s) → MALFORMED_MESSAGE', (_d, type, mutate) => {
    const o = byType(type);
    mutate(o);
    expect(codeOf(() => decodeMessage(JSON.stringify(o)))).toBe('MALFORMED_MESSAGE');
  });
});
