/**
 * The payer's way out when the payee vanishes: v1's refund T2 (the payee signs it
 * SIGHASH_NONE|ANYONECANPAY before the payer signs the funding, the seed's steps 3–5), v2's CLTV
 * branch (no payee signature). Both are locked until `expiryHeight`.
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
import { refundWitness } from './scripts.js';
import { SIGHASH_ALL, SIGHASH_NONE_ACP, bip143Sighash, type SighashTx } from './sighash.js';
import {
  SEQUENCE_LOCKTIME_RBF,
  TX_VERSION,
  buildRefundTx,
  encodeSignature,
  feeForVsize,
  refundVsize,
  sighashView,
  type TxOutputSpec,
} from './transactions.js';

/** The digest the payee signs for a v1 refund: commits to the funding input and the locktime only. */
export function payeeRefundDigest(channel: Channel): Uint8Array {
  const template: SighashTx = {
    version: TX_VERSION,
    locktime: channel.expiryHeight,
    inputs: [{ txid: channel.funding.txid, vout: channel.funding.vout, sequence: SEQUENCE_LOCKTIME_RBF }],
    outputs: [],
  };
  return bip143Sighash(template, 0, channel.witnessScript, channel.capacitySat, SIGHASH_NONE_ACP);
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

/** The unsigned v1 refund template the payer sends the payee (whole capacity, no fee yet). */
export function refundTemplateHex(channel: Channel): string {
  return buildRefundTx(channel, { script: channel.payerScript, valueSat: channel.capacitySat }).toHex();
}

export type RefundAuthorization = { readonly variant: 'spilman-v1'; readonly payeeSignature: Uint8Array } | { readonly variant: 'spilman-v2' };

export interface SignedRefund {
  readonly txHex: string;
  readonly txid: string;
  readonly feeSat: bigint;
  readonly vsize: number;
}

/**
 * Builds and signs the refund the payer broadcasts, paying `capacity − fee` to `output.script`.
 * @throws RangeError if the fee leaves a dust output, or if a v1 channel has no payee signature.
 */
export function signRefund(
  secp: Secp256k1,
  channel: Channel,
  authorization: RefundAuthorization,
  payerPrivateKey: Uint8Array,
  outputScript: Uint8Array,
  feeRateSatPerVb: number,
): SignedRefund {
  if (authorization.variant !== channel.variant) throw new RangeError('refund authorization is for another variant');
  const draft = buildRefundTx(channel, { script: outputScript, valueSat: channel.capacitySat });
  const feeSat = feeForVsize(refundVsize(channel, draft), feeRateSatPerVb);
  const output: TxOutputSpec = { script: outputScript, valueSat: channel.capacitySat - feeSat };
  if (output.valueSat < dustThresholdSat(outputScript)) throw new RangeError(`refund output ${output.valueSat} would be dust at ${feeRateSatPerVb} sat/vB`);
  const tx = buildRefundTx(channel, output);
  const digest = bip143Sighash(sighashView(tx), 0, channel.witnessScript, channel.capacitySat, SIGHASH_ALL);
  const payerSig = encodeSignature(secp.ecdsaSign(digest, payerPrivateKey), SIGHASH_ALL);
  tx.setWitness(
    0,
    authorization.variant === 'spilman-v1'
      ? refundWitness({ variant: 'spilman-v1', payerSig, payeeSig: encodeSignature(authorization.payeeSignature, SIGHASH_NONE_ACP) }, channel.witnessScript)
      : refundWitness({ variant: 'spilman-v2', payerSig }, channel.witnessScript),
  );
  return { txHex: tx.toHex(), txid: tx.getId(), feeSat, vsize: tx.virtualSize() };
}
