// Coin selection: hand-computed vectors (test/fixtures/wallet-coin-selection.json), then
// properties over random wallets, and a check that real signatures fit the size estimate.
import { readFileSync } from 'node:fs';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { secp256k1 } from '../../src/crypto/index.js';
import { dustThresholdSat } from '../../src/protocol/dust.js';
import { type CandidateUtxo, type CoinSelection, isSpendable, selectCoins, type TxOutputSpec } from '../../src/wallet/coin-selection.js';
import { isWalletError, WalletError } from '../../src/wallet/errors.js';
import { WalletKeys } from '../../src/wallet/keys.js';
import { signP2wpkhTransaction } from '../../src/wallet/sign.js';
import { feeForVsize, p2wpkhSpendVsize } from '../../src/wallet/tx-size.js';

interface UtxoVector {
  txidByte: string;
  vout: number;
  valueSat: string;
  confirmations: number;
  coinbase: boolean;
  fromOwnTransaction: boolean;
}
interface CaseVector {
  description: string;
  utxos: UtxoVector[];
  outputs: { script: string; valueSat: string }[];
  feeRateSatPerVb: number;
}
interface Fixture {
  scripts: Record<string, string>;
  valid: (CaseVector & { expected: { algorithm: string; inputs: string[]; feeSat: string; vsize: number; changeSat: string | null } })[];
  invalid: (CaseVector & { error: { code: string; details: Record<string, string | number> } })[];
}

const fixture = JSON.parse(readFileSync(new URL('../fixtures/wallet-coin-selection.json', import.meta.url), 'utf8')) as Fixture;
const script = (name: string): Uint8Array => hexToBytes(fixture.scripts[name]!);
const CHANGE = script('change');

function request(v: CaseVector) {
  return {
    utxos: v.utxos.map((u) => ({
      outpoint: { txid: u.txidByte.repeat(32), vout: u.vout },
      valueSat: BigInt(u.valueSat),
      confirmations: u.confirmations,
      coinbase: u.coinbase,
      fromOwnTransaction: u.fromOwnTransaction,
    })),
    outputs: v.outputs.map((o) => ({ script: script(o.script), valueSat: BigInt(o.valueSat) })),
    feeRateSatPerVb: v.feeRateSatPerVb,
    changeScript: CHANGE,
  };
}

/** JSON-comparable details: bigints as decimal strings. */
function plain(details: object): Record<string, string | number> {
  return Object.fromEntries(Object.entries(details).map(([k, v]) => [k, typeof v === 'bigint' ? v.toString() : (v as string | number)]));
}

