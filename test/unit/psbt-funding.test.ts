// The funding PSBT an external wallet funds, and the checks on what it gives back (src/wallet/psbt-funding.ts).
import { address as baddress, Psbt, Transaction } from 'bitcoinjs-lib';
import { describe, expect, it } from 'vitest';
import { equalBytes, fromHex, toHex } from '../../src/protocol/bytes.js';
import { fundingScriptOf } from '../../src/protocol/channel.js';
import { bitcoinjsNetwork } from '../../src/protocol/network.js';
import { bip21Uri, fundingPsbtOf, readFundingPsbt, unsignedFundingTxFromFunded, fundingTxFromSigned, PsbtFundingError, satToBtcDecimal, type PsbtFundingErrorCode } from '../../src/wallet/psbt-funding.js';
import { ExternalSigner } from '../helpers/external-signer.js';
import { terms } from '../helpers/protocol.js';

const network = bitcoinjsNetwork('regtest');
const lock = fundingScriptOf(terms('spilman-v1'));
const request = { network: 'regtest' as const, script: lock.fundingScript, witnessScript: lock.witnessScript, valueSat: 1_000_000n };
const signer = new ExternalSigner('paychan psbt unit test wallet');
const utxo = { txid: 'bb'.repeat(32), vout: 1, valueSat: 5_000_000n };

function refusal(fn: () => unknown): PsbtFundingErrorCode {
  try {
    fn();
  } catch (err) {
    if (err instanceof PsbtFundingError) return err.code;
    throw err;
  }
  throw new Error('not refused');
}

/** An output-only PSBT paying `valueSat` to `script` (a PSBT paychan did not make). */
function otherPsbt(script: Uint8Array, valueSat: bigint, extra?: { script: Uint8Array; valueSat: bigint }): string {
  const psbt = new Psbt({ network });
  psbt.addOutput({ script, value: valueSat });
  if (extra) psbt.addOutput({ script: extra.script, value: extra.valueSat });
  return psbt.toBase64();
}

describe('fundingPsbtOf', () => {
  it('has no input, one output paying the capacity to the channel P2WSH, with its witness script', () => {
    const f = fundingPsbtOf(request);
    const psbt = readFundingPsbt(f.psbt, 'regtest');
    expect(psbt.inputCount).toBe(0);
    expect(psbt.txOutputs).toHaveLength(1);
    expect(equalBytes(psbt.txOutputs[0]!.script, lock.fundingScript)).toBe(true);
    expect(psbt.txOutputs[0]!.value).toBe(1_000_000n);
    expect(toHex(psbt.data.outputs[0]!.witnessScript!)).toBe(toHex(lock.witnessScript));
    expect(psbt.version).toBe(2);
    expect(f.channelAddress).toBe(baddress.fromOutputScript(lock.fundingScript, network));
    expect(f.channelAddress.startsWith('bcrt1q')).toBe(true);
    expect(f.amountSat).toBe(1_000_000n);
    expect(f.bip21).toBe(`bitcoin:${f.channelAddress}?amount=0.01&label=paychan%20channel`);
  });

  it('is serialized as BIP174 says: the global map, no input map, one output map', () => {
    const bytes = Uint8Array.from(atob(fundingPsbtOf(request).psbt), (c) => c.charCodeAt(0));
    const tx = `02000000` + `00` + `01` + `40420f0000000000` + `22` + toHex(lock.fundingScript) + `00000000`;
    const ws = toHex(lock.witnessScript);
    // magic | key 00 (unsigned tx) | end of global map | key 01 (witness script) | end of output map
    const expected = `70736274ff` + `0100` + (tx.length / 2).toString(16) + tx + `00` + `0101` + (ws.length / 2).toString(16) + ws + `00`;
    expect(toHex(bytes)).toBe(expected);
  });

  it('writes BIP21 amounts in BTC without floating point', () => {
    expect(satToBtcDecimal(1n)).toBe('0.00000001');
    expect(satToBtcDecimal(100_000n)).toBe('0.001');
    expect(satToBtcDecimal(2_100_000_000_000_000n)).toBe('21000000');
    expect(satToBtcDecimal(123_456_789n)).toBe('1.23456789');
    expect(bip21Uri('bcrt1qx', 5000n, 'a b')).toBe('bitcoin:bcrt1qx?amount=0.00005&label=a%20b');
  });
});

