/**
 * The payer's way out when the payee vanishes: the whole capacity back to the payer, locked until
 * `expiryHeight`. A `refund-first` variant (v1's refund T2) needs the payee's signature, given
 * before the payer signs the funding (the seed's steps 3–5); a `fund-directly` one (v2's CLTV
 * branch) does not. Which, and the witness, sighash and signatures, come from the channel's
 * variant (./variants/).
 *
 * Because the payee's v1 signature commits to the input and the locktime but not to the outputs,
 * the payer builds the refund it broadcasts only when it needs it, at the fee rate of that moment,
 * and may replace it with a higher fee (BIP125) without asking anyone.
 */
import { Transaction } from 'bitcoinjs-lib';
import type { Secp256k1 } from '../crypto/secp256k1.js';
import { txidToHash, equalBytes } from './bytes.js';
import type { Channel, FundingOutpoint } from './channel.js';
import { dustThresholdSat } from './dust.js';
import { ProtocolError } from './errors.js';
import { SIGHASH_ALL, type SighashTx } from './sighash.js';
import { SEQUENCE_LOCKTIME_RBF, TX_VERSION, feeForVsize, sighashView, spendFunding, type TxOutputSpec } from './transactions.js';
import { variantOf } from './variants/index.js';
import type { ChannelVariant } from './variants/variant.js';

/** The refund skeleton: the whole capacity back to the payer (`output`) after expiry. */
export function buildRefundTx(channel: Channel, output: TxOutputSpec): Transaction {
  return spendFunding(channel, channel.expiryHeight, [output]);
}

/** Worst-case vsize of refund `tx` once signed (the variant's longest witness). */
export function refundVsize(channel: Channel, tx: Transaction): number {
  const sized = tx.clone();
  sized.setWitness(0, variantOf(channel.variant).sizes.refundWitness(channel));
  return sized.virtualSize();
}

/** The opening flow of a `refund-first` variant. @throws RangeError for any other variant. */
function refundFirst(spec: ChannelVariant): Extract<ChannelVariant['opening'], { type: 'refund-first' }> {
  if (spec.opening.type !== 'refund-first') throw new RangeError(`a ${spec.name} refund needs no payee signature`);
  return spec.opening;
}

/**
 * The digest the payee signs for the refund of a `refund-first` variant (v1: SIGHASH_NONE|
 * ANYONECANPAY, committing to the funding input and the locktime only).
 * @throws RangeError for a variant whose refund needs no payee signature.
 */
export function payeeRefundDigest(channel: Channel): Uint8Array {
  const spec = variantOf(channel.variant);
  const { payeeRefundHashType } = refundFirst(spec);
  const template: SighashTx = {
    version: TX_VERSION,
    locktime: channel.expiryHeight,
    inputs: [{ txid: channel.funding.txid, vout: channel.funding.vout, sequence: SEQUENCE_LOCKTIME_RBF }],
    outputs: [],
  };
  return spec.spendSighash(template, 0, [channel], payeeRefundHashType);
}

/**
 * Seed step 4, the payee's signature on the refund of a `refund-first` channel (message form).
 * @throws RangeError for a variant whose refund needs no payee signature.
 */
export function signPayeeRefund(secp: Secp256k1, channel: Channel, payeePrivateKey: Uint8Array): Uint8Array {
  return variantOf(channel.variant).signatures.sign(secp, payeeRefundDigest(channel), payeePrivateKey);
}

/**
 * Seed step 5, the payer's check of the payee's refund signature; false (never a throw) for a
 * signature that does not verify.
 * @throws RangeError for a variant whose refund needs no payee signature.
 */
export function verifyPayeeRefund(secp: Secp256k1, channel: Channel, signature: Uint8Array): boolean {
  return variantOf(channel.variant).signatures.verify(secp, signature, payeeRefundDigest(channel), channel.payeePubkey);
}

/**
 * Payee side of step 4: checks the unsigned T2 the payer sent against the agreed terms.
 * @throws ProtocolError REFUND_MALFORMED, REFUND_VERSION_INVALID, REFUND_EXTRA_INPUT,
 *   REFUND_WRONG_OUTPOINT, REFUND_SEQUENCE_INVALID or REFUND_LOCKTIME_MISMATCH.
 */
