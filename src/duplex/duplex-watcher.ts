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
import { txidToHash } from '../protocol/bytes.js';
import { answerRival, planBump, type BumpPlan } from '../protocol/duplex-bump.js';
import { answerMempoolSpend, liveChannel, parseOutpoint, phaseOf, rivalView, settlementOf, type DuplexChannelState, type LiveState, type StateOf } from '../protocol/duplex-machine.js';
import { buildStateTx, completeDuplexSpend, duplexOutputs, DUPLEX_STATE_HASHTYPE, stateLocktime } from '../protocol/duplex-tx.js';
import { closeIsStale } from '../protocol/duplex-unilateral.js';
import { feeForVsize, SEQUENCE_LOCKTIME_RBF } from '../protocol/transactions.js';
import { OPENING_TIMEOUT_BLOCKS } from './duplex-opening.js';
import type { DuplexPeer } from './duplex-peer.js';
import type { DuplexView } from './duplex-view.js';

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

/** A unilateral close being published: the state the watcher pushes and bumps. */
type Publishing = StateOf<'Closing'> & { readonly close: { readonly kind: 'unilateral' } };

function publishing(state: DuplexChannelState | undefined): Publishing | null {
  return state?.type === 'Closing' && state.close.kind === 'unilateral' ? (state as Publishing) : null;
}

export class DuplexWatcher {
  private running = false;
  /** The tip at which a released channel's inputs were last looked up: once per tip, whoever calls check. */
  private readonly releasedProbedAt = new Map<string, number>();

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
   * @throws RangeError for an unknown channel, or one neither open nor closing together.
   */
  async forceClose(channelId: string): Promise<number> {
    const found = this.peer.state(channelId, true);
    if (!found || (found.type !== 'Open' && found.type !== 'Closing' && found.type !== 'Closed')) throw new RangeError(`unknown or unopened duplex channel ${channelId}`);
    const tempId = found.tempId;
    // Under the channel's lock, checked once it is held: a countersignature in flight finishes
    // first, and the close then publishes the state it produced.
    return this.peer.locked(tempId, async () => {
      const state = this.peer.state(tempId);
      if (!state || !(state.type === 'Open' || (state.type === 'Closing' && state.close.kind !== 'unilateral'))) throw new RangeError(`the channel is ${state ? phaseOf(state) : 'unknown'}`);
      const tipHeight = state.fundingConfirmed ? (await this.options.backend.getTip()).height : null;
      return this.closeAlone(tempId, tipHeight, () => this.fundingStatus(state));
    });
  }

  /**
   * {@link forceClose} of a channel checked already, with the tip (null: the funding is not
   * confirmed, nothing to publish yet) and the funding status as its caller reads them. The
   * caller holds the channel's lock, as for every step below that changes the channel.
   */
  private async closeAlone(tempId: string, tipHeight: number | null, readFunding: () => Promise<OutpointStatus>): Promise<number> {
    const state = publishing(await this.peer.apply(tempId, { type: 'force-close' }));
    if (!state) throw new Error(`internal: ${tempId} is not closing alone`);
    const tx = Transaction.fromHex(state.close.txHex);
    if (tipHeight !== null) {
      await this.pushUnilateral(tempId, tipHeight, tipHeight >= tx.locktime, readFunding);
      // The first bump's coin, split off now so it is confirmed if the state gets stuck.
      const after = publishing(this.peer.state(tempId));
      if (after && after.close.txHex === tx.toHex()) await this.prepareNextFeeCoin(after);
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
      for (const { tempId } of this.peer.allStates()) {
        const state = this.peer.state(tempId);
        if (!state) continue; // an abandoned opening forgotten meanwhile
        try {
          await this.checkOne(state, tip.height);
        } catch (err) {
          this.log(`${this.idOf(tempId)}: ${(err as Error).message}`);
        }
      }
    } finally {
      this.running = false;
    }
  }

  private idOf(tempId: string): string {
    const state = this.peer.state(tempId);
    return state && 'channelId' in state ? state.channelId : tempId;
  }

