import fc from 'fast-check';
import { Transaction } from 'bitcoinjs-lib';
import { describe, expect, it } from 'vitest';
import { loadNativeSecp256k1, wasmSecp256k1 } from '../../src/crypto/index.js';
import { fromHex, toHex } from '../../src/protocol/bytes.js';
import {
  Bip143PaymentSighasher,
  SIGHASH_ALL,
  SIGHASH_NONE,
  SIGHASH_NONE_ACP,
  SIGHASH_SINGLE,
  SIGHASH_SINGLE_ACP,
  bip143Sighash,
} from '../../src/protocol/sighash.js';
import { encodeSignature, sighashView } from '../../src/protocol/transactions.js';
import vectors from '../fixtures/bip143.json' with { type: 'json' };

const implementations = [loadNativeSecp256k1(), wasmSecp256k1];

describe('BIP143 official vectors', () => {
  for (const v of vectors.valid) {
    for (const s of v.signatures) {
      it(`${v.description}: hashType 0x${s.hashType.toString(16)}`, () => {
        const tx = sighashView(Transaction.fromHex(v.unsignedTx));
        const digest = bip143Sighash(tx, v.inputIndex, fromHex(v.witnessScript), BigInt(v.valueSat), s.hashType);
        expect(toHex(digest)).toBe(s.sighash);
        for (const secp of implementations) {
          // RFC 6979 signing reproduces the BIP's signatures byte for byte, on both backends.
          expect(toHex(secp.publicKeyCreate(fromHex(s.privateKey)))).toBe(s.publicKey);
          const sig = secp.ecdsaSign(digest, fromHex(s.privateKey));
          expect(toHex(encodeSignature(sig, s.hashType))).toBe(s.der);
          expect(secp.ecdsaVerify(sig, digest, fromHex(s.publicKey))).toBe(true);
        }
      });
    }
  }
});

const arbOutput = fc.record({
  script: fc.uint8Array({ minLength: 0, maxLength: 40 }),
  valueSat: fc.bigInt({ min: 0n, max: 2_100_000_000_000_000n }),
});
const arbTx = fc.record({
  version: fc.constantFrom(1, 2),
  locktime: fc.nat({ max: 0xffffffff }),
  inputs: fc.array(fc.record({ txid: fc.uint8Array({ minLength: 32, maxLength: 32 }).map(toHex), vout: fc.nat({ max: 10 }), sequence: fc.nat({ max: 0xffffffff }) }), { minLength: 1, maxLength: 3 }),
  outputs: fc.array(arbOutput, { minLength: 1, maxLength: 3 }),
});

describe('bip143Sighash agrees with bitcoinjs-lib', () => {
  it('for every sighash type on random transactions', () => {
    fc.assert(
      fc.property(arbTx, fc.constantFrom(SIGHASH_ALL, SIGHASH_NONE, SIGHASH_SINGLE, 0x81, SIGHASH_NONE_ACP, SIGHASH_SINGLE_ACP), fc.uint8Array({ minLength: 1, maxLength: 80 }), fc.bigInt({ min: 0n, max: 10n ** 15n }), (t, hashType, script, value) => {
        const tx = new Transaction();
        tx.version = t.version;
        tx.locktime = t.locktime;
        for (const i of t.inputs) tx.addInput(fromHex(i.txid).reverse(), i.vout, i.sequence);
        for (const o of t.outputs) tx.addOutput(o.script, o.valueSat);
        const index = 0;
        expect(toHex(bip143Sighash(t, index, script, value, hashType))).toBe(toHex(tx.hashForWitnessV0(index, script, value, hashType)));
      }),
      { numRuns: 300 },
    );
  });
});

describe('Bip143PaymentSighasher (midstate)', () => {
  it('equals the plain BIP143 sighash for SINGLE|ACP and NONE|ACP', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.nat({ max: 5 }), fc.uint8Array({ minLength: 1, maxLength: 120 }), arbOutput, (txidBytes, vout, witnessScript, output) => {
        const txid = toHex(txidBytes);
        const valueSat = 1_000_000n;
        const sighasher = new Bip143PaymentSighasher({ txid, vout, valueSat, witnessScript }, 2, 0xfffffffd, 0);
        const tx = { version: 2, locktime: 0, inputs: [{ txid, vout, sequence: 0xfffffffd }], outputs: [output, { script: Uint8Array.of(0x51), valueSat: 5n }] };
        const expected = toHex(bip143Sighash(tx, 0, witnessScript, valueSat, SIGHASH_SINGLE_ACP));
        expect(toHex(sighasher.singleAcp(output))).toBe(expected);
        // Reused for another value of the same output (the per-payment case).
        const next = { script: output.script, valueSat: output.valueSat / 2n };
        expect(toHex(sighasher.singleAcp(next))).toBe(toHex(bip143Sighash({ ...tx, outputs: [next, tx.outputs[1]!] }, 0, witnessScript, valueSat, SIGHASH_SINGLE_ACP)));
        expect(toHex(sighasher.noneAcp())).toBe(toHex(bip143Sighash(tx, 0, witnessScript, valueSat, SIGHASH_NONE_ACP)));
      }),
      { numRuns: 200 },
    );
  });
});

describe('SIGHASH_SINGLE without a matching output', () => {
  it('refuses to produce the "one" hash', () => {
    const tx = { version: 2, locktime: 0, inputs: [{ txid: '00'.repeat(32), vout: 0, sequence: 0 }], outputs: [] };
    expect(() => bip143Sighash(tx, 0, Uint8Array.of(0x51), 1n, SIGHASH_SINGLE)).toThrow(RangeError);
  });
});
