/**
 * Frozen vectors for the duplex builders (test/fixtures/duplex.json, made by
 * test/fixtures/make-duplex-vectors.ts), plus independent checks of what the vectors claim: the
 * scripts equal bitcoinjs-lib's P2MS/P2WSH, every sighash equals bitcoinjs-lib's
 * hashForWitnessV0 on the transaction as finally built, every signature is RFC 6979 on both
 * secp256k1 backends and verifies on both, and the worst-case vsize bounds the real one. The
 * channel is rebuilt from the fixture's own inputs (private keys, scripts, terms, funding tx).
 */
import { Transaction, payments, script as bscript } from 'bitcoinjs-lib';
import { describe, expect, it } from 'vitest';
import { loadNativeSecp256k1, wasmSecp256k1 } from '../../src/crypto/index.js';
import { fromHex, toHex } from '../../src/protocol/bytes.js';
import { dustThresholdSat, outputSize } from '../../src/protocol/dust.js';
import {
  DUPLEX_CLOSE_HASHTYPE,
  DUPLEX_STATE_HASHTYPE,
  buildCooperativeCloseTx,
  buildStateTx,
  closeSighash,
  completeDuplexSpend,
  duplexOutputs,
  duplexSighash,
  duplexSpendVsize,
  makeDuplexChannel,
  signedCloseTx,
  signedStateTx,
  stateLocktime,
  stateSighash,
  type DuplexChannel,
} from '../../src/protocol/duplex-tx.js';
import { SIGHASH_ALL, SIGHASH_ANYONECANPAY } from '../../src/protocol/sighash.js';
import { MAX_SIGNATURE_BYTES, SEQUENCE_LOCKTIME_RBF, feeForVsize } from '../../src/protocol/transactions.js';
import vectors from '../fixtures/duplex.json' with { type: 'json' };

const backends = [loadNativeSecp256k1(), wasmSecp256k1];
const secp = backends[0]!;
const v = vectors.channel;
const PRIVATE_KEY_A = fromHex(v.privateKeyA);
const PRIVATE_KEY_B = fromHex(v.privateKeyB);
const KEY_A = secp.publicKeyCreate(PRIVATE_KEY_A);
const KEY_B = secp.publicKeyCreate(PRIVATE_KEY_B);
const funding = Transaction.fromHex(v.fundingTxHex);

const channel: DuplexChannel = makeDuplexChannel(
  {
    network: v.network as DuplexChannel['network'],
    keyA: KEY_A,
    keyB: KEY_B,
    scriptA: fromHex(v.scriptA),
    scriptB: fromHex(v.scriptB),
    contributionASat: BigInt(v.contributionASat),
    contributionBSat: BigInt(v.contributionBSat),
    initialLocktime: v.initialLocktime,
    deltaBlocks: v.deltaBlocks,
    stateFeeRateSatPerVb: v.stateFeeRateSatPerVb,
  },
  { txid: funding.getId(), vout: v.fundingVout },
);

/** The witness of a spend of the funding output: [empty, DER sig A, DER sig B, witness script]. */
function witnessSignatures(tx: Transaction, hashType: number): { sigA: Uint8Array; sigB: Uint8Array } {
  const witness = tx.ins[0]!.witness;
  expect(witness).toHaveLength(4);
  expect(witness[0]).toHaveLength(0); // CHECKMULTISIG's extra pop
  expect(toHex(witness[3]!)).toBe(vectors.witnessScript);
  const a = bscript.signature.decode(witness[1]!);
  const b = bscript.signature.decode(witness[2]!);
  expect(a.hashType).toBe(hashType);
  expect(b.hashType).toBe(hashType);
  return { sigA: Uint8Array.from(a.signature), sigB: Uint8Array.from(b.signature) };
}

/** The same transaction with both signatures replaced by 72-byte (maximal) placeholders. */
function withMaxSignatures(tx: Transaction): Transaction {
  const sized = tx.clone();
  sized.setWitness(0, [new Uint8Array(0), new Uint8Array(MAX_SIGNATURE_BYTES), new Uint8Array(MAX_SIGNATURE_BYTES), channel.witnessScript]);
  return sized;
}

/**
 * Independent checks of a fully signed spend: bitcoinjs-lib's BIP143 sighash equals `sighash`,
 * both backends sign it byte for byte as frozen and verify both signatures, the witness holds
 * them in key order, and duplexSpendVsize bounds (and with 72-byte signatures equals, less any
 * dropped output) the real vsize.
 */