  private async checkOne(state: DuplexChannelState, tipHeight: number): Promise<void> {
    if (phaseOf(state) === 'opening' && tipHeight - state.openedHeight >= OPENING_TIMEOUT_BLOCKS) {
      this.log(`${state.tempId}: opening stalled for ${OPENING_TIMEOUT_BLOCKS} blocks; abandoned`);
      await this.peer.abortOpening(state.tempId); // takes the lock itself
      return;
    }
    // Every change below goes through the channel's lock: a step of the peer (a countersignature
    // waiting for the tip) never sees the channel change under it, and this check sees its result.
    await this.peer.locked(state.tempId, () => this.checkLocked(state.tempId, tipHeight));
  }

  private async checkLocked(tempId: string, tipHeight: number): Promise<void> {
    const first = this.peer.state(tempId);
    if (!first || (first.type !== 'Open' && first.type !== 'Closing')) return;
    // The funding's status, read at most once in this check: its steps may each ask for it, and
    // a read searches the chain from the funding's block. Nothing here confirms a spend, and
    // the steps after a broadcast act only on confirmed spends.
    let read: Promise<OutpointStatus> | null = null;
    const readFunding = (): Promise<OutpointStatus> => (read ??= this.fundingStatus(first));
    if (await this.abortLostSuccessor(first)) return;
    if (first.type === 'Open' && !first.fundingConfirmed) await this.checkFunding(first, tipHeight);
    const state = this.peer.state(tempId);
    if (!state || (state.type !== 'Open' && state.type !== 'Closing')) return; // aborted or forgotten just now
    if (state.fundingConfirmed) {
      const final = tipHeight >= stateLocktime(state.terms, state.current.index);
      const close = state.type === 'Closing' ? state.close : undefined;
      // Still open, or a cooperative close / rollover not confirmed, when the newest state is
      // final: publish it now; waiting would give the other side, Δ blocks later, an older one.
      if (closeIsStale(close, state.current)) {
        // A countersignature came after the close was stored (the peer rebuilds it then too):
        // the newest state is the one to publish.
        this.log(`${state.channelId}: the close holds state ${close?.stateIndex ?? '?'}, the newest is ${state.current.index}: publishing the newest`);
        await this.closeAlone(tempId, tipHeight, readFunding);
      } else if (final && close?.kind !== 'unilateral') {
        this.log(`${state.channelId}: the newest state ${state.current.index} is final at ${tipHeight} and the channel is not settled: publishing it`);
        await this.closeAlone(tempId, tipHeight, readFunding);
      } else if (close?.kind === 'unilateral') {
        await this.pushUnilateral(tempId, tipHeight, final, readFunding);
      } else if (state.type === 'Closing') {
        await this.rebroadcastIfLost(state, readFunding);
      }
      await this.checkSpent(tempId, readFunding);
    } else if (state.type === 'Closing') {
      if (state.close.kind !== 'unilateral') await this.rebroadcastIfLost(state, readFunding);
      await this.checkSpent(tempId, readFunding);
    }
  }

  /** A cooperative close or rollover both signed must reach the chain: send it again if the node lost it. */
  private async rebroadcastIfLost(state: StateOf<'Closing'>, readFunding: () => Promise<OutpointStatus>): Promise<void> {
    const close = state.close;
    if (close.txHex === '') return; // the peer's signature never came: the newest state covers it at its locktime
    if (await this.options.backend.getTransaction(close.txid)) return;
    if ((await readFunding()).state !== 'unspent') return;
    this.log(`${state.channelId}: the node does not have the ${close.kind} ${close.txid}; broadcasting it again`);
    await this.peer.broadcast(close.txHex).catch((err: Error) => this.log(`${close.kind} ${close.txid} refused: ${err.message}`));
  }

