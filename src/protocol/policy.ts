/**
 * The checks each side makes before it commits to a channel. Options are validated and frozen
 * once (`payeePolicy`, `payerPolicy`); risky settings have to be named explicitly.
 */
import type { Secp256k1 } from '../crypto/secp256k1.js';
import { outputScriptType } from './dust.js';
import { ProtocolError } from './errors.js';
import type { Hello } from './messages.js';
import type { NetworkName } from './network.js';
import { VARIANT_NAMES, type VariantName } from './variants/index.js';

export interface PayeePolicy {
  readonly network: NetworkName;
  readonly variants: readonly VariantName[];
  readonly minCapacitySat: bigint;
  readonly maxCapacitySat: bigint;
  /**
   * Fewest blocks between the current tip and the expiry: the payee must have time to see the
   * funding confirm, take payments, and get its close confirmed before the payer can refund.
   */
  readonly minExpiryBlocks: number;
  /** Most blocks to expiry: a longer channel ties up nothing of the payee's, but a very long one is usually a mistake. */
  readonly maxExpiryBlocks: number;
  readonly minFundingConfirmations: number;
  /** The payee closes no later than `expiry − closeMarginBlocks`. */
  readonly closeMarginBlocks: number;
  /** A close counts as done at this many confirmations. */
  readonly closeConfirmations: number;
  /** An unconfirmed close is replaced with a higher fee after this many blocks. */
  readonly bumpAfterBlocks: number;
  /** The fee-rate ceiling for closes and their replacements, sat/vB. */
  readonly maxCloseFeeRateSatPerVb: number;
  /** Most channels closed in one transaction. */
  readonly maxCloseBatch: number;
  /**
   * How many blocks an opening cookie is good for (see opening-cookie.ts): the v1 refund request
   * and the funding must arrive within it, or the payer says hello again. Nothing is held meanwhile.
   */
  readonly proposalTimeoutBlocks: number;
  /**
   * Take payments before the funding confirms (risky: the funding may be double-spent), up to
   * `zeroConfLimitSat` per channel; off unless named.
   */
  readonly allowZeroConf: boolean;
  readonly zeroConfLimitSat: bigint;
}

export interface PayerPolicy {
  readonly network: NetworkName;
  /** The most confirmations the payer will wait for before the payee accepts payments. */
  readonly maxFundingConfirmations: number;
  /**
   * Blocks before its expiry from which the payer treats a channel as expiring: a payee closes
   * by `expiry − closeMarginBlocks` (that policy's default is the same number), so a payment made
   * later may never reach the chain. The payer opens no new payments on such a channel (a
   * paying client opens another) and its watcher says so. Default 3 on regtest, else 12.
   */
  readonly expiryMarginBlocks: number;
}

/** Whether a channel expiring at `expiryHeight` is within `marginBlocks` of it at `tipHeight`. */
export function isExpiring(expiryHeight: number, tipHeight: number, marginBlocks: number): boolean {
  return tipHeight >= expiryHeight - marginBlocks;
}

/**
 * @throws RangeError naming the first option that is out of range.
 */
