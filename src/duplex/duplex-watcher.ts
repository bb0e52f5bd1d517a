/**
 * The chain side of duplex channels, on every new tip (the seed's 思考):
 * - marks fundings confirmed (and A rebroadcasts a funding the node lost);
 * - publishes the newest state **the moment it is final** (tip ≥ its locktime) when the channel
 *   is being closed unilaterally, or when it is still open at that height (a peer that vanished
 *   must not get Δ blocks later the chance to publish an older state);
 * - bumps a published state that is still unconfirmed after `bumpAfterBlocks`: it adds a fee
 *   input of this side's own (SIGHASH_ALL|ANYONECANPAY left both signatures valid), +25 % per
 *   step up to `maxFeeRateSatPerVb`, replacing the previous version (BIP125). No output can be
 *   added, so the input is a coin sized for the step, split off one step ahead (duplex-bump.ts);
 *   an older state holding the mempool that pays us less is replaced in the same check with a
 *   confirmed coin up to what losing to it would cost (no exact coin can be ready for a rival's
 *   fee, and a block's wait could lose); one paying us at least as much is let confirm;
 * - reads how the funding output was spent once that is confirmed, whoever spent it.
 */
import { Transaction } from 'bitcoinjs-lib';
import type { OutpointStatus } from '../chain/backend.js';
import { bumpedFeeRate, resolveFeeRate } from '../chain/fee-rate.js';
import { transactionFeeSat } from '../chain/tx-fee.js';
import { answerRival, planBump, type BumpPlan } from '../protocol/duplex-bump.js';
import { equalBytes, txidToHash } from '../protocol/bytes.js';
import {
  buildStateTx,
  completeDuplexSpend,
  duplexOutputs,
  DUPLEX_STATE_HASHTYPE,
  stateLocktime,
} from '../protocol/duplex-tx.js';
import { feeForVsize, SEQUENCE_LOCKTIME_RBF } from '../protocol/transactions.js';
import type { DuplexRecord, Settlement } from './duplex-record.js';
import { OPENING_TIMEOUT_BLOCKS } from './duplex-opening.js';
import { closeIsStale, unilateralClose } from '../protocol/duplex-unilateral.js';
import type { DuplexPeer } from './duplex-peer.js';

/** The version a bump replaces: its fee and size (BIP125), and what it pays us if it is a rival. */
export interface Replaced {
  readonly feeSat: bigint;
  readonly vsize: number;
  readonly txid?: string;
  /**
   * Set for a rival that pays us less than our newest state (an older state): it is replaced at
   * once, with a fee coin of at most the plan plus what we would lose to it (answerRival), or of
   * exactly the plan if it is our own older version.
   */
  readonly contest?: { readonly ourInRivalSat: bigint; readonly ourNewestSat: bigint; readonly ownOlderVersion: boolean };
}

/**
 * Confirmations of a spend of B's released coin elsewhere before a funding B signed with it is
 * given up for good (the record aborted and no longer watched): below that, a reorg could still
 * drop that spend and mine the funding, which holds B's signatures.
 */
export const RELEASED_SPEND_FINAL_CONFIRMATIONS = 6;

export class DuplexWatcher {
  private running = false;
  /** The tip at which a released record's inputs were last looked up: once per tip, whoever calls check. */
  private readonly releasedProbedAt = new WeakMap<DuplexRecord, number>();

  constructor(private readonly peer: DuplexPeer) {}

  private get options() {
    return this.peer.options;
  }

  private log(line: string): void {
    this.options.log?.(`duplex ${this.peer.role} watcher: ${line}`);
  }

  /**
   * Closes the channel alone: its newest state is published as soon as it is final (at once if
   * it already is). @returns the height from which it can be mined.
   */
  async forceClose(channelId: string): Promise<number> {
    const record = this.peer.get(channelId, true);
    if (!record?.current) throw new RangeError(`unknown or unopened duplex channel ${channelId}`);
    // Under the channel's lock, checked once it is held: a countersignature in flight finishes
    // first, and the close then publishes the state it produced.
    return this.peer.locked(record, async () => {
      if (record.phase !== 'open' && !(record.phase === 'closing' && record.close?.kind !== 'unilateral')) throw new RangeError(`the channel is ${record.phase}`);
      const tipHeight = record.fundingConfirmed ? (await this.options.backend.getTip()).height : null;
      return this.closeAlone(record, tipHeight, () => this.fundingStatus(record));
    });
  }

