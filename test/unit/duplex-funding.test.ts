/**
 * The joint funding transaction of a duplex channel: each side finds its own inputs and outputs
 * in it exactly, the channel output pays the capacity, nothing carries a scriptSig.
 */
import { describe, expect, it } from 'vitest';
import { buildDuplexFundingTx, checkDuplexFundingTx, isWitnessOutputScript } from '../../src/protocol/duplex-funding.js';
import { codeOf } from '../helpers/protocol.js';

const fundingScript = Uint8Array.of(0x00, 0x20, ...new Uint8Array(32).fill(7));
const scriptA = Uint8Array.of(0x00, 0x14, ...new Uint8Array(20).fill(1));
const scriptB = Uint8Array.of(0x00, 0x14, ...new Uint8Array(20).fill(2));
const inA = { txid: 'aa'.repeat(32), vout: 0, valueSat: 700_000n };
const inB = { txid: 'bb'.repeat(32), vout: 3, valueSat: 500_000n };
const outA = { script: scriptA, valueSat: 99_000n };
const outB = { script: scriptB, valueSat: 99_500n };
const tx = buildDuplexFundingTx(fundingScript, 1_000_000n, [inA, inB], [outA, outB]);
const asB = { fundingScript, capacitySat: 1_000_000n, ownInputs: [inB], ownOutputs: [outB] };

describe('duplex funding transaction', () => {
  it('puts the channel first, inputs A then B, and each side finds its own', () => {
    expect(tx.outs[0]!.value).toBe(1_000_000n);
    const checked = checkDuplexFundingTx(tx.toHex(), 0, asB);
    expect(checked.txid).toBe(tx.getId());
    expect(checked.otherInputs).toEqual([{ txid: inA.txid, vout: 0 }]);
    expect(checkDuplexFundingTx(tx.toHex(), 0, { fundingScript, capacitySat: 1_000_000n, ownInputs: [inA], ownOutputs: [outA] }).otherInputs).toEqual([{ txid: inB.txid, vout: 3 }]);
  });

  it('refuses a funding without one of our inputs or outputs, or with the wrong channel output', () => {
    const noInput = buildDuplexFundingTx(fundingScript, 1_000_000n, [inA], [outA, outB]);
    expect(codeOf(() => checkDuplexFundingTx(noInput.toHex(), 0, asB))).toBe('FUNDING_MISMATCH');
    const lessChange = buildDuplexFundingTx(fundingScript, 1_000_000n, [inA, inB], [outA, { ...outB, valueSat: 99_499n }]);
    expect(codeOf(() => checkDuplexFundingTx(lessChange.toHex(), 0, asB))).toBe('FUNDING_MISMATCH');
    const smaller = buildDuplexFundingTx(fundingScript, 999_999n, [inA, inB], [outA, outB]);
    expect(codeOf(() => checkDuplexFundingTx(smaller.toHex(), 0, asB))).toBe('FUNDING_MISMATCH');
    expect(codeOf(() => checkDuplexFundingTx(tx.toHex(), 1, asB))).toBe('FUNDING_MISMATCH');
    const twice = buildDuplexFundingTx(fundingScript, 1_000_000n, [inA, inB, inB], [outA, outB]);
    expect(codeOf(() => checkDuplexFundingTx(twice.toHex(), 0, asB))).toBe('FUNDING_MALFORMED');
    expect(codeOf(() => checkDuplexFundingTx('00', 0, asB))).toBe('FUNDING_MALFORMED');
  });

  it('refuses a funding with a locktime (it could hold the other side\'s coins in a transaction not yet valid)', () => {
    const later = tx.clone();
    later.locktime = 900_000;
    expect(codeOf(() => checkDuplexFundingTx(later.toHex(), 0, asB))).toBe('FUNDING_MISMATCH');
  });

  it('refuses an input with a scriptSig (its txid could change under state 0)', () => {
    const legacy = tx.clone();
    legacy.ins[0]!.script = Uint8Array.of(0x51);
    expect(codeOf(() => checkDuplexFundingTx(legacy.toHex(), 0, asB))).toBe('FUNDING_NOT_SEGWIT');
  });

  it('knows which previous outputs are witness programs', () => {
    expect(isWitnessOutputScript(`0014${'11'.repeat(20)}`)).toBe(true);
    expect(isWitnessOutputScript(`0020${'11'.repeat(32)}`)).toBe(true);
    expect(isWitnessOutputScript(`5120${'11'.repeat(32)}`)).toBe(true);
    expect(isWitnessOutputScript(`76a914${'11'.repeat(20)}88ac`)).toBe(false);
    expect(isWitnessOutputScript(`a914${'11'.repeat(20)}87`)).toBe(false); // P2SH could wrap anything
  });
});