export function payeePolicy(options: Partial<PayeePolicy> & { network: NetworkName }): PayeePolicy {
  const regtest = options.network === 'regtest';
  const policy: PayeePolicy = {
    variants: VARIANT_NAMES,
    minCapacitySat: 10_000n,
    maxCapacitySat: 100_000_000n,
    minExpiryBlocks: regtest ? 10 : 144,
    maxExpiryBlocks: 4_320,
    minFundingConfirmations: regtest ? 1 : 3,
    closeMarginBlocks: regtest ? 3 : 12,
    closeConfirmations: regtest ? 1 : 3,
    bumpAfterBlocks: 2,
    maxCloseFeeRateSatPerVb: 200,
    maxCloseBatch: 200,
    proposalTimeoutBlocks: 6,
    allowZeroConf: false,
    zeroConfLimitSat: 0n,
    ...options,
  };
  if (policy.variants.length === 0 || policy.variants.some((x) => !VARIANT_NAMES.includes(x))) throw new RangeError(`variants must be a non-empty subset of ${VARIANT_NAMES.join(', ')}`);
  if (policy.minCapacitySat < 1_000n) throw new RangeError('minCapacitySat must be at least 1000');
  if (policy.maxCapacitySat < policy.minCapacitySat) throw new RangeError('maxCapacitySat must be ≥ minCapacitySat');
  if (!Number.isInteger(policy.closeMarginBlocks) || policy.closeMarginBlocks < 1) throw new RangeError('closeMarginBlocks must be an integer ≥ 1');
  if (!Number.isInteger(policy.minFundingConfirmations) || policy.minFundingConfirmations < 1) {
    throw new RangeError('minFundingConfirmations must be an integer ≥ 1 (for payments before confirmation use allowZeroConf)');
  }
  if (!Number.isInteger(policy.minExpiryBlocks) || policy.minExpiryBlocks <= policy.closeMarginBlocks + policy.minFundingConfirmations) {
    throw new RangeError('minExpiryBlocks must exceed closeMarginBlocks + minFundingConfirmations, or a channel could expire before it can be used and closed');
  }
  if (!Number.isInteger(policy.maxExpiryBlocks) || policy.maxExpiryBlocks < policy.minExpiryBlocks) throw new RangeError('maxExpiryBlocks must be ≥ minExpiryBlocks');
  if (!Number.isInteger(policy.closeConfirmations) || policy.closeConfirmations < 1) throw new RangeError('closeConfirmations must be an integer ≥ 1');
  if (!Number.isInteger(policy.bumpAfterBlocks) || policy.bumpAfterBlocks < 1) throw new RangeError('bumpAfterBlocks must be an integer ≥ 1');
  if (!(policy.maxCloseFeeRateSatPerVb >= 1)) throw new RangeError('maxCloseFeeRateSatPerVb must be ≥ 1');
  // 100 kvB is the standard transaction limit; a close input with its witness is ~105 vB.
  if (!Number.isInteger(policy.maxCloseBatch) || policy.maxCloseBatch < 1 || policy.maxCloseBatch > 800) throw new RangeError('maxCloseBatch must be an integer in 1..800');
  if (!Number.isInteger(policy.proposalTimeoutBlocks) || policy.proposalTimeoutBlocks < 1) throw new RangeError('proposalTimeoutBlocks must be an integer ≥ 1');
  if (policy.allowZeroConf !== (policy.zeroConfLimitSat > 0n)) throw new RangeError('allowZeroConf needs a zeroConfLimitSat > 0, and a zeroConfLimitSat needs allowZeroConf');
  return Object.freeze(policy);
}

/** @throws RangeError naming the first option that is out of range. */
export function payerPolicy(options: Partial<PayerPolicy> & { network: NetworkName }): PayerPolicy {
  const policy: PayerPolicy = { maxFundingConfirmations: 6, expiryMarginBlocks: options.network === 'regtest' ? 3 : 12, ...options };
  if (!Number.isInteger(policy.maxFundingConfirmations) || policy.maxFundingConfirmations < 0) throw new RangeError('maxFundingConfirmations must be an integer ≥ 0');
  if (!Number.isInteger(policy.expiryMarginBlocks) || policy.expiryMarginBlocks < 0) throw new RangeError('expiryMarginBlocks must be an integer ≥ 0');
  return Object.freeze(policy);
}

/**
 * The payee's checks on a channel proposal.
 * @throws ProtocolError WRONG_NETWORK, UNSUPPORTED_VARIANT, INVALID_PUBKEY, INVALID_SCRIPT,
 *   CAPACITY_TOO_SMALL, CAPACITY_TOO_LARGE, EXPIRY_TOO_SOON or EXPIRY_TOO_LATE.
 */
export function checkHello(secp: Secp256k1, policy: PayeePolicy, hello: Hello, tipHeight: number): void {
  if (hello.network !== policy.network) throw new ProtocolError('WRONG_NETWORK', `payee is on ${policy.network}, payer on ${hello.network}`);
  if (!policy.variants.includes(hello.variant)) throw new ProtocolError('UNSUPPORTED_VARIANT', `${hello.variant}; supported: ${policy.variants.join(', ')}`);
  if (!secp.isPublicKey(hello.payerPubkey)) throw new ProtocolError('INVALID_PUBKEY', 'payerPubkey');
  const scriptType = outputScriptType(hello.payerScript);
  if (scriptType === null || scriptType === 'p2a') throw new ProtocolError('INVALID_SCRIPT', 'payerScript must be a standard P2PKH, P2SH, P2WPKH, P2WSH or P2TR script');
  if (hello.capacitySat < policy.minCapacitySat) throw new ProtocolError('CAPACITY_TOO_SMALL', `${hello.capacitySat} < ${policy.minCapacitySat}`);
  if (hello.capacitySat > policy.maxCapacitySat) throw new ProtocolError('CAPACITY_TOO_LARGE', `${hello.capacitySat} > ${policy.maxCapacitySat}`);
  const blocksToExpiry = hello.expiryHeight - tipHeight;
  if (blocksToExpiry < policy.minExpiryBlocks) {
    throw new ProtocolError('EXPIRY_TOO_SOON', `expiry ${hello.expiryHeight} is ${blocksToExpiry} blocks away; at least ${policy.minExpiryBlocks} needed`);
  }
  if (blocksToExpiry > policy.maxExpiryBlocks) {
    throw new ProtocolError('EXPIRY_TOO_LATE', `expiry ${hello.expiryHeight} is ${blocksToExpiry} blocks away; at most ${policy.maxExpiryBlocks}`);
  }
}
