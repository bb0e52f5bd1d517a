/**
 * `spilman-v2`, the same channel without the refund round trip (BIP65): the funding pays a P2WSH
 * `OP_IF <K2> OP_CHECKSIGVERIFY OP_ELSE <expiry> OP_CHECKLOCKTIMEVERIFY OP_DROP OP_ENDIF <K1>
 * OP_CHECKSIG`; payments spend the payee branch, and after `expiryHeight` the payer refunds alone.
 */
import { cltvPayeeBranchWitness, cltvRefundWitness, cltvScript } from '../scripts.js';
import { ecdsa } from './ecdsa.js';
import { bip143PaymentSighasher, bip143SpendSighash, p2wshLock } from './segwit-v0.js';
import type { ChannelVariant } from './variant.js';

const PLACEHOLDER_SIG = new Uint8Array(ecdsa.maxWitnessSignatureBytes);

export const spilmanV2 = Object.freeze({
  name: 'spilman-v2',
  summary: 'CLTV refund: the payer refunds alone after expiry',
  opening: Object.freeze({ type: 'fund-directly' }),
  signatures: ecdsa,
  fundingLock: (terms) => p2wshLock(cltvScript(terms.payerPubkey, terms.payeePubkey, terms.expiryHeight)),
  spendSighash: bip143SpendSighash,
  paymentSighasher: bip143PaymentSighasher,
  cooperativeWitness: (payerSig, payeeSig, channel) => cltvPayeeBranchWitness(payerSig, payeeSig, channel.witnessScript),
  refundWitness: (payerSig, payeeSig, channel) => {
    if (payeeSig !== null) throw new RangeError('a spilman-v2 refund takes no payee signature');
    return cltvRefundWitness(payerSig, channel.witnessScript);
  },
  sizes: Object.freeze({
    cooperativeWitness: (channel) => cltvPayeeBranchWitness(PLACEHOLDER_SIG, PLACEHOLDER_SIG, channel.witnessScript),
    refundWitness: (channel) => cltvRefundWitness(PLACEHOLDER_SIG, channel.witnessScript),
  }),
} as const satisfies ChannelVariant);
