/**
 * `spilman-v1`, the seed's refund-transaction channel: the funding pays a P2WSH 2-of-2
 * `OP_2 <K1> <K2> OP_2 OP_CHECKMULTISIG` (payer first, as the seed says), so even the refund
 * needs the payee's signature: the payee signs it SIGHASH_NONE|ANYONECANPAY (the input and the
 * locktime, not where the money goes) before the payer signs the funding (seed steps 3–5).
 */
import { multisigScript, multisigWitness } from '../scripts.js';
import { SIGHASH_NONE_ACP } from '../sighash.js';
import { ecdsa } from './ecdsa.js';
import { bip143PaymentSighasher, bip143SpendSighash, p2wshLock } from './segwit-v0.js';
import type { ChannelVariant } from './variant.js';

const PLACEHOLDER_SIG = new Uint8Array(ecdsa.maxWitnessSignatureBytes);

export const spilmanV1 = Object.freeze({
  name: 'spilman-v1',
  summary: "the seed's refund-tx channel (2-of-2 multisig)",
  opening: Object.freeze({ type: 'refund-first', payeeRefundHashType: SIGHASH_NONE_ACP }),
  signatures: ecdsa,
  fundingLock: (terms) => p2wshLock(multisigScript(terms.payerPubkey, terms.payeePubkey)),
  spendSighash: bip143SpendSighash,
  paymentSighasher: bip143PaymentSighasher,
  cooperativeWitness: (payerSig, payeeSig, channel) => multisigWitness(payerSig, payeeSig, channel.witnessScript),
  refundWitness: (payerSig, payeeSig, channel) => {
    if (payeeSig === null) throw new RangeError('a spilman-v1 refund needs the payee signature');
    return multisigWitness(payerSig, payeeSig, channel.witnessScript);
  },
  sizes: Object.freeze({
    cooperativeWitness: (channel) => multisigWitness(PLACEHOLDER_SIG, PLACEHOLDER_SIG, channel.witnessScript),
    refundWitness: (channel) => multisigWitness(PLACEHOLDER_SIG, PLACEHOLDER_SIG, channel.witnessScript),
  }),
} as const satisfies ChannelVariant);