  private async checkFunding(state: StateOf<'Open'>, tipHeight: number): Promise<void> {
    const { known } = await this.peer.confirmFunding(state.tempId);
    if (!known && state.role === 'A' && Transaction.fromHex(state.fundingTxHex).hasWitnesses()) {
      this.log(`${state.channelId}: the node lost the funding; broadcasting it again`);
      await this.peer.broadcast(state.fundingTxHex).catch((err: Error) => this.log(`rebroadcast refused: ${err.message}`));
    }
    if (!known && state.role === 'B') await this.releaseUnseenFunding(state, tipHeight);
  }

  /**
   * B: a funding B signed that the node has not seen (not in the mempool, not mined) for
   * OPENING_TIMEOUT_BLOCKS may never come (an opener naming a coin it cannot sign, or one that
   * walked away): B's coins go back to the wallet rather than stay reserved forever. The channel
   * stays open and watched: if A broadcasts the funding late and it confirms first, B's coins
   * are in the channel as agreed; once one of B's coins is spent by anything else, and that spend
   * is RELEASED_SPEND_FINAL_CONFIRMATIONS deep (a reorg could drop a shallower one), the funding
   * can never confirm and the channel is aborted. A channel B put nothing into is forgotten then.
   */
  private async releaseUnseenFunding(state: StateOf<'Open'>, tipHeight: number): Promise<void> {
    if (state.predecessorId !== null) return; // a rollover's channel: its funding is the old channel's close (abortLostSuccessor)
    const since = state.fundingSignedHeight ?? state.openedHeight;
    const timedOut = tipHeight - since >= OPENING_TIMEOUT_BLOCKS;
    if (state.ownInputs.length === 0) {
      // B put nothing in: nothing of B's is at stake (state 0 gives it nothing; if the funding
      // still confirms, A takes its coins back with state 0), and such channels cost their
      // sender nothing: forget it.
      if (timedOut) {
        await this.peer.apply(state.tempId, {
          type: 'abort',
          reason: `the funding is unknown to the node ${tipHeight - since} blocks after B signed state 0, and B put nothing in; forgotten`,
        });
      }
      return;
    }
    if (!state.ownInputsReleased) {
      if (!timedOut) return;
      await this.peer.apply(state.tempId, { type: 'inputs-released' });
      this.log(`${state.channelId}: the funding B signed at ${since} is unknown to the node ${tipHeight - since} blocks later; B's coins are released (the channel opens still if it confirms first)`);
      return;
    }
    if (this.releasedProbedAt.get(state.tempId) === tipHeight) return;
    this.releasedProbedAt.set(state.tempId, tipHeight);
    const fundingTxid = parseOutpoint(state.channelId).txid;
    for (const input of state.ownInputs) {
      const status = await this.options.backend.getOutpointStatus(input, Math.max(0, (state.fundingSignedHeight ?? 1) - 1));
      if (status.state === 'spent' && status.confirmations >= RELEASED_SPEND_FINAL_CONFIRMATIONS && status.spendingTxid !== fundingTxid) {
        await this.peer.apply(state.tempId, { type: 'abort', reason: `aborted: B's coin ${input.txid}:${input.vout} was spent by ${status.spendingTxid} ${status.confirmations} blocks deep; the funding can never confirm` });
        return;
      }
    }
  }

