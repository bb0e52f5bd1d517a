/**
 * How much a fee bump of a published duplex state pays (the seed's 思考), pure.
 *
 * A state is signed SIGHASH_ALL|ANYONECANPAY: a bump may add an input of its own, but no output
 * (both channel signatures commit to every output, so a change output would void them). The fee
 * input's whole value is therefore fee, and that input must be a coin sized for the bump: exactly
 * what the target rate needs beyond the state's own fee, or the dust threshold when that is more.
 * The wallet splits such a coin off beforehand (its surplus returns to the wallet as change), and
 * it must be confirmed when the bump is sent: a replacement may not spend a new unconfirmed output
 * (BIP125 rule 2, enforced by btcd and Bitcoin Core). docs/duplex.md says why this design.
 */
import { dustThresholdSat } from './dust.js';
import { duplexOutputs, duplexSpendVsize, type DuplexChannel, type DuplexState } from './duplex-tx.js';
import { feeForVsize } from './transactions.js';

/** vsize a P2WPKH fee input adds (41 bytes + a 108-byte witness at a quarter, rounded up). */
export const FEE_INPUT_VBYTES = 68;

/** A P2WPKH output script (the wallet's kind of coin), for its dust threshold. */
const P2WPKH_SCRIPT = Uint8Array.of(0x00, 0x14, ...new Uint8Array(20));

/** What one bump pays. */
export interface BumpPlan {
  /** The target fee rate, sat/vB. */
  readonly feeRateSatPerVb: number;
  /** Worst-case vsize of the state with the fee input, both signed. */
  readonly vsize: number;
  /** The fee of the bumped version: the state's own fee plus the fee coin. */
  readonly feeSat: bigint;
  /** The value of the fee coin to add, exactly. */
  readonly coinSat: bigint;
}

/**
 * The bump of `state` to `feeRateSatPerVb`, replacing a version that pays `replaced` (BIP125: its
 * absolute fee plus 1 sat/vB of the new size, at least). The fee is the target rate × vsize, or
 * the replaced fee plus that increment, or the state's fee plus a dust-sized coin, whichever is
 * most: never more.
 * @throws RangeError if the state's balances do not add up (as {@link duplexOutputs}).
 */
export function planBump(channel: DuplexChannel, state: DuplexState, feeRateSatPerVb: number, replaced?: { readonly feeSat: bigint }): BumpPlan {
  const vsize = duplexSpendVsize(channel) + FEE_INPUT_VBYTES;
  const stateFeeSat = duplexOutputs(channel, state, channel.stateFeeRateSatPerVb).feeSat;
  const byRate = feeForVsize(vsize, feeRateSatPerVb);
  const byReplaced = (replaced?.feeSat ?? 0n) + BigInt(vsize);
  const target = byRate > byReplaced ? byRate : byReplaced;
  const dust = dustThresholdSat(P2WPKH_SCRIPT);
  const coinSat = target - stateFeeSat > dust ? target - stateFeeSat : dust;
  return { feeRateSatPerVb, vsize, feeSat: stateFeeSat + coinSat, coinSat };
}

/** How to answer a rival spend of the funding output in the mempool (not our newest state). */
export type RivalAnswer =
  /** It pays us at least what our newest state pays: let it confirm, spend nothing on it. */
  | { readonly type: 'Accept' }
  /** Replace it with a fee coin of `plan.coinSat` up to `maxCoinSat`: the whole coin is fee. */
  | { readonly type: 'Replace'; readonly maxCoinSat: bigint };

/**
 * What replacing a rival is worth: never more than winning gains. A rival paying us at least
 * `ourNewestSat` is accepted (replacing a transaction better for us would only cost fees). Our
 * own older unilateral version (a countersignature came after it) is replaced by a routine bump:
 * a coin of exactly `planCoinSat`. Anything else (the peer's older state) may take a coin up to
 * `planCoinSat` plus what we would lose if it confirmed, capped by `ceilingCoinSat` (the fee
 * ceiling less the state's own fee).
 * @throws RangeError on a negative amount.
 */
export function answerRival(input: {
  readonly ourNewestSat: bigint;
  readonly ourInRivalSat: bigint;
  readonly planCoinSat: bigint;
  readonly ceilingCoinSat: bigint;
  readonly ownOlderVersion: boolean;
}): RivalAnswer {
  const { ourNewestSat, ourInRivalSat, planCoinSat, ceilingCoinSat, ownOlderVersion } = input;
  if ([ourNewestSat, ourInRivalSat, planCoinSat, ceilingCoinSat].some((v) => v < 0n)) throw new RangeError('amounts are never negative');
  if (ourInRivalSat >= ourNewestSat) return { type: 'Accept' };
  if (ownOlderVersion) return { type: 'Replace', maxCoinSat: planCoinSat };
  const worth = planCoinSat + (ourNewestSat - ourInRivalSat);
  const cap = worth < ceilingCoinSat ? worth : ceilingCoinSat;
  return { type: 'Replace', maxCoinSat: cap > planCoinSat ? cap : planCoinSat };
}
