/**
 * What a one-way channel variant is: everything that differs between `spilman-v1`,
 * `spilman-v2` and a later variant (e.g. Taproot with MuSig2), gathered in one spec object per
 * variant (its own module in this folder, listed once in ./index.ts), the way scure-btc-signer
 * lists its output types. Builders, machines and drivers ask the spec; none compares a name.
 *
 * What is the same for every variant stays outside: the transaction skeletons (version 2,
 * nSequence 0xfffffffd, the refund locked until `expiryHeight`, the payment's change output 0
 * and its sighash types, the batch close's input order), the fee arithmetic and the messages.
 *
 * The spec says which digest a spend signs ({@link ChannelVariant.spendSighash},
 * {@link ChannelVariant.paymentSighasher}) and which scheme signs it ({@link SignatureScheme}),
 * so a Taproot variant plugs in BIP341 sighashes and Schnorr signatures without a caller
 * changing: callers hand the spec the whole transaction view and every spent coin (BIP341
 * commits to all of them), and sign, verify and encode through the scheme.
 */
import type { Secp256k1 } from '../../crypto/secp256k1.js';
import type { Channel } from '../channel.js';
import type { SighashOutput, SighashTx } from '../sighash.js';

/** How a variant signs and verifies digests and puts signatures in a witness. */
export interface SignatureScheme {
  /** Short name for logs, e.g. `ecdsa`. */
  readonly name: string;
  /** Longest signature in a witness with its sighash byte: what fees are sized for. */
  readonly maxWitnessSignatureBytes: number;
  /**
   * Signs a 32-byte digest: the signature as it travels in messages (64 bytes for ECDSA's
   * compact form and for BIP340). Deterministic, so a repeat gives the same bytes.
   */
  sign(secp: Secp256k1, digest: Uint8Array, privateKey: Uint8Array): Uint8Array;
  /** False (never a throw) for a signature that does not verify or is malformed: callers check a peer's bytes. */
  verify(secp: Secp256k1, signature: Uint8Array, digest: Uint8Array, publicKey: Uint8Array): boolean;
  /** The signature as it goes in a witness, committing to `hashType`. */
  toWitness(signature: Uint8Array, hashType: number): Uint8Array;
}

/** The parts of the terms a channel's funding lock is made of. */
export interface LockTerms {
  readonly payerPubkey: Uint8Array;
  readonly payeePubkey: Uint8Array;
  readonly expiryHeight: number;
}

/** A channel's funding lock, as {@link Channel} carries it. */
export interface FundingLock {
  /** The script a spend commits to and reveals (P2WSH: the witness script). */
  readonly witnessScript: Uint8Array;
  /** The funding output's scriptPubKey. */
  readonly fundingScript: Uint8Array;
}

/** A funding output being spent: what a sighash commits to about it. */
export type SpentChannel = Pick<Channel, 'capacitySat' | 'witnessScript' | 'fundingScript'>;

/**
 * The payment digests of one channel, made once per channel (the payee's hot path verifies one
 * signature per payment): the funding input is fixed, only the payer's change output varies.
 */
export interface PaymentSighasher {
  /**
   * The scheme these digests are signed with, fixed with the sighasher so that a payment needs
   * no look-up of the variant.
   */
  readonly signatures: SignatureScheme;
  /**
   * Digest of a payment with change: SIGHASH_SINGLE|ANYONECANPAY over `change` as output 0. The
   * array is the sighasher's own, rewritten by its next call (no allocation per payment): sign
   * or verify it at once, copy it to keep it; never write to it.
   */
  singleAcp(change: SighashOutput): Uint8Array;
  /** Digest of the whole-capacity payment: SIGHASH_NONE|ANYONECANPAY (the sighasher's own array: never write to it). */
  noneAcp(): Uint8Array;
}

/**
 * The opening flow, the fact the machines branch on.
 * - `refund-first`: the payee signs the payer's refund (`payeeRefundHashType`) before the payer
 *   signs the funding (the seed's steps 3–5): the refund needs that signature.
 * - `fund-directly`: the payer can refund alone after expiry; the funding follows the accept.
 */
export type OpeningFlow = { readonly type: 'refund-first'; readonly payeeRefundHashType: number } | { readonly type: 'fund-directly' };

/** One variant of the one-way (payer → payee) channel. Specs are frozen values. */
export interface ChannelVariant {
  /** The name on the wire (`hello.variant`) and in storage; the key of its table entry. */
  readonly name: string;
  /** One line for help texts. */
  readonly summary: string;
  readonly opening: OpeningFlow;
  /** The scheme every signature on this channel's funding input is made with. */
  readonly signatures: SignatureScheme;
  /**
   * The funding lock of these terms.
   * @throws RangeError if the terms cannot make one (e.g. an expiry out of locktime range).
   */
  fundingLock(terms: LockTerms): FundingLock;
  /**
   * The digest input `index` of `tx` signs with `hashType`, spending `spent[index]`.
   * `spent` lists the coin of every input, in input order (BIP341 commits to all of them;
   * BIP143 reads only its own).
   * @throws RangeError for an index out of range or SIGHASH_SINGLE without its output.
   */
  spendSighash(tx: SighashTx, index: number, spent: readonly SpentChannel[], hashType: number): Uint8Array;
  /** The per-channel payment digests (see {@link PaymentSighasher}). */
  paymentSighasher(channel: Channel): PaymentSighasher;
  /** Witness of a spend with both signatures (a payment completed into a close). Signatures in witness form. */
  cooperativeWitness(payerSig: Uint8Array, payeeSig: Uint8Array, channel: SpentChannel): Uint8Array[];
  /**
   * Witness of the refund. `payeeSig` is the payee's signature for a `refund-first` variant and
   * null otherwise.
   * @throws RangeError if `payeeSig` does not match the opening flow.
   */
  refundWitness(payerSig: Uint8Array, payeeSig: Uint8Array | null, channel: SpentChannel): Uint8Array[];
  /**
   * Sizes for fees: the worst-case witnesses (every signature at its longest), from which a
   * close's and a refund's vsize are computed before signing.
   */
  readonly sizes: {
    cooperativeWitness(channel: SpentChannel): Uint8Array[];
    refundWitness(channel: SpentChannel): Uint8Array[];
  };
}