  private async pushUnilateral(tempId: string, tipHeight: number, final: boolean, readFunding: () => Promise<OutpointStatus>): Promise<void> {
    const state = publishing(this.peer.state(tempId));
    if (!state || !final) return;
    const close = state.close;
    const status = await this.options.backend.getTransaction(close.txid);
    if (status && status.confirmations > 0) return;
    if (!status) {
      // Another spend of the funding output may hold the mempool: the peer's own version of
      // the newest state (with its fee input), an older state, a close. Beat it if we must.
      const rival = await this.mempoolRival(state, readFunding);
      if (rival) {
        const answer = answerMempoolSpend(close, rival, tipHeight, this.options.policy.bumpAfterBlocks);
        switch (answer.type) {
          case 'LetConfirm':
            // It pays us at least what our newest state does (an older state, ours or the peer's):
            // replacing it could only cost us fees. It is let confirm; a worse one is answered then.
            if (answer.firstSeen) {
              await this.peer.apply(tempId, { type: 'rival-seen', height: tipHeight });
              this.log(`${state.channelId}: ${rival.txid} spends the funding in the mempool paying us ${rival.ourInRivalSat} sat, at least our newest state's ${rival.ourNewestSat}: letting it confirm`);
            }
            return;
          case 'Wait':
            if (answer.firstSeen) {
              await this.peer.apply(tempId, { type: 'rival-seen', height: tipHeight });
              this.log(`${state.channelId}: ${rival.txid} (same balances) spends the funding in the mempool; bumping past it only if it does not confirm`);
            }
            return;
          case 'Contest':
            await this.bumpLocked(tempId, tipHeight, { txid: rival.txid, feeSat: rival.feeSat, vsize: rival.vsize, contest: { ourInRivalSat: rival.ourInRivalSat, ourNewestSat: rival.ourNewestSat, ownOlderVersion: answer.ownOlderVersion } });
            return;
          case 'BumpPast':
            await this.bumpLocked(tempId, tipHeight, rival);
            return;
        }
      }
      try {
        await this.peer.broadcast(close.txHex);
        await this.peer.apply(tempId, { type: 'close-broadcast', height: tipHeight });
        this.log(`${state.channelId}: published state ${close.stateIndex ?? '?'} (${close.txid})`);
      } catch (err) {
        this.log(`${state.channelId}: state ${close.stateIndex ?? '?'} refused: ${(err as Error).message}`);
      }
      return;
    }
    if (close.broadcastHeight === undefined) {
      await this.peer.apply(tempId, { type: 'close-broadcast', height: tipHeight });
    } else if (tipHeight - close.broadcastHeight >= this.options.policy.bumpAfterBlocks) {
      await this.bumpLocked(tempId, tipHeight, { feeSat: close.feeSat, vsize: Transaction.fromHex(close.txHex).virtualSize() });
    }
  }