  /**
   * {@link forceClose} of a record checked already, with the tip (null: the funding is not
   * confirmed, nothing to publish yet) and the funding status as its caller reads them. The
   * caller holds the channel's lock, as for every step below that changes the record.
   */
  private async closeAlone(record: DuplexRecord, tipHeight: number | null, readFunding: () => Promise<OutpointStatus>): Promise<number> {
    const previous = record.close;
    record.phase = 'closing';
    record.close = unilateralClose(this.peer.channelOf(record), record.current!, previous);
    const tx = Transaction.fromHex(record.close.txHex);
    this.peer.save(record);
    if (previous?.bumpReservation) {
      // A bumped version of an older state is replaced by the newest: its fee coin is free.
      await this.options.wallet.release(previous.bumpReservation);
      await this.options.saveWallet();
    }
    if (tipHeight !== null) {
      await this.pushUnilateral(record, tipHeight, tipHeight >= tx.locktime, readFunding);
      // The first bump's coin, split off now so it is confirmed if the state gets stuck.
      if (record.close.kind === 'unilateral' && record.close.txHex === tx.toHex()) await this.prepareNextFeeCoin(record);
    }
    return tx.locktime + 1;
  }

  /** One pass over every channel (also what each new tip runs); one channel's failure does not stop the others. */
  async check(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const tip = await this.options.backend.getTip();
      this.peer.noteTip(tip.height);
      for (const summary of this.peer.list()) {
        const record = this.peer.get(summary.tempId);
        if (!record) continue; // an abandoned opening forgotten meanwhile
        try {
          await this.checkOne(record, tip.height);
        } catch (err) {
          this.log(`${record.channelId ?? record.tempId}: ${(err as Error).message}`);
        }
      }
    } finally {
      this.running = false;
    }
  }

  private async checkOne(record: DuplexRecord, tipHeight: number): Promise<void> {
    if (record.phase === 'opening' && record.openedHeight !== undefined && tipHeight - record.openedHeight >= OPENING_TIMEOUT_BLOCKS) {
      this.log(`${record.tempId}: opening stalled for ${OPENING_TIMEOUT_BLOCKS} blocks; abandoned`);
      await this.peer.abortOpening(record); // takes the lock itself
      return;
    }
    // Every change below goes through the channel's lock: a step of the peer (a countersignature
    // waiting for the tip) never sees the record change under it, and this check sees its result.
    await this.peer.locked(record, () => this.checkLocked(record, tipHeight));
  }

  private async checkLocked(record: DuplexRecord, tipHeight: number): Promise<void> {
    // The funding's status, read at most once in this check: its steps may each ask for it, and
    // a read searches the chain from the funding's block. Nothing here confirms a spend, and
    // the steps after a broadcast act only on confirmed spends.
    let read: Promise<OutpointStatus> | null = null;
    const readFunding = (): Promise<OutpointStatus> => (read ??= this.fundingStatus(record));
    if (this.abortLostSuccessor(record)) return;
    if (record.phase === 'open' && !record.fundingConfirmed && record.channelId) await this.checkFunding(record, tipHeight);
    if (record.phase === 'aborted' || !this.peer.get(record.tempId)) return; // aborted or forgotten just now
    if ((record.phase === 'open' || record.phase === 'closing') && record.current && record.fundingConfirmed) {
      const final = tipHeight >= stateLocktime(record.terms!, record.current.index);
      // Still open, or a cooperative close / rollover not confirmed, when the newest state is
      // final: publish it now; waiting would give the other side, Δ blocks later, an older one.
      if (closeIsStale(record.close, record.current)) {
        // A countersignature came after the close was stored (the peer rebuilds it then too):
        // the newest state is the one to publish.
        this.log(`${record.channelId}: the close holds state ${record.close!.stateIndex}, the newest is ${record.current.index}: publishing the newest`);
        await this.closeAlone(record, tipHeight, readFunding);
      } else if (final && record.close?.kind !== 'unilateral') {
        this.log(`${record.channelId}: the newest state ${record.current.index} is final at ${tipHeight} and the channel is not settled: publishing it`);
        await this.closeAlone(record, tipHeight, readFunding);
      } else if (record.close?.kind === 'unilateral') {
        await this.pushUnilateral(record, tipHeight, final, readFunding);
      } else if (record.close) {
        await this.rebroadcastIfLost(record, readFunding);
      }
      await this.checkSpent(record, readFunding);
    } else if (record.phase === 'closing') {
      if (record.close && record.close.kind !== 'unilateral') await this.rebroadcastIfLost(record, readFunding);
      await this.checkSpent(record, readFunding);
    }
  }

  /** A cooperative close or rollover both signed must reach the chain: send it again if the node lost it. */
  private async rebroadcastIfLost(record: DuplexRecord, readFunding: () => Promise<OutpointStatus>): Promise<void> {
    const close = record.close!;
    if (close.txHex === '') return; // the peer's signature never came: the newest state covers it at its locktime
    if (await this.options.backend.getTransaction(close.txid)) return;
    if ((await readFunding()).state !== 'unspent') return;
    this.log(`${record.channelId}: the node does not have the ${close.kind} ${close.txid}; broadcasting it again`);
    await this.peer.broadcast(close.txHex).catch((err: Error) => this.log(`${close.kind} ${close.txid} refused: ${err.message}`));
  }

  private async checkFunding(record: DuplexRecord, tipHeight: number): Promise<void> {
    const { known } = await this.peer.confirmFunding(record);
    if (!known && record.role === 'A' && record.fundingTxHex && Transaction.fromHex(record.fundingTxHex).hasWitnesses()) {
      this.log(`${record.channelId}: the node lost the funding; broadcasting it again`);
      await this.peer.broadcast(record.fundingTxHex).catch((err: Error) => this.log(`rebroadcast refused: ${err.message}`));
    }
    if (!known && record.role === 'B') await this.releaseUnseenFunding(record, tipHeight);
  }

  /**
   * B: a funding B signed that the node has not seen (not in the mempool, not mined) for
   * OPENING_TIMEOUT_BLOCKS may never come (an opener naming a coin it cannot sign, or one that
   * walked away): B's coins go back to the wallet rather than stay reserved forever. The record
   * stays open and watched: if A broadcasts the funding late and it confirms first, B's coins
   * are in the channel as agreed; once one of B's coins is spent by anything else, and that spend
   * is RELEASED_SPEND_FINAL_CONFIRMATIONS deep (a reorg could drop a shallower one), the funding
   * can never confirm and the record is aborted. A channel B put nothing into is forgotten then.
   */
  private async releaseUnseenFunding(record: DuplexRecord, tipHeight: number): Promise<void> {
    if (record.predecessorId) return; // a rollover's channel: its funding is the old channel's close (abortLostSuccessor)
    const own = record.ownInputs ?? [];
    const since = record.fundingSignedHeight ?? record.openedHeight;
    const timedOut = since !== undefined && tipHeight - since >= OPENING_TIMEOUT_BLOCKS;
    if (own.length === 0) {
      // B put nothing in: nothing of B's is at stake (state 0 gives it nothing; if the funding
      // still confirms, A takes its coins back with state 0), and such records cost their
      // sender nothing: forget it.
      if (timedOut) {
        this.peer.forgetUnfunded(record);
        this.log(`${record.channelId}: the funding is unknown to the node ${tipHeight - since!} blocks after B signed state 0, and B put nothing in; forgotten`);
      }
      return;
    }
    if (!record.ownInputsReleased) {
      if (!timedOut) return;
      record.ownInputsReleased = true;
      this.peer.save(record);
      await this.options.wallet.release(`duplex:${record.tempId}`);
      await this.options.saveWallet();
      this.log(`${record.channelId}: the funding B signed at ${since!} is unknown to the node ${tipHeight - since!} blocks later; B's coins are released (the channel opens still if it confirms first)`);
      return;
    }
    if (this.releasedProbedAt.get(record) === tipHeight) return;
    this.releasedProbedAt.set(record, tipHeight);
    for (const input of own) {
      const status = await this.options.backend.getOutpointStatus(input, Math.max(0, (record.fundingSignedHeight ?? 1) - 1));
      if (status.state === 'spent' && status.confirmations >= RELEASED_SPEND_FINAL_CONFIRMATIONS && status.spendingTxid !== this.peer.channelOf(record).funding.txid) {
        record.phase = 'aborted';
        this.peer.save(record);
        this.log(`${record.channelId}: aborted: B's coin ${input.txid}:${input.vout} was spent by ${status.spendingTxid} ${status.confirmations} blocks deep; the funding can never confirm`);
        return;
      }
    }
  }

  private async pushUnilateral(record: DuplexRecord, tipHeight: number, final: boolean, readFunding: () => Promise<OutpointStatus>): Promise<void> {
    const close = record.close!;
    if (!final) return;
    const status = await this.options.backend.getTransaction(close.txid);
    if (status && status.confirmations > 0) return;
    if (!status) {
      // Another spend of the funding output may hold the mempool: the peer's own version of
      // the newest state (with its fee input), an older state, a close. Beat it if we must.
      const rival = await this.mempoolRival(record, readFunding);
      if (rival) {
        // The peer's copy of the newest state, or the close / rollover this replaces, pays the
        // same balances: let it confirm, and bump past it only if it is stuck. Anything else
        // (an older state) is replaced at once.
        const acceptable = rival.sameState || rival.txid === close.supersededTxid;
        if (!acceptable && rival.ourInRivalSat >= rival.ourNewestSat) {
          // It pays us at least what our newest state does (an older state, ours or the peer's):
          // replacing it could only cost us fees. It is let confirm; a worse one is answered then.
          if (close.rivalSeenHeight === undefined) {
            record.close = { ...close, rivalSeenHeight: tipHeight };
            this.peer.save(record);
            this.log(`${record.channelId}: ${rival.txid} spends the funding in the mempool paying us ${rival.ourInRivalSat} sat, at least our newest state's ${rival.ourNewestSat}: letting it confirm`);
          }
          return;
        }
        if (acceptable && close.rivalSeenHeight === undefined) {
          record.close = { ...close, rivalSeenHeight: tipHeight };
          this.peer.save(record);
          this.log(`${record.channelId}: ${rival.txid} (same balances) spends the funding in the mempool; bumping past it only if it does not confirm`);
          return;
        }
        if (!acceptable) {
          const ownOlderVersion = close.olderOwnTxids?.includes(rival.txid) ?? false;
          await this.bumpLocked(record, tipHeight, { txid: rival.txid, feeSat: rival.feeSat, vsize: rival.vsize, contest: { ourInRivalSat: rival.ourInRivalSat, ourNewestSat: rival.ourNewestSat, ownOlderVersion } });
        } else if (tipHeight - close.rivalSeenHeight! >= this.options.policy.bumpAfterBlocks) await this.bumpLocked(record, tipHeight, rival);
        return;
      }
      try {
        await this.peer.broadcast(close.txHex);
        record.close = { ...close, broadcastHeight: close.broadcastHeight ?? tipHeight };
        this.peer.save(record);
        this.log(`${record.channelId}: published state ${close.stateIndex} (${close.txid})`);
      } catch (err) {
        this.log(`${record.channelId}: state ${close.stateIndex} refused: ${(err as Error).message}`);
      }
      return;
    }
    if (close.broadcastHeight === undefined) {
      record.close = { ...close, broadcastHeight: tipHeight };
      this.peer.save(record);
    } else if (tipHeight - close.broadcastHeight >= this.options.policy.bumpAfterBlocks) {
      await this.bumpLocked(record, tipHeight, { feeSat: close.feeSat, vsize: Transaction.fromHex(close.txHex).virtualSize() });
    }
  }

  /** The unconfirmed transaction spending the funding output, if it is not ours, with its fee. */
  private async mempoolRival(
    record: DuplexRecord,
    readFunding: () => Promise<OutpointStatus>,
  ): Promise<{ txid: string; feeSat: bigint; vsize: number; sameState: boolean; ourInRivalSat: bigint; ourNewestSat: bigint } | null> {
    const spent = await readFunding();
    if (spent.state !== 'spent' || spent.confirmations > 0 || spent.spendingTxid === record.close?.txid) return null;
    const rival = await this.options.backend.getTransaction(spent.spendingTxid);
    if (!rival) return null;
    const tx = Transaction.fromHex(rival.hex);
    const channel = this.peer.channelOf(record);
    // The node has every parent of a transaction in its mempool (the funding on chain, the rest
    // on chain or in the mempool); were one missing, the rival still stands, its fee unknown.
    const feeSat = (await transactionFeeSat(this.options.backend, tx)) ?? 0n;
    const ours = buildStateTx(channel, record.current!);
    const sameState = tx.locktime === ours.locktime && tx.outs.length === ours.outs.length && tx.outs.every((o, i) => o.value === ours.outs[i]!.value && equalBytes(o.script, ours.outs[i]!.script));
    const ourScript = record.role === 'A' ? channel.scriptA : channel.scriptB;
    const ourIn = (t: Transaction) => t.outs.filter((o) => equalBytes(o.script, ourScript)).reduce((sum, o) => sum + o.value, 0n);
    return { txid: spent.spendingTxid, feeSat, vsize: tx.virtualSize(), sameState, ourInRivalSat: ourIn(tx), ourNewestSat: ourIn(ours) };
  }

  /**
   * Replaces the published newest state with a version that carries a fee input of this side's
   * own wallet. The state's outputs are fixed (a change output would void both signatures), so
   * the input is a confirmed coin of exactly the value the target rate needs (duplex-bump.ts);
   * without one, this splits one off and the bump follows once it confirms. Against a rival that
   * pays us less (`contest`: the peer's older state) a confirmed coin up to the plan plus what we
   * would lose to it (and the ceiling) is taken at once instead: paying over target beats losing
   * more, and never more than winning is worth. No-op at the ceiling.
   * @returns the new txid, or null.
   */
  bump(record: DuplexRecord, tipHeight: number, rival?: Replaced): Promise<string | null> {
    return this.peer.locked(record, () => this.bumpLocked(record, tipHeight, rival));
  }

  /** {@link bump}, the channel's lock held. */
  private async bumpLocked(record: DuplexRecord, tipHeight: number, rival?: Replaced): Promise<string | null> {
    const close = record.close;
    const state = record.current;
    if (close?.kind !== 'unilateral' || !state) throw new RangeError('only a published state is bumped');
    const { policy, wallet } = this.options;
    const plan = this.planNextBump(record, rival);
    if (!plan) {
      this.log(`${record.channelId}: state ${state.index} is at the fee ceiling of ${policy.maxFeeRateSatPerVb} sat/vB`);
      return null;
    }
    const reservation = `bump:${record.channelId}:${plan.feeRateSatPerVb}`;
    const channel = this.peer.channelOf(record);
    const stateFeeSat = duplexOutputs(channel, state, channel.stateFeeRateSatPerVb).feeSat;
    // A routine bump of our own version takes a coin of exactly the planned value: any bigger
    // coin would be fee, all of it. Against the peer's rival that pays us less no exact coin can
    // exist in advance (its value follows the rival's fee), and splitting one costs a block in
    // which the rival confirms: a bigger confirmed coin will do, up to what winning is worth.
    let maxCoinSat = plan.coinSat;
    if (rival?.contest) {
      const answer = answerRival({ ...rival.contest, planCoinSat: plan.coinSat, ceilingCoinSat: feeForVsize(plan.vsize, policy.maxFeeRateSatPerVb) - stateFeeSat });
      if (answer.type === 'Accept') return null;
      maxCoinSat = answer.maxCoinSat;
    }
    const coin = await wallet.reserveFeeCoin(reservation, plan.coinSat, maxCoinSat);
    if (!coin) {
      await this.prepareFeeCoin(record, plan);
      return null;
    }
    if (coin.valueSat > plan.coinSat) {
      this.log(`${record.channelId}: ${rival?.txid ?? 'a rival'} (an older state paying us less) holds the mempool; replacing it now with a fee coin of ${coin.valueSat} sat, ${coin.valueSat - plan.coinSat} sat over the plan (no coin of exactly ${plan.coinSat} sat, and waiting a block for one could lose more)`);
    }
    const tx = buildStateTx(channel, state);
    tx.addInput(txidToHash(coin.outpoint.txid), coin.outpoint.vout, SEQUENCE_LOCKTIME_RBF);
    const signed = completeDuplexSpend(channel, tx, state.sigA, state.sigB, DUPLEX_STATE_HASHTYPE);
    for (const { index, stack } of wallet.signContribution(signed, [1])) signed.setWitness(index, stack);
    try {
      await this.peer.broadcast(signed.toHex());
    } catch (err) {
      await wallet.release(reservation); // the coin stays ours for the next try
      await this.options.saveWallet();
      this.log(`${record.channelId}: bump of state ${state.index} refused: ${(err as Error).message}`);
      return null;
    }
    // The version this one replaced is gone from the mempool: its fee coin is free again.
    if (close.bumpReservation) await wallet.release(close.bumpReservation);
    await this.options.saveWallet();
    // Rounded up, so the next step's +1 sat/vB really is above this version's rate.
    const feeSat = stateFeeSat + coin.valueSat;
    record.close = { ...close, txid: signed.getId(), txHex: signed.toHex(), feeSat, feeRateSatPerVb: Math.ceil(Number(feeSat) / signed.virtualSize()), broadcastHeight: tipHeight, bumpReservation: reservation };
    this.peer.save(record);
    this.log(`${record.channelId}: bumped state ${state.index} to ${plan.feeRateSatPerVb} sat/vB with a fee coin of ${coin.valueSat} sat (${signed.getId()})`);
    await this.prepareNextFeeCoin(record);
    return signed.getId();
  }

  /**
   * The next bump of the published state: +25 % (at least +1 sat/vB) over its rate, above the
   * replaced version's rate too (BIP125), up to the ceiling. @returns null at the ceiling.
   */
  private planNextBump(record: DuplexRecord, replaced?: Replaced): BumpPlan | null {
    const close = record.close!;
    const ceiling = this.options.policy.maxFeeRateSatPerVb;
    // The lowest whole rate strictly above the replaced version's (338 sat in 168 vB is 2.01: 3).
    const replacedRate = replaced ? Number(replaced.feeSat) / replaced.vsize : 0;
    const rate = Math.min(ceiling, Math.max(bumpedFeeRate(close.feeRateSatPerVb, ceiling), Math.floor(replacedRate) + 1));
    if (rate <= close.feeRateSatPerVb && rate <= replacedRate) return null;
    const plan = planBump(this.peer.channelOf(record), record.current!, rate, replaced);
    return plan.feeSat > feeForVsize(plan.vsize, ceiling) ? null : plan;
  }

  /**
   * Splits off now the fee coin the next bump of our published version will need, so that it is
   * confirmed when the bump is due (a replacement may not spend a new unconfirmed output).
   */
  private async prepareNextFeeCoin(record: DuplexRecord): Promise<void> {
    const close = record.close!;
    // What pushUnilateral passes as the replaced version, so the plans match to the satoshi.
    const plan = this.planNextBump(record, { feeSat: close.feeSat, vsize: Transaction.fromHex(close.txHex).virtualSize() });
    if (plan) await this.prepareFeeCoin(record, plan);
  }

  /** A wallet coin of exactly `plan.coinSat`: kept if the wallet has one free, else split off (change back to the wallet). */
  private async prepareFeeCoin(record: DuplexRecord, plan: BumpPlan): Promise<void> {
    const { wallet, policy, backend } = this.options;
    const have = wallet.coins().find((c) => !c.reserved && !c.coinbase && c.valueSat === plan.coinSat);
    if (have) {
      if (have.confirmations < 1) this.log(`${record.channelId}: the fee coin of ${plan.coinSat} sat is not confirmed yet; bumping once it is`);
      return;
    }
    // The split must confirm soon: it pays the node's next-block rate.
    const rate = Math.min(policy.maxFeeRateSatPerVb, Math.ceil(await resolveFeeRate(backend, 1, this.options.fallbackFeeRateSatPerVb)));
    try {
      const split = await wallet.send(wallet.receiveAddress(), plan.coinSat, rate);
      this.log(`${record.channelId}: split a fee coin of ${plan.coinSat} sat off for a bump to ${plan.feeRateSatPerVb} sat/vB (${split.txid})`);
    } catch (err) {
      this.log(`${record.channelId}: cannot split a fee coin of ${plan.coinSat} sat: ${(err as Error).message}`);
    } finally {
      await this.options.saveWallet();
    }
  }

  /** Whether, and by what, the channel's funding output is spent (searched from its block on). */
  private fundingStatus(record: DuplexRecord): Promise<OutpointStatus> {
    return this.options.backend.getOutpointStatus(this.peer.channelOf(record).funding, record.fundingHeight ?? 0);
  }

  /**
   * A channel opened by a rollover whose predecessor was settled by anything else: its funding
   * (that rollover) can never confirm now. Read from the predecessor on each check (records are
   * checked oldest first), so a restart between the two saves loses nothing.
   * @returns whether it was aborted now.
   */
  private abortLostSuccessor(record: DuplexRecord): boolean {
    if (record.phase !== 'open' || record.fundingConfirmed || !record.predecessorId || !record.channelId) return false;
    const settled = this.peer.get(record.predecessorId)?.settlement;
    if (!settled || settled.txid === record.channelId.split(':')[0]) return false;
    record.phase = 'aborted';
    this.peer.save(record);
    this.log(`${record.channelId}: aborted: ${record.predecessorId} was settled by ${settled.kind} ${settled.txid}, not by the rollover that funds this channel`);
    return true;
  }

  private async checkSpent(record: DuplexRecord, readFunding: () => Promise<OutpointStatus>): Promise<void> {
    const status = await readFunding();
    if (status.state !== 'spent' || status.confirmations < 1) return;
    const spend = await this.options.backend.getTransaction(status.spendingTxid);
    if (!spend) return;
    record.settlement = this.settlementOf(record, Transaction.fromHex(spend.hex), status.confirmations);
    record.phase = 'closed';
    this.peer.save(record); // a rollover's new channel that lost the race is aborted under its own lock (abortLostSuccessor)
    await this.releaseFeeCoins(record);
    this.log(`${record.channelId}: settled by ${record.settlement.kind} ${status.spendingTxid} (A ${record.settlement.valueASat}, B ${record.settlement.valueBSat}, fee ${record.settlement.feeSat})`);
  }

  /**
   * Once the channel is settled, the fee coins held for its bumps are free again: the version
   * that spent one may have lost to another spend of the funding (the peer's version, an older
   * state), and the wallet drops only reservations whose coins were spent.
   */
  private async releaseFeeCoins(record: DuplexRecord): Promise<void> {
    const { wallet } = this.options;
    const prefix = `bump:${record.channelId}:`;
    const names = new Set(wallet.state().reservations.map((r) => r.txid).filter((name) => name.startsWith(prefix)));
    if (record.close?.bumpReservation) names.add(record.close.bumpReservation);
    if (names.size === 0) return;
    for (const name of names) await wallet.release(name);
    await this.options.saveWallet();
    this.log(`${record.channelId}: released ${names.size} fee coin reservation(s) of its bumps`);
  }

  private settlementOf(record: DuplexRecord, tx: Transaction, confirmations: number): Settlement {
    const channel = this.peer.channelOf(record);
    const valueOf = (script: Uint8Array) => tx.outs.filter((o) => equalBytes(o.script, script)).reduce((s, o) => s + o.value, 0n);
    const valueASat = valueOf(channel.scriptA);
    const valueBSat = equalBytes(channel.scriptB, channel.scriptA) ? 0n : valueOf(channel.scriptB);
    const txid = tx.getId();
    const rolled = tx.outs.length === 1 && equalBytes(tx.outs[0]!.script, channel.fundingScript);
    const stateIndex = tx.locktime > 0 ? (channel.initialLocktime - tx.locktime) / channel.deltaBlocks : undefined;
    const kind = rolled ? 'rollover' : tx.locktime === 0 ? 'cooperative' : 'unilateral';
    const carried = rolled ? tx.outs[0]!.value : valueASat + valueBSat;
    return {
      txid,
      confirmations,
      kind,
      ...(stateIndex !== undefined && Number.isInteger(stateIndex) ? { stateIndex } : {}),
      valueASat,
      valueBSat,
      feeSat: channel.capacitySat - carried,
    };
  }
}