describe('fundingTxFromSigned', () => {
  const f = fundingPsbtOf(request);

  it('takes a funded, signed, finalized PSBT in base64, hex or binary, and a raw tx in hex', () => {
    const signed = signer.fundAndSign(f.psbt, utxo, 500n);
    const expected = signed.extractTransaction(true).toHex();
    expect(fundingTxFromSigned(signed.toBase64(), request)).toBe(expected);
    expect(fundingTxFromSigned(`${signed.toHex()}\n`, request)).toBe(expected);
    expect(fundingTxFromSigned(signed.toBuffer(), request)).toBe(expected);
    expect(fundingTxFromSigned(new TextEncoder().encode(signed.toBase64()), request)).toBe(expected);
    expect(fundingTxFromSigned(expected, request)).toBe(expected);
    const tx = Transaction.fromHex(expected);
    expect(tx.ins).toHaveLength(1);
    expect(tx.outs.map((o) => o.value)).toEqual([1_000_000n, 5_000_000n - 1_000_000n - 500n]);
  });

  it('finalizes inputs the wallet signed but did not finalize', () => {
    const signed = signer.fundAndSign(f.psbt, utxo, 500n, { finalize: false });
    expect(signed.data.inputs[0]!.finalScriptWitness).toBeUndefined();
    const tx = Transaction.fromHex(fundingTxFromSigned(signed.toBase64(), request));
    expect(tx.ins[0]!.witness).toHaveLength(2);
  });

  it('refuses the PSBT as printed (no input), an unsigned one and an unsigned tx: PSBT_NOT_SIGNED', () => {
    expect(refusal(() => fundingTxFromSigned(f.psbt, request))).toBe('PSBT_NOT_SIGNED');
    const unsigned = signer.fundAndSign(f.psbt, utxo, 500n, { sign: false });
    expect(refusal(() => fundingTxFromSigned(unsigned.toBase64(), request))).toBe('PSBT_NOT_SIGNED');
    const tx = new Transaction();
    tx.addInput(fromHex(utxo.txid), 0);
    tx.addOutput(lock.fundingScript, 1_000_000n);
    expect(refusal(() => fundingTxFromSigned(tx.toHex(), request))).toBe('PSBT_NOT_SIGNED');
  });

  it('refuses a PSBT that does not pay the channel output, or pays it twice: PSBT_WRONG_OUTPUT', () => {
    const elsewhere = signer.fundAndSign(otherPsbt(signer.script, 1_000_000n), utxo, 500n);
    expect(refusal(() => fundingTxFromSigned(elsewhere.toBase64(), request))).toBe('PSBT_WRONG_OUTPUT');
    const twice = signer.fundAndSign(otherPsbt(lock.fundingScript, 1_000_000n, { script: lock.fundingScript, valueSat: 1_000_000n }), utxo, 500n);
    expect(refusal(() => fundingTxFromSigned(twice.toBase64(), request))).toBe('PSBT_WRONG_OUTPUT');
    // Another channel's output (another variant's script) is not this channel's.
    const v2 = fundingScriptOf(terms('spilman-v2')).fundingScript;
    const other = signer.fundAndSign(otherPsbt(v2, 1_000_000n), utxo, 500n);
    expect(() => fundingTxFromSigned(other.toBase64(), request)).toThrow(/no output pays the channel address bcrt1q/);
  });

  it('refuses a different amount to the channel output: PSBT_WRONG_AMOUNT', () => {
    const less = signer.fundAndSign(otherPsbt(lock.fundingScript, 999_999n), utxo, 500n);
    expect(refusal(() => fundingTxFromSigned(less.toBase64(), request))).toBe('PSBT_WRONG_AMOUNT');
    expect(() => fundingTxFromSigned(less.toBase64(), request)).toThrow(/pays 999999 sat, the channel's capacity is 1000000 sat/);
  });

  it('refuses garbage: PSBT_MALFORMED', () => {
    expect(refusal(() => fundingTxFromSigned('not a psbt', request))).toBe('PSBT_MALFORMED');
    expect(refusal(() => fundingTxFromSigned('abcd', request))).toBe('PSBT_MALFORMED');
    expect(refusal(() => fundingTxFromSigned(Uint8Array.of(0x70, 0x73, 0x62, 0x74, 0xff, 1, 2), request))).toBe('PSBT_MALFORMED');
  });
});

describe('unsignedFundingTxFromFunded (v1: the refund before the wallet signs)', () => {
  const f = fundingPsbtOf(request);

  it('gives the unsigned funding, whose txid signing does not change', () => {
    const funded = signer.fundAndSign(f.psbt, utxo, 500n, { sign: false });
    const unsigned = Transaction.fromHex(unsignedFundingTxFromFunded(funded.toBase64(), request));
    expect(unsigned.ins[0]!.witness).toHaveLength(0);
    funded.signAllInputs(signer.signer).finalizeAllInputs();
    expect(unsigned.getId()).toBe(funded.extractTransaction(true).getId());
  });

  it('refuses a signed PSBT, an unfunded one, a wrapped-segwit input, and a wrong output', () => {
    expect(refusal(() => unsignedFundingTxFromFunded(signer.fundAndSign(f.psbt, utxo, 500n).toBase64(), request))).toBe('PSBT_ALREADY_SIGNED');
    expect(refusal(() => unsignedFundingTxFromFunded(f.psbt, request))).toBe('PSBT_NOT_SIGNED');
    const wrapped = signer.fundAndSign(f.psbt, utxo, 500n, { sign: false });
    wrapped.updateInput(0, { redeemScript: signer.script });
    expect(refusal(() => unsignedFundingTxFromFunded(wrapped.toBase64(), request))).toBe('PSBT_NOT_SEGWIT');
    const less = signer.fundAndSign(otherPsbt(lock.fundingScript, 999_999n), utxo, 500n, { sign: false });
    expect(refusal(() => unsignedFundingTxFromFunded(less.toBase64(), request))).toBe('PSBT_WRONG_AMOUNT');
  });

  it('refuses an input whose spent script it cannot see to be a witness program: a legacy coin given as a whole transaction, or none given', () => {
    // A P2PKH coin, described only by its previous transaction (a legacy wallet's way): its
    // signature would go in the scriptSig and change the txid the refund is signed for.
    const p2pkh = baddress.toOutputScript('mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn', network);
    const previous = new Transaction();
    previous.version = 2;
    previous.addInput(new Uint8Array(32).fill(1), 0);
    previous.addOutput(p2pkh, 5_000_000n);
    const paying = (input: Parameters<Psbt['addInput']>[0]): string => new Psbt({ network }).addInput(input).addOutput({ script: lock.fundingScript, value: 1_000_000n }).toBase64();
    const legacy = paying({ hash: previous.getId(), index: 0, nonWitnessUtxo: previous.toBuffer() });
    expect(refusal(() => unsignedFundingTxFromFunded(legacy, request))).toBe('PSBT_NOT_SEGWIT');
    // The same input with nothing said of the coin it spends.
    const blind = paying({ hash: previous.getId(), index: 0 });
    expect(refusal(() => unsignedFundingTxFromFunded(blind, request))).toBe('PSBT_NOT_SEGWIT');
    // A native segwit coin given as a whole transaction is fine: signing adds only a witness.
    const segwitPrevious = new Transaction();
    segwitPrevious.version = 2;
    segwitPrevious.addInput(new Uint8Array(32).fill(2), 0);
    segwitPrevious.addOutput(signer.script, 5_000_000n);
    const segwit = paying({ hash: segwitPrevious.getId(), index: 0, nonWitnessUtxo: segwitPrevious.toBuffer() });
    expect(Transaction.fromHex(unsignedFundingTxFromFunded(segwit, request)).ins).toHaveLength(1);
  });
});