  /** The unconfirmed transaction spending the funding output, if it is not ours, with its fee. */
  private async mempoolRival(
    state: Publishing,
    readFunding: () => Promise<OutpointStatus>,
  ): Promise<{ txid: string; feeSat: bigint; vsize: number; sameState: boolean; ourInRivalSat: bigint; ourNewestSat: bigint } | null> {
    const spent = await readFunding();
    if (spent.state !== 'spent' || spent.confirmations > 0 || spent.spendingTxid === state.close.txid) return null;
    const rival = await this.options.backend.getTransaction(spent.spendingTxid);
    if (!rival) return null;
    const tx = Transaction.fromHex(rival.hex);
    // The node has every parent of a transaction in its mempool (the funding on chain, the rest
    // on chain or in the mempool); were one missing, the rival still stands, its fee unknown.
    const feeSat = (await transactionFeeSat(this.options.backend, tx)) ?? 0n;
    return { txid: spent.spendingTxid, feeSat, vsize: tx.virtualSize(), ...rivalView(liveChannel(state), state.role, state.current, tx) };
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
  bump(view: Pick<DuplexView, 'tempId'>, tipHeight: number, rival?: Replaced): Promise<string | null> {
    return this.peer.locked(view.tempId, () => this.bumpLocked(view.tempId, tipHeight, rival));
  }

  /** {@link bump}, the channel's lock held. */
  private async bumpLocked(tempId: string, tipHeight: number, rival?: Replaced): Promise<string | null> {
    const state = publishing(this.peer.state(tempId));
    if (!state) throw new RangeError('only a published state is bumped');
    const { policy, wallet } = this.options;
    const plan = this.planNextBump(state, rival);
    if (!plan) {
      this.log(`${state.channelId}: state ${state.current.index} is at the fee ceiling of ${policy.maxFeeRateSatPerVb} sat/vB`);
      return null;
    }
    const reservation = `bump:${state.channelId}:${plan.feeRateSatPerVb}`;
    const channel = liveChannel(state);
    const stateFeeSat = duplexOutputs(channel, state.current, channel.stateFeeRateSatPerVb).feeSat;
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
      await this.prepareFeeCoin(state, plan);
      return null;
    }
    if (coin.valueSat > plan.coinSat) {
      this.log(`${state.channelId}: ${rival?.txid ?? 'a rival'} (an older state paying us less) holds the mempool; replacing it now with a fee coin of ${coin.valueSat} sat, ${coin.valueSat - plan.coinSat} sat over the plan (no coin of exactly ${plan.coinSat} sat, and waiting a block for one could lose more)`);
    }
    const tx = buildStateTx(channel, state.current);
    tx.addInput(txidToHash(coin.outpoint.txid), coin.outpoint.vout, SEQUENCE_LOCKTIME_RBF);
    const signed = completeDuplexSpend(channel, tx, state.current.sigA, state.current.sigB, DUPLEX_STATE_HASHTYPE);
    for (const { index, stack } of wallet.signContribution(signed, [1])) signed.setWitness(index, stack);
    try {
      await this.peer.broadcast(signed.toHex());
    } catch (err) {
      await wallet.release(reservation); // the coin stays ours for the next try
      await this.options.saveWallet();
      this.log(`${state.channelId}: bump of state ${state.current.index} refused: ${(err as Error).message}`);
      return null;
    }
    // Rounded up, so the next step's +1 sat/vB really is above this version's rate. The version
    // this one replaced is gone from the mempool: the step frees its fee coin.
    const feeSat = stateFeeSat + coin.valueSat;
    const after = publishing(
      await this.peer.apply(tempId, { type: 'bumped', txid: signed.getId(), txHex: signed.toHex(), feeSat, feeRateSatPerVb: Math.ceil(Number(feeSat) / signed.virtualSize()), height: tipHeight, reservation }),
    );
    await this.options.saveWallet();
    this.log(`${state.channelId}: bumped state ${state.current.index} to ${plan.feeRateSatPerVb} sat/vB with a fee coin of ${coin.valueSat} sat (${signed.getId()})`);
    if (after) await this.prepareNextFeeCoin(after);
    return signed.getId();
  }

  /**
   * The next bump of the published state: +25 % (at least +1 sat/vB) over its rate, above the
   * replaced version's rate too (BIP125), up to the ceiling. @returns null at the ceiling.
   */
  private planNextBump(state: Publishing, replaced?: Replaced): BumpPlan | null {
    const close = state.close;
    const ceiling = this.options.policy.maxFeeRateSatPerVb;
    // The lowest whole rate strictly above the replaced version's (338 sat in 168 vB is 2.01: 3).
    const replacedRate = replaced ? Number(replaced.feeSat) / replaced.vsize : 0;
    const rate = Math.min(ceiling, Math.max(bumpedFeeRate(close.feeRateSatPerVb, ceiling), Math.floor(replacedRate) + 1));
    if (rate <= close.feeRateSatPerVb && rate <= replacedRate) return null;
    const plan = planBump(liveChannel(state), state.current, rate, replaced);
    return plan.feeSat > feeForVsize(plan.vsize, ceiling) ? null : plan;
  }

  /**
   * Splits off now the fee coin the next bump of our published version will need, so that it is
   * confirmed when the bump is due (a replacement may not spend a new unconfirmed output).
   */
  private async prepareNextFeeCoin(state: Publishing): Promise<void> {
    // What pushUnilateral passes as the replaced version, so the plans match to the satoshi.
    const plan = this.planNextBump(state, { feeSat: state.close.feeSat, vsize: Transaction.fromHex(state.close.txHex).virtualSize() });
    if (plan) await this.prepareFeeCoin(state, plan);
  }