function checkSigned(signed: Transaction, hashType: number, sighash: string, signatureA: string, signatureB: string): void {
  const independent = signed.hashForWitnessV0(0, channel.witnessScript, channel.capacitySat, hashType);
  expect(toHex(independent)).toBe(sighash);
  // The unsigned transaction commits to the same sighash (the witness is not signed).
  const bare = signed.clone();
  bare.setWitness(0, []);
  expect(toHex(bare.hashForWitnessV0(0, channel.witnessScript, channel.capacitySat, hashType))).toBe(sighash);
  for (const backend of backends) {
    expect(toHex(backend.ecdsaSign(independent, PRIVATE_KEY_A))).toBe(signatureA);
    expect(toHex(backend.ecdsaSign(independent, PRIVATE_KEY_B))).toBe(signatureB);
    expect(backend.ecdsaVerify(fromHex(signatureA), independent, KEY_A)).toBe(true);
    expect(backend.ecdsaVerify(fromHex(signatureB), independent, KEY_B)).toBe(true);
    // Each signature is bound to its own key: swapped, neither verifies (CHECKMULTISIG's order).
    expect(backend.ecdsaVerify(fromHex(signatureA), independent, KEY_B)).toBe(false);
    expect(backend.ecdsaVerify(fromHex(signatureB), independent, KEY_A)).toBe(false);
  }
  const { sigA, sigB } = witnessSignatures(signed, hashType);
  expect(toHex(sigA)).toBe(signatureA);
  expect(toHex(sigB)).toBe(signatureB);

  const bound = duplexSpendVsize(channel);
  expect(bound).toBe(vectors.spendVsize);
  expect(bound).toBeGreaterThanOrEqual(signed.virtualSize());
  const dropped = [channel.scriptA, channel.scriptB].filter((s) => !signed.outs.some((o) => toHex(o.script) === toHex(s)));
  expect(withMaxSignatures(signed).virtualSize()).toBe(bound - dropped.reduce((n, s) => n + outputSize(s), 0));
}

function outputsOf(tx: Transaction): { script: string; valueSat: string }[] {
  return tx.outs.map((o) => ({ script: toHex(o.script), valueSat: o.value.toString() }));
}

describe('duplex channel', () => {
  it('derives the keys from the fixed private keys', () => {
    expect(toHex(KEY_A)).toBe(v.keyA);
    expect(toHex(KEY_B)).toBe(v.keyB);
    expect(toHex(wasmSecp256k1.publicKeyCreate(PRIVATE_KEY_A))).toBe(v.keyA);
    expect(toHex(wasmSecp256k1.publicKeyCreate(PRIVATE_KEY_B))).toBe(v.keyB);
  });

  it('builds the 2-of-2 witness script (A first) and its P2WSH output', () => {
    expect(toHex(channel.witnessScript)).toBe(vectors.witnessScript);
    expect(toHex(channel.fundingScript)).toBe(vectors.fundingScript);
    // OP_2 <KA> <KB> OP_2 OP_CHECKMULTISIG, in the opener-first order (not sorted).
    expect(toHex(payments.p2ms({ m: 2, pubkeys: [KEY_A, KEY_B] }).output!)).toBe(vectors.witnessScript);
    expect(toHex(payments.p2wsh({ redeem: { output: channel.witnessScript } }).output!)).toBe(vectors.fundingScript);
  });

  it('spends the funding outpoint, which pays the capacity to the P2WSH script', () => {
    expect(channel.funding).toEqual({ txid: v.fundingTxid, vout: v.fundingVout });
    expect(channel.id).toBe(`${v.fundingTxid}:${v.fundingVout}`);
    expect(channel.capacitySat).toBe(BigInt(v.contributionASat) + BigInt(v.contributionBSat));
    const out = funding.outs[v.fundingVout]!;
    expect(toHex(out.script)).toBe(vectors.fundingScript);
    expect(out.value).toBe(channel.capacitySat);
  });

  it('sizes a two-output spend as 181 vB with 72-byte signatures', () => {
    // 10.5 vB overhead + 41 input + 31 (P2WPKH) + 43 (P2TR) outputs + ¼ of a 219-byte witness.
    expect(duplexSpendVsize(channel)).toBe(181);
    expect(vectors.spendVsize).toBe(181);
  });
});

