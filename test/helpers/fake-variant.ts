/**
 * A third one-way variant that exists only in tests: what a new variant's module looks like, to
 * show that registering it in the table is all the callers need (test/unit/variant-extension.test.ts).
 *
 * `test-v3` funds a P2WSH of `OP_IF <K1> OP_CHECKSIGVERIFY <K2> OP_CHECKSIG OP_ELSE <expiry>
 * OP_CHECKLOCKTIMEVERIFY OP_DROP <K1> OP_CHECKSIG OP_ENDIF`: another script and other witnesses
 * than v1's and v2's (the payer's key is checked first on the payment branch), no refund round
 * trip, and a signature scheme that counts its uses (ECDSA underneath), so a test can tell that
 * callers sign and verify through the spec.
 */
import { opcodes, script as bscript } from 'bitcoinjs-lib';
import { ecdsa } from '../../src/protocol/variants/ecdsa.js';
import { bip143SpendSighash, p2wshLock } from '../../src/protocol/variants/segwit-v0.js';
import { Bip143PaymentSighasher } from '../../src/protocol/sighash.js';
import { PAYMENT_LOCKTIME, SEQUENCE_LOCKTIME_RBF, TX_VERSION } from '../../src/protocol/transactions.js';
import type { ChannelVariant, SignatureScheme } from '../../src/protocol/variants/variant.js';

export const schemeUses = { sign: 0, verify: 0 };

const countingEcdsa: SignatureScheme = {
  name: 'counting-ecdsa',
  maxWitnessSignatureBytes: ecdsa.maxWitnessSignatureBytes,
  sign(secp, digest, key) {
    schemeUses.sign++;
    return ecdsa.sign(secp, digest, key);
  },
  verify(secp, signature, digest, publicKey) {
    schemeUses.verify++;
    return ecdsa.verify(secp, signature, digest, publicKey);
  },
  toWitness: ecdsa.toWitness,
};

export function testV3Script(payerPubkey: Uint8Array, payeePubkey: Uint8Array, expiryHeight: number): Uint8Array {
  return bscript.compile([
    opcodes.OP_IF,
    payerPubkey,
    opcodes.OP_CHECKSIGVERIFY,
    payeePubkey,
    opcodes.OP_CHECKSIG,
    opcodes.OP_ELSE,
    bscript.number.encode(expiryHeight),
    opcodes.OP_CHECKLOCKTIMEVERIFY,
    opcodes.OP_DROP,
    payerPubkey,
    opcodes.OP_CHECKSIG,
    opcodes.OP_ENDIF,
  ]);
}

const PLACEHOLDER = new Uint8Array(countingEcdsa.maxWitnessSignatureBytes);
// The payer's signature is checked first, so it is on top of the stack: just below the branch selector.
const paymentWitness = (payerSig: Uint8Array, payeeSig: Uint8Array, script: Uint8Array) => [payeeSig, payerSig, Uint8Array.of(1), script];
const refundWitness = (payerSig: Uint8Array, script: Uint8Array) => [payerSig, new Uint8Array(0), script];

/** A BIP143 payment sighasher whose digests are signed with the counting scheme. */
class CountingPaymentSighasher extends Bip143PaymentSighasher {
  override get signatures(): SignatureScheme {
    return countingEcdsa;
  }
}

export const testV3 = Object.freeze({
  name: 'test-v3',
  summary: 'a test-only variant',
  opening: { type: 'fund-directly' },
  signatures: countingEcdsa,
  fundingLock: (t) => p2wshLock(testV3Script(t.payerPubkey, t.payeePubkey, t.expiryHeight)),
  spendSighash: bip143SpendSighash,
  paymentSighasher: (channel) =>
    new CountingPaymentSighasher(
      { txid: channel.funding.txid, vout: channel.funding.vout, valueSat: channel.capacitySat, witnessScript: channel.witnessScript },
      TX_VERSION,
      SEQUENCE_LOCKTIME_RBF,
      PAYMENT_LOCKTIME,
    ),
  cooperativeWitness: (payerSig, payeeSig, channel) => paymentWitness(payerSig, payeeSig, channel.witnessScript),
  refundWitness: (payerSig, payeeSig, channel) => {
    if (payeeSig !== null) throw new RangeError('a test-v3 refund takes no payee signature');
    return refundWitness(payerSig, channel.witnessScript);
  },
  sizes: {
    cooperativeWitness: (channel) => paymentWitness(PLACEHOLDER, PLACEHOLDER, channel.witnessScript),
    refundWitness: (channel) => refundWitness(PLACEHOLDER, channel.witnessScript),
  },
} as const satisfies ChannelVariant);