  /** A wallet coin of exactly `plan.coinSat`: kept if the wallet has one free, else split off (change back to the wallet). */
  private async prepareFeeCoin(state: LiveState, plan: BumpPlan): Promise<void> {
    const { wallet, policy, backend } = this.options;
    const have = wallet.coins().find((c) => !c.reserved && !c.coinbase && c.valueSat === plan.coinSat);
    if (have) {
      if (have.confirmations < 1) this.log(`${state.channelId}: the fee coin of ${plan.coinSat} sat is not confirmed yet; bumping once it is`);
      return;
    }
    // The split must confirm soon: it pays the node's next-block rate.
    const rate = Math.min(policy.maxFeeRateSatPerVb, Math.ceil(await resolveFeeRate(backend, 1, this.options.fallbackFeeRateSatPerVb)));
    try {
      const split = await wallet.send(wallet.receiveAddress(), plan.coinSat, rate);
      this.log(`${state.channelId}: split a fee coin of ${plan.coinSat} sat off for a bump to ${plan.feeRateSatPerVb} sat/vB (${split.txid})`);
    } catch (err) {
      this.log(`${state.channelId}: cannot split a fee coin of ${plan.coinSat} sat: ${(err as Error).message}`);
    } finally {
      await this.options.saveWallet();
    }
  }

  /** Whether, and by what, the channel's funding output is spent (searched from its block on). */
  private fundingStatus(state: LiveState): Promise<OutpointStatus> {
    return this.options.backend.getOutpointStatus(parseOutpoint(state.channelId), state.fundingHeight ?? 0);
  }

  /**
   * A channel opened by a rollover whose predecessor was settled by anything else: its funding
   * (that rollover) can never confirm now. Read from the predecessor on each check (channels are
   * checked oldest first), so a restart between the two saves loses nothing.
   * @returns whether it was aborted now.
   */
  private async abortLostSuccessor(state: StateOf<'Open' | 'Closing'>): Promise<boolean> {
    if (state.type !== 'Open' || state.fundingConfirmed || state.predecessorId === null) return false;
    const predecessor = this.peer.state(state.predecessorId);
    if (predecessor?.type !== 'Closed') return false;
    const settled = predecessor.settlement;
    if (settled.txid === parseOutpoint(state.channelId).txid) return false;
    await this.peer.apply(state.tempId, { type: 'abort', reason: `aborted: ${state.predecessorId} was settled by ${settled.kind} ${settled.txid}, not by the rollover that funds this channel` });
    return true;
  }

  private async checkSpent(tempId: string, readFunding: () => Promise<OutpointStatus>): Promise<void> {
    const state = this.peer.state(tempId);
    if (!state || (state.type !== 'Open' && state.type !== 'Closing')) return;
    const status = await readFunding();
    if (status.state !== 'spent' || status.confirmations < 1) return;
    const spend = await this.options.backend.getTransaction(status.spendingTxid);
    if (!spend) return;
    // A rollover's new channel that lost the race is aborted under its own lock (abortLostSuccessor).
    const settlement = settlementOf(liveChannel(state), Transaction.fromHex(spend.hex), status.confirmations);
    await this.peer.apply(tempId, { type: 'settled', settlement });
    await this.releaseFeeCoins(state);
  }

  /**
   * Once the channel is settled, the fee coins held for its bumps are free again: the version
   * that spent one may have lost to another spend of the funding (the peer's version, an older
   * state), and the wallet drops only reservations whose coins were spent.
   */
  private async releaseFeeCoins(state: StateOf<'Open' | 'Closing'>): Promise<void> {
    const { wallet } = this.options;
    const prefix = `bump:${state.channelId}:`;
    const names = new Set(wallet.state().reservations.map((r) => r.txid).filter((name) => name.startsWith(prefix)));
    if (state.type === 'Closing' && state.close.bumpReservation) names.add(state.close.bumpReservation);
    if (names.size === 0) return;
    for (const name of names) await wallet.release(name);
    await this.options.saveWallet();
    this.log(`${state.channelId}: released ${names.size} fee coin reservation(s) of its bumps`);
  }
}