describe('coin selection vectors', () => {
  for (const v of fixture.valid) {
    it(v.description, () => {
      const req = request(v);
      const selection = selectCoins(req);
      expect(selection.algorithm).toBe(v.expected.algorithm);
      expect(selection.inputs.map((u) => `${u.outpoint.txid.slice(0, 2)}:${u.outpoint.vout}`)).toEqual(v.expected.inputs);
      expect(selection.feeSat.toString()).toBe(v.expected.feeSat);
      expect(selection.vsize).toBe(v.expected.vsize);
      expect(selection.change.type === 'change' ? selection.change.valueSat.toString() : null).toBe(v.expected.changeSat);
      checkInvariants(req, selection);
    });
  }

  for (const v of fixture.invalid) {
    it(`rejects: ${v.description}`, () => {
      let caught: unknown;
      try {
        selectCoins(request(v));
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(WalletError);
      const err = caught as WalletError;
      expect(err.code).toBe(v.error.code);
      expect(plain(err.details)).toEqual(v.error.details);
    });
  }
});

describe('isSpendable', () => {
  const base: CandidateUtxo = { outpoint: { txid: '00'.repeat(32), vout: 0 }, valueSat: 1000n, confirmations: 1, coinbase: false, fromOwnTransaction: false };
  it('follows the confirmation rules', () => {
    expect(isSpendable(base)).toBe(true);
    expect(isSpendable({ ...base, confirmations: 0 })).toBe(false);
    expect(isSpendable({ ...base, confirmations: 0, fromOwnTransaction: true })).toBe(true);
    expect(isSpendable({ ...base, coinbase: true, confirmations: 99 })).toBe(false);
    expect(isSpendable({ ...base, coinbase: true, confirmations: 100 })).toBe(true);
  });
});

/** The invariants every selection keeps, whatever the algorithm. */
function checkInvariants(req: ReturnType<typeof request> | PropertyRequest, selection: CoinSelection): void {
  const inputSum = selection.inputs.reduce((s, u) => s + u.valueSat, 0n);
  const outputSum = selection.outputs.reduce((s, o) => s + o.valueSat, 0n);
  // inputs = outputs + fee, exactly
  expect(inputSum).toBe(outputSum + selection.feeSat);
  // the size is the exact worst-case size, and the fee pays at least the rate on it
  expect(selection.vsize).toBe(p2wpkhSpendVsize(selection.inputs.length, selection.outputs.map((o) => o.script)));
  expect(Number(selection.feeSat)).toBeGreaterThanOrEqual(req.feeRateSatPerVb * selection.vsize);
  // the requested outputs come first, unchanged
  req.outputs.forEach((o, i) => {
    expect(bytesToHex(selection.outputs[i]!.script)).toBe(bytesToHex(o.script));
    expect(selection.outputs[i]!.valueSat).toBe(o.valueSat);
  });
  // inputs: spendable coins of the pool, each once
  const keys = selection.inputs.map((u) => `${u.outpoint.txid}:${u.outpoint.vout}`);
  expect(new Set(keys).size).toBe(keys.length);
  for (const u of selection.inputs) {
    expect(isSpendable(u)).toBe(true);
    expect(req.utxos).toContain(u);
  }
  const dust = dustThresholdSat(req.changeScript);
  if (selection.change.type === 'change') {
    // change is never dust, and is the last output
    expect(selection.change.valueSat).toBeGreaterThanOrEqual(dust);
    expect(selection.change.vout).toBe(req.outputs.length);
    expect(selection.outputs.length).toBe(req.outputs.length + 1);
  } else {
    // no change only when a change output could not have been ≥ dust
    expect(selection.outputs.length).toBe(req.outputs.length);
    const withChange = p2wpkhSpendVsize(selection.inputs.length, [...selection.outputs.map((o) => o.script), req.changeScript]);
    expect(inputSum - outputSum - feeForVsize(req.feeRateSatPerVb, withChange)).toBeLessThan(dust);
  }
}

interface PropertyRequest {
  utxos: CandidateUtxo[];
  outputs: TxOutputSpec[];
  feeRateSatPerVb: number;
  changeScript: Uint8Array;
}

const utxoArb = fc.record({
  txid: fc.uint8Array({ minLength: 32, maxLength: 32 }).map(bytesToHex),
  vout: fc.nat({ max: 5 }),
  valueSat: fc.oneof(fc.bigInt({ min: 1n, max: 2_000n }), fc.bigInt({ min: 1n, max: 100_000n }), fc.bigInt({ min: 1n, max: 5_000_000_000n })),
  confirmations: fc.oneof(fc.constant(0), fc.nat({ max: 200 })),
  coinbase: fc.boolean(),
  fromOwnTransaction: fc.boolean(),
}).map(({ txid, vout, ...rest }): CandidateUtxo => ({ outpoint: { txid, vout }, ...rest, fromOwnTransaction: rest.fromOwnTransaction && !rest.coinbase }));

const outputArb = fc.oneof(
  fc.bigInt({ min: 330n, max: 200_000_000n }).map((valueSat) => ({ script: script('p2wsh'), valueSat })),
  fc.bigInt({ min: 294n, max: 1_000_000n }).map((valueSat) => ({ script: script('p2wpkh'), valueSat })),
);

const requestArb: fc.Arbitrary<PropertyRequest> = fc.record({
  utxos: fc.uniqueArray(utxoArb, { maxLength: 30, selector: (u) => `${u.outpoint.txid}:${u.outpoint.vout}` }),
  outputs: fc.array(outputArb, { minLength: 1, maxLength: 3 }),
  feeRateSatPerVb: fc.oneof(fc.double({ min: 0.1, max: 500, noNaN: true }), fc.integer({ min: 1, max: 200 })),
  changeScript: fc.constant(CHANGE),
});

describe('coin selection properties', () => {
  it('balances exactly, pays at least the rate, never makes dust change; or says exactly what is missing', () => {
    fc.assert(
      fc.property(requestArb, (req) => {
        let selection: CoinSelection;
        try {
          selection = selectCoins(req);
        } catch (err) {
          if (!isWalletError(err, 'INSUFFICIENT_FUNDS')) throw err;
          const { missingSat, availableSat } = err.details;
          expect(missingSat).toBeGreaterThan(0n);
          expect(availableSat).toBe(req.utxos.filter(isSpendable).reduce((s, u) => s + u.valueSat, 0n));
          // One more confirmed coin of exactly `missingSat` is enough.
          const extra: CandidateUtxo = { outpoint: { txid: 'ff'.repeat(32), vout: 9 }, valueSat: missingSat, confirmations: 1, coinbase: false, fromOwnTransaction: false };
          const funded = { ...req, utxos: [...req.utxos, extra] };
          checkInvariants(funded, selectCoins(funded));
          return;
        }
        checkInvariants(req, selection);
      }),
      { numRuns: 2000 },
    );
  });

  it('is deterministic and ignores the order of the coins', () => {
    fc.assert(
      fc.property(requestArb, fc.nat(), (req, seed) => {
        const shuffled = [...req.utxos].sort((a, b) => ((a.valueSat + BigInt(seed)) % 7n > (b.valueSat + BigInt(seed)) % 7n ? 1 : -1));
        const run = (utxos: CandidateUtxo[]) => {
          try {
            const s = selectCoins({ ...req, utxos });
            return { inputs: s.inputs.map((u) => `${u.outpoint.txid}:${u.outpoint.vout}`), fee: s.feeSat };
          } catch (err) {
            return { code: (err as WalletError).code };
          }
        };
        expect(run(shuffled)).toEqual(run(req.utxos));
      }),
      { numRuns: 300 },
    );
  });
});

describe('signed transactions fit the estimate', () => {
  const keys = WalletKeys.fromSeed(new Uint8Array(32).fill(7), 'regtest');
  const secp = secp256k1();

  it('real vsize ≤ estimate, and the real fee rate ≥ the requested one', () => {
    fc.assert(
      fc.property(
        fc.array(fc.bigInt({ min: 10_000n, max: 1_000_000n }), { minLength: 1, maxLength: 12 }),
        fc.array(outputArb, { minLength: 1, maxLength: 3 }),
        fc.double({ min: 0.5, max: 100, noNaN: true }),
        (values, outputs, feeRateSatPerVb) => {
          const utxos = values.map((valueSat, i): CandidateUtxo => ({ outpoint: { txid: (i + 16).toString(16).repeat(32), vout: i }, valueSat, confirmations: 3, coinbase: false, fromOwnTransaction: false }));
          let selection: CoinSelection;
          try {
            selection = selectCoins({ utxos, outputs, feeRateSatPerVb, changeScript: keys.address('change', 0).script });
          } catch (err) {
            if (isWalletError(err, 'INSUFFICIENT_FUNDS')) return;
            throw err;
          }
          const inputs = selection.inputs.map((u) => ({ outpoint: u.outpoint, valueSat: u.valueSat, key: keys.addressKey('receive', u.outpoint.vout) }));
          const tx = signP2wpkhTransaction({ inputs, outputs: selection.outputs, locktime: 100 }, secp);
          expect(tx.virtualSize()).toBeLessThanOrEqual(selection.vsize);
          // each signature is 0–2 bytes shorter than the worst case: at most half a vbyte per input
          expect(tx.virtualSize()).toBeGreaterThanOrEqual(selection.vsize - Math.ceil(selection.inputs.length / 2));
          expect(Number(selection.feeSat) / tx.virtualSize()).toBeGreaterThanOrEqual(feeRateSatPerVb);
        },
      ),
      { numRuns: 60 },
    );
  });
});