export function checkRefundTemplate(channel: Pick<Channel, 'expiryHeight'>, funding: FundingOutpoint, refundTxHex: string): void {
  let tx: Transaction;
  try {
    tx = Transaction.fromHex(refundTxHex);
  } catch (err) {
    throw new ProtocolError('REFUND_MALFORMED', (err as Error).message);
  }
  if (tx.version !== TX_VERSION) throw new ProtocolError('REFUND_VERSION_INVALID', `version ${tx.version}`);
  if (tx.ins.length !== 1) throw new ProtocolError('REFUND_EXTRA_INPUT', `${tx.ins.length} inputs`);
  const input = tx.ins[0]!;
  if (!equalBytes(input.hash, txidToHash(funding.txid)) || input.index !== funding.vout) {
    throw new ProtocolError('REFUND_WRONG_OUTPOINT', 'the refund does not spend the announced funding outpoint');
  }
  if (input.sequence !== SEQUENCE_LOCKTIME_RBF) throw new ProtocolError('REFUND_SEQUENCE_INVALID', `sequence 0x${input.sequence.toString(16)}`);
  if (tx.locktime !== channel.expiryHeight) {
    throw new ProtocolError('REFUND_LOCKTIME_MISMATCH', `locktime ${tx.locktime}, agreed expiry ${channel.expiryHeight}`);
  }
}

/** The unsigned refund template of a `refund-first` variant the payer sends the payee (whole capacity, no fee yet). */
export function refundTemplateHex(channel: Channel): string {
  return buildRefundTx(channel, { script: channel.payerScript, valueSat: channel.capacitySat }).toHex();
}

/**
 * What lets the payer refund: the payee's signature (a `refund-first` variant) or nothing more
 * than the payer's own key after expiry (`fund-directly`).
 */
export type RefundAuthorization = { readonly type: 'payee-signed'; readonly payeeSignature: Uint8Array } | { readonly type: 'payer-alone' };

/**
 * The authorization a channel's refund takes, from the payee signature the payer holds (null
 * when it holds none).
 * @throws RangeError for a `refund-first` channel without the payee's signature.
 */
export function refundAuthorization(channel: Channel, payeeSignature: Uint8Array | null): RefundAuthorization {
  const spec = variantOf(channel.variant);
  const flow = spec.opening;
  switch (flow.type) {
    case 'refund-first':
      if (payeeSignature === null) throw new RangeError(`a ${spec.name} refund needs the payee signature, and none is held`);
      return { type: 'payee-signed', payeeSignature };
    case 'fund-directly':
      return { type: 'payer-alone' };
    default: {
      const _exhaustive: never = flow;
      throw new RangeError(`unknown opening flow ${String(_exhaustive)}`);
    }
  }
}

export interface SignedRefund {
  readonly txHex: string;
  readonly txid: string;
  readonly feeSat: bigint;
  readonly vsize: number;
}

/**
 * Builds and signs the refund the payer broadcasts, paying `capacity − fee` to `output.script`.
 * @throws RangeError if the fee leaves a dust output, or if the authorization does not fit the
 *   variant's opening flow (a `refund-first` channel without the payee's signature, or the reverse).
 */
export function signRefund(
  secp: Secp256k1,
  channel: Channel,
  authorization: RefundAuthorization,
  payerPrivateKey: Uint8Array,
  outputScript: Uint8Array,
  feeRateSatPerVb: number,
): SignedRefund {
  const spec = variantOf(channel.variant);
  const payeeSig = payeeRefundSignature(spec, authorization);
  const draft = buildRefundTx(channel, { script: outputScript, valueSat: channel.capacitySat });
  const feeSat = feeForVsize(refundVsize(channel, draft), feeRateSatPerVb);
  const output: TxOutputSpec = { script: outputScript, valueSat: channel.capacitySat - feeSat };
  if (output.valueSat < dustThresholdSat(outputScript)) throw new RangeError(`refund output ${output.valueSat} would be dust at ${feeRateSatPerVb} sat/vB`);
  const tx = buildRefundTx(channel, output);
  const digest = spec.spendSighash(sighashView(tx), 0, [channel], SIGHASH_ALL);
  const payerSig = spec.signatures.toWitness(spec.signatures.sign(secp, digest, payerPrivateKey), SIGHASH_ALL);
  tx.setWitness(0, spec.refundWitness(payerSig, payeeSig, channel));
  return { txHex: tx.toHex(), txid: tx.getId(), feeSat, vsize: tx.virtualSize() };
}

/** The payee's refund signature in witness form, or null when the variant needs none. @throws RangeError on a mismatch. */
function payeeRefundSignature(spec: ChannelVariant, authorization: RefundAuthorization): Uint8Array | null {
  const flow = spec.opening;
  switch (flow.type) {
    case 'refund-first':
      if (authorization.type !== 'payee-signed') throw new RangeError(`a ${spec.name} refund needs the payee signature`);
      return spec.signatures.toWitness(authorization.payeeSignature, flow.payeeRefundHashType);
    case 'fund-directly':
      if (authorization.type !== 'payer-alone') throw new RangeError(`a ${spec.name} refund takes no payee signature`);
      return null;
    default: {
      const _exhaustive: never = flow;
      throw new RangeError(`unknown opening flow ${String(_exhaustive)}`);
    }
  }
}