describe.each(vectors.states)('state $index: $description', (s) => {
  const state = { index: s.index, balanceASat: BigInt(s.balanceASat), balanceBSat: BigInt(s.balanceBSat) };

  it('has nLockTime L0 − i·Δ', () => {
    expect(s.locktime).toBe(v.initialLocktime - s.index * v.deltaBlocks);
    expect(stateLocktime(channel, s.index)).toBe(s.locktime);
  });

  it('builds the unsigned state transaction', () => {
    const tx = buildStateTx(channel, state);
    expect(tx.toHex()).toBe(s.unsignedTxHex);
    expect(tx.version).toBe(2);
    expect(tx.locktime).toBe(s.locktime);
    expect(tx.ins).toHaveLength(1);
    expect(toHex(Uint8Array.from(tx.ins[0]!.hash).reverse())).toBe(v.fundingTxid);
    expect(tx.ins[0]!.index).toBe(v.fundingVout);
    expect(tx.ins[0]!.sequence).toBe(SEQUENCE_LOCKTIME_RBF);
    expect(outputsOf(tx)).toEqual(s.outputs);
  });

  it('splits the fee: A ceil(fee/2), B floor(fee/2); a dust output is dropped into the fee, the other pays the rest', () => {
    const o = duplexOutputs(channel, state, channel.stateFeeRateSatPerVb);
    expect(o.valueASat.toString()).toBe(s.valueASat);
    expect(o.valueBSat.toString()).toBe(s.valueBSat);
    expect(o.feeSat.toString()).toBe(s.feeSat);
    const outputs = s.outputs.reduce((sum, out) => sum + BigInt(out.valueSat), 0n);
    expect(outputs + BigInt(s.feeSat)).toBe(channel.capacitySat);
    const fee = feeForVsize(vectors.spendVsize, v.stateFeeRateSatPerVb);
    const keepA = state.balanceASat - (fee + 1n) / 2n >= dustThresholdSat(channel.scriptA);
    const keepB = state.balanceBSat - fee / 2n >= dustThresholdSat(channel.scriptB);
    // Both kept: each pays its half. One dropped: its whole balance is fee, the kept side pays at least the rest.
    if (keepA && keepB) expect(o.valueASat + o.valueBSat).toBe(channel.capacitySat - fee);
    else expect(o.feeSat).toBeGreaterThanOrEqual(fee);
    expect(o.valueASat === 0n).toBe(!keepA);
    expect(o.valueBSat === 0n).toBe(!keepB);
    // A's output first, then B's; absent outputs are not written at all.
    const expected = [...(o.valueASat > 0n ? [{ script: v.scriptA, valueSat: s.valueASat }] : []), ...(o.valueBSat > 0n ? [{ script: v.scriptB, valueSat: s.valueBSat }] : [])];
    expect(s.outputs).toEqual(expected);
  });

  it('signs SIGHASH_ALL|ANYONECANPAY with both keys', () => {
    expect(DUPLEX_STATE_HASHTYPE).toBe(SIGHASH_ALL | SIGHASH_ANYONECANPAY);
    const sighash = stateSighash(channel, state);
    expect(toHex(sighash)).toBe(s.sighash);
    expect(toHex(Transaction.fromHex(s.unsignedTxHex).hashForWitnessV0(0, channel.witnessScript, channel.capacitySat, DUPLEX_STATE_HASHTYPE))).toBe(s.sighash);
    expect(toHex(secp.ecdsaSign(sighash, PRIVATE_KEY_A))).toBe(s.signatureA);
    expect(toHex(secp.ecdsaSign(sighash, PRIVATE_KEY_B))).toBe(s.signatureB);
  });

  it('completes the signed state transaction', () => {
    const signed = signedStateTx(channel, state, fromHex(s.signatureA), fromHex(s.signatureB));
    expect(signed.toHex()).toBe(s.signedTxHex);
    expect(signed.getId()).toBe(s.txid);
    expect(signed.virtualSize()).toBe(s.vsize);
    // The txid does not cover the witness: it is the unsigned transaction's.
    expect(Transaction.fromHex(s.unsignedTxHex).getId()).toBe(s.txid);
    checkSigned(Transaction.fromHex(s.signedTxHex), DUPLEX_STATE_HASHTYPE, s.sighash, s.signatureA, s.signatureB);
  });
});

describe.each(vectors.closes)('cooperative $description', (c) => {
  const balances = { balanceASat: BigInt(c.balanceASat), balanceBSat: BigInt(c.balanceBSat) };

  it('builds the unsigned close: nLockTime 0, the balances less a fee at the agreed rate', () => {
    const tx = buildCooperativeCloseTx(channel, balances, c.feeRateSatPerVb);
    expect(tx.toHex()).toBe(c.unsignedTxHex);
    expect(tx.locktime).toBe(0);
    expect(tx.version).toBe(2);
    expect(tx.ins[0]!.sequence).toBe(SEQUENCE_LOCKTIME_RBF);
    expect(outputsOf(tx)).toEqual(c.outputs);
    const o = duplexOutputs(channel, balances, c.feeRateSatPerVb);
    expect(o.feeSat.toString()).toBe(c.feeSat);
    expect(c.outputs.reduce((sum, out) => sum + BigInt(out.valueSat), 0n) + BigInt(c.feeSat)).toBe(channel.capacitySat);
    // Both outputs present here: the fee is exactly the rate on the worst-case vsize.
    expect(BigInt(c.feeSat)).toBe(feeForVsize(vectors.spendVsize, c.feeRateSatPerVb));
    expect(BigInt(c.feeSat)).toBeGreaterThanOrEqual(BigInt(Math.ceil(c.vsize * c.feeRateSatPerVb)));
  });

  it('signs SIGHASH_ALL with both keys and completes the close', () => {
    expect(DUPLEX_CLOSE_HASHTYPE).toBe(SIGHASH_ALL);
    const sighash = closeSighash(channel, balances, c.feeRateSatPerVb);
    expect(toHex(sighash)).toBe(c.sighash);
    expect(toHex(secp.ecdsaSign(sighash, PRIVATE_KEY_A))).toBe(c.signatureA);
    expect(toHex(secp.ecdsaSign(sighash, PRIVATE_KEY_B))).toBe(c.signatureB);
    const signed = signedCloseTx(channel, balances, c.feeRateSatPerVb, fromHex(c.signatureA), fromHex(c.signatureB));
    expect(signed.toHex()).toBe(c.signedTxHex);
    expect(signed.getId()).toBe(c.txid);
    expect(signed.virtualSize()).toBe(c.vsize);
    checkSigned(Transaction.fromHex(c.signedTxHex), DUPLEX_CLOSE_HASHTYPE, c.sighash, c.signatureA, c.signatureB);
  });

  it('is not the state signature: a close sighash differs from the same balances signed as a state', () => {
    const asState = duplexSighash(channel, buildCooperativeCloseTx(channel, balances, c.feeRateSatPerVb), DUPLEX_STATE_HASHTYPE);
    expect(toHex(asState)).not.toBe(c.sighash);
  });
});

describe('SIGHASH_ALL|ANYONECANPAY: a state holder can add a fee input alone', () => {
  const s = vectors.states.find((x) => x.index === 1)!;
  const sighashOf = (tx: Transaction): string => toHex(tx.hashForWitnessV0(0, channel.witnessScript, channel.capacitySat, DUPLEX_STATE_HASHTYPE));
  const ourSighashOf = (tx: Transaction): string => toHex(duplexSighash(channel, tx, DUPLEX_STATE_HASHTYPE));

  /** The signed state with a second (P2WPKH) input of the holder's and its witness appended. */
  function withFeeInput(): Transaction {
    const tx = Transaction.fromHex(s.signedTxHex);
    tx.addInput(fromHex('f0'.repeat(32)), 2, 0xfffffffd);
    tx.setWitness(1, [new Uint8Array(72).fill(0x30), KEY_A]);
    return tx;
  }

  it('keeps input 0 valid after a second input and its witness are appended', () => {
    const bumped = withFeeInput();
    expect(bumped.ins).toHaveLength(2);
    expect(bumped.getId()).not.toBe(s.txid); // a different transaction (a BIP125 replacement)
    expect(sighashOf(bumped)).toBe(s.sighash);
    expect(ourSighashOf(bumped)).toBe(s.sighash);
    const { sigA, sigB } = witnessSignatures(bumped, DUPLEX_STATE_HASHTYPE);
    for (const backend of backends) {
      expect(backend.ecdsaVerify(sigA, fromHex(s.sighash), KEY_A)).toBe(true);
      expect(backend.ecdsaVerify(sigB, fromHex(s.sighash), KEY_B)).toBe(true);
    }
    // A third input (any sequence) leaves it alone too.
    bumped.addInput(fromHex('f1'.repeat(32)), 0, 0);
    expect(sighashOf(bumped)).toBe(s.sighash);
  });

  it('would not survive the same change under SIGHASH_ALL (the close hash type)', () => {
    const bumped = withFeeInput();
    const plain = Transaction.fromHex(s.unsignedTxHex);
    expect(toHex(bumped.hashForWitnessV0(0, channel.witnessScript, channel.capacitySat, SIGHASH_ALL))).not.toBe(
      toHex(plain.hashForWitnessV0(0, channel.witnessScript, channel.capacitySat, SIGHASH_ALL)),
    );
  });

  const mutations: [string, (tx: Transaction) => void][] = [
    ["A's value −1 (to the fee)", (tx) => void (tx.outs[0]!.value -= 1n)],
    ["B's value +1", (tx) => void (tx.outs[1]!.value += 1n)],
    ['one sat moved from A to B', (tx) => void ((tx.outs[0]!.value -= 1n), (tx.outs[1]!.value += 1n))],
    ["A's script replaced", (tx) => void (tx.outs[0]!.script = fromHex('0014' + 'cc'.repeat(20)))],
    ["B's script replaced", (tx) => void (tx.outs[1]!.script = fromHex('0014' + 'cc'.repeat(20)))],
    ['outputs swapped', (tx) => void tx.outs.reverse()],
    ["B's output removed", (tx) => void tx.outs.pop()],
    ['a change output added', (tx) => void tx.addOutput(fromHex('0014' + 'dd'.repeat(20)), 1000n)],
    ['nLockTime of the previous state', (tx) => void (tx.locktime += v.deltaBlocks)],
    ['input 0 final (sequence 0xffffffff)', (tx) => void (tx.ins[0]!.sequence = 0xffffffff)],
    ['version 1', (tx) => void (tx.version = 1)],
  ];
  it.each(mutations)('changes the sighash when %s, even with a fee input appended', (_d, mutate) => {
    for (const tx of [Transaction.fromHex(s.signedTxHex), withFeeInput()]) {
      mutate(tx);
      const changed = sighashOf(tx);
      expect(changed).not.toBe(s.sighash);
      expect(ourSighashOf(tx)).toBe(changed);
      for (const backend of backends) expect(backend.ecdsaVerify(fromHex(s.signatureA), fromHex(changed), KEY_A)).toBe(false);
    }
  });

  it('commits to the funding value: the same transaction spending another amount has another sighash', () => {
    const tx = Transaction.fromHex(s.unsignedTxHex);
    expect(toHex(tx.hashForWitnessV0(0, channel.witnessScript, channel.capacitySat - 1n, DUPLEX_STATE_HASHTYPE))).not.toBe(s.sighash);
  });
});

describe('signature completion', () => {
  it("puts A's signature before B's, the script's key order", () => {
    const s = vectors.states[0]!;
    const state = { index: s.index, balanceASat: BigInt(s.balanceASat), balanceBSat: BigInt(s.balanceBSat) };
    const tx = completeDuplexSpend(channel, buildStateTx(channel, state), fromHex(s.signatureA), fromHex(s.signatureB), DUPLEX_STATE_HASHTYPE);
    expect(tx.toHex()).toBe(s.signedTxHex);
    const { sigA, sigB } = witnessSignatures(tx, DUPLEX_STATE_HASHTYPE);
    expect(secp.ecdsaVerify(sigA, fromHex(s.sighash), KEY_A)).toBe(true);
    expect(secp.ecdsaVerify(sigB, fromHex(s.sighash), KEY_B)).toBe(true);
  });

  it('does not touch the transaction it completes', () => {
    const s = vectors.states[0]!;
    const unsigned = Transaction.fromHex(s.unsignedTxHex);
    completeDuplexSpend(channel, unsigned, fromHex(s.signatureA), fromHex(s.signatureB), DUPLEX_STATE_HASHTYPE);
    expect(unsigned.toHex()).toBe(s.unsignedTxHex);
  });
});
