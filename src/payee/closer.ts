/**
 * The payee's closer: at `expiry − closeMarginBlocks` a channel stops taking payments (state
 * Expiring: from there on the payer's refund could beat the close), and every channel with
 * something paid is closed then, in batches (one transaction for all channels due together,
 * see protocol/batch-close.ts). It tracks each close until it has `closeConfirmations`,
 * replaces it with a higher fee when it has waited `bumpAfterBlocks` unconfirmed (BIP125, paid
 * from the payee's share, never above `maxFeeRateSatPerVb`), and when a close left the mempool
 * (evicted, displaced by a payer's refund, reorged away) closes its channels anew at a higher
 * rate, each funding looked at on its own: one channel never holds a batch back, and a refund
 * in the mempool is outbid while the close can still win.
 *
 * It also notices a funding output spent by the payer's refund (the payee never closed, e.g.
 * nothing was paid) and marks the channel settled.
 *
 * Everything runs from `tick(tip)`, called on every new tip and once at start, so a payee that
 * was offline catches up on its first tick.
 */
import { Transaction } from 'bitcoinjs-lib';
import { BroadcastRejectedError, type BlockTip, type ChainBackend, type OutpointStatus } from '../chain/backend.js';
import { bumpedFeeRate, resolveFeeRate } from '../chain/fee-rate.js';
import { transactionFeeSat } from '../chain/tx-fee.js';
import type { Secp256k1 } from '../crypto/secp256k1.js';
import { batchCloseVsize, closeItemsWorthClosing, outbiddingFeeRate, signBatchClose, type CloseItem, type SignedBatchClose } from '../protocol/batch-close.js';
import { equalBytes } from '../protocol/bytes.js';
import type { Channel } from '../protocol/channel.js';
import type { CloseRecord, PayeeInput, PayeeState } from '../protocol/payee-machine.js';

export interface CloserPolicy {
  /** Close no later than `expiry − closeMarginBlocks`. */
  readonly closeMarginBlocks: number;
  /** A close is done (the channel Closed) at this many confirmations. */
  readonly closeConfirmations: number;
  /** Replace an unconfirmed close after this many blocks. */
  readonly bumpAfterBlocks: number;
  /** The fee-rate ceiling for closes and bumps. */
  readonly maxFeeRateSatPerVb: number;
  /** Most channels in one close transaction (standardness: 100 kvB per transaction). */
  readonly maxBatch: number;
  /** Confirmation target asked of the node's fee estimator. */
  readonly targetBlocks: number;
  /** Lowest height a funding can have been confirmed at, given its expiry (for spend searches). */
  readonly maxExpiryBlocks: number;
}

/** A channel as the closer scans it: the summary fields are read first, `state` only if needed. */
export interface CloserEntry {
  readonly tempId: string;
  readonly type: PayeeState['type'];
  readonly expiryHeight: number | null;
  /** Something was paid (there is a payment to close with). */
  readonly paid: boolean;
  readonly state: PayeeState;
}

/** What the closer needs from the payee service. */
export interface CloserHost {
  /** Every channel. */
  entries(): Iterable<CloserEntry>;
  /** Steps a channel (in its queue). @throws what the step throws. */
  step(tempId: string, input: PayeeInput): Promise<void>;
  /**
   * Puts a channel back to `state` (and stores it), undoing a close the node refused, if the
   * channel is still in the Closing state of close `closeTxid` (anything else came after it and
   * is kept).
   */
  restore(tempId: string, state: PayeeState, closeTxid: string): Promise<void>;
  privateKey(index: number): Uint8Array;
}

type Closable = { readonly tempId: string; readonly state: Extract<PayeeState, { type: 'Open' | 'Expiring' | 'Closing' }> };

export class Closer {
  private ticking = false;
  /** The close in flight (see closeBatch): settles, never rejects. */
  private closing: Promise<void> = Promise.resolve();
  /**
   * The first pass after a start checks every open channel's funding, not only expired ones: a
   * payee that died between broadcasting a close and storing it must not take payments on a
   * channel that is already closed on chain.
   */
  private firstPass = true;
  /** Channels logged as not worth a place in a batch (each logged once; cleared past 10,000). */
  private readonly leftOut = new Set<string>();

  constructor(
    private readonly host: CloserHost,
    private readonly backend: ChainBackend,
    private readonly secp: Secp256k1,
    private readonly payoutScript: Uint8Array,
    private readonly policy: CloserPolicy,
    private readonly fallbackFeeRateSatPerVb: number,
    private readonly log: (line: string) => void,
  ) {}

  /**
   * Closes these channels now, in one transaction, at `feeRateSatPerVb` (default: the node's
   * estimate). Closing channels that are already closing replaces their close (a fee bump).
   * @throws RangeError if a channel cannot be closed (not open, nothing paid, uneconomic).
   * @throws BroadcastRejectedError if the node refuses the close (the channels stay as they were).
   */
  async close(tempIds: readonly string[], feeRateSatPerVb?: number): Promise<SignedBatchClose> {
    this.closableNow(tempIds); // unknown or unclosable channels are refused before any node call
    const rate = feeRateSatPerVb ?? (await this.feeRate());
    return this.closeBatch(this.closableNow(tempIds), rate);
  }

  /**
   * The channels' states as they are now. Read right before a close is built: a payment
   * acknowledged while the closer waited on the node must be in the close (otherwise the close
   * pays an older total, and undoing a refused close would forget acknowledged payments).
   * @throws RangeError if a channel is unknown or cannot be closed.
   */
  private closableNow(tempIds: readonly string[]): Closable[] {
    const all = new Map([...this.host.entries()].map((e) => [e.tempId, e]));
    return tempIds.map((id) => {
      const e = all.get(id);
      if (!e) throw new RangeError(`unknown channel ${id}`);
      const state = e.state;
      if (state.type !== 'Open' && state.type !== 'Expiring' && state.type !== 'Closing') throw new RangeError(`cannot close a channel in state ${state.type}`);
      return { tempId: id, state };
    });
  }

  /** One pass over every channel (see the module comment). Never throws; logs and retries next tick. */
  async tick(tip: BlockTip): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      await this.expire(tip);
      await this.settle(tip);
      this.firstPass = false;
      await this.closeDue(tip);
      await this.bumpOrRebroadcast(tip);
    } catch (err) {
      this.log(`closer: ${err instanceof Error ? err.message : String(err)} (retrying on the next block)`);
    } finally {
      this.ticking = false;
    }
  }

  private async feeRate(): Promise<number> {
    return Math.min(this.policy.maxFeeRateSatPerVb, await resolveFeeRate(this.backend, this.policy.targetBlocks, this.fallbackFeeRateSatPerVb));
  }

  /** @throws RangeError if nothing was paid on the channel. */
  private itemOf({ state }: Closable): CloseItem {
    if (state.signature === null) throw new RangeError(`nothing was paid on ${state.channel.id}; the payer will refund`);
    return { channel: state.channel, totalSat: state.paidSat, signature: state.signature, payeePrivateKey: this.host.privateKey(state.keyIndex) };
  }

  /**
   * The channels that pay for their place in a batch at `feeRateSatPerVb` (more than the fee on
   * the bytes each adds: closeItemsWorthClosing); the others are left to their payers' refunds,
   * logged once per channel.
   */
  private worthBatching(channels: readonly Closable[], feeRateSatPerVb: number): Closable[] {
    const items = channels.map((c) => ({ ...this.itemOf(c), closable: c }));
    const { worth, notWorth } = closeItemsWorthClosing(items, this.payoutScript, feeRateSatPerVb);
    if (this.leftOut.size > 10_000) this.leftOut.clear(); // only for logging once: bounded
    const fresh = notWorth.filter((i) => !this.leftOut.has(i.channel.id));
    for (const i of fresh) this.leftOut.add(i.channel.id);
    if (fresh.length > 0) {
      const shown = fresh.slice(0, 3).map((i) => `${i.channel.id} (${i.totalSat} sat)`);
      this.log(`closer: ${fresh.length} channel(s) paid less than the fee on their own bytes at ${feeRateSatPerVb} sat/vB, left to their payers' refunds: ${shown.join(', ')}${fresh.length > 3 ? ', …' : ''}`);
    }
    return worth.map((i) => i.closable);
  }

  /**
   * One close at a time, from a close request or a pass: two closes of one channel in flight
   * could each step it, both be refused, and restore each other's never-broadcast close.
   */
  private closeBatch(given: readonly Closable[], feeRateSatPerVb: number): Promise<SignedBatchClose> {
    const run = this.closing.then(() => this.closeBatchAlone(given, feeRateSatPerVb));
    this.closing = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async closeBatchAlone(given: readonly Closable[], feeRateSatPerVb: number): Promise<SignedBatchClose> {
    const tip = await this.backend.getTip();
    // After the last await before the close steps: the newest states (see closableNow).
    const targets = this.closableNow(given.map((t) => t.tempId));
    const items = targets.map((t) => this.itemOf(t));
    const batch = signBatchClose(this.secp, items, this.payoutScript, feeRateSatPerVb);
    const record: CloseRecord = {
      txid: batch.txid,
      txHex: batch.txHex,
      feeSat: batch.feeSat,
      vsize: batch.vsize,
      feeRateSatPerVb,
      broadcastHeight: tip.height,
      channels: targets.length,
    };
    // Stored as Closing before the transaction leaves: a crash after the broadcast finds it again.
    // Every step is issued at once, in this turn, so no payment steps between the states read
    // above and the close that replaces them (a Closing channel takes none).
    await Promise.all(targets.map((t) => this.host.step(t.tempId, { type: 'close', close: record })));
    try {
      await this.backend.broadcast(batch.txHex);
    } catch (err) {
      for (const t of targets) await this.host.restore(t.tempId, t.state, batch.txid);
      throw err;
    }
    for (const t of targets) await this.host.step(t.tempId, { type: 'close-broadcast', txid: batch.txid });
    this.log(`broadcast close ${batch.txid} of ${targets.length} channel(s): ${batch.vsize} vB, fee ${batch.feeSat} sat (${feeRateSatPerVb} sat/vB)`);
    return batch;
  }

  /**
   * Channels that still take payments and whose close deadline has come become Expiring (the
   * machine decides), all at once so that their saves share commits.
   */
  private async expire(tip: BlockTip): Promise<void> {
    const due: string[] = [];
    for (const e of this.host.entries()) {
      if (e.type !== 'Open' && e.type !== 'ZeroConf' && e.type !== 'Suspended') continue;
      if (tip.height >= (e.expiryHeight ?? Infinity) - this.policy.closeMarginBlocks) due.push(e.tempId);
    }
    const results = await Promise.allSettled(due.map((tempId) => this.host.step(tempId, { type: 'tip', height: tip.height })));
    for (const r of results) if (r.status === 'rejected') this.log(`closer: could not stop payments on a channel at its deadline: ${String(r.reason)}`);
  }

  /** Channels whose funding output was spent with enough confirmations become Closed. */
  private async settle(tip: BlockTip): Promise<void> {
    for (const e of this.host.entries()) {
      const watch = e.type === 'Closing' || e.type === 'Suspended' || ((e.type === 'Open' || e.type === 'Expiring') && (this.firstPass || tip.height >= (e.expiryHeight ?? Infinity)));
      if (!watch) continue;
      const { tempId, state } = e;
      if (state.type !== 'Closing' && state.type !== 'Open' && state.type !== 'Expiring' && state.type !== 'Suspended') continue;
      const status = await this.fundingStatus(state.channel);
      if (status.state !== 'spent') continue;
      if (status.confirmations < this.policy.closeConfirmations) {
        // Spent but not settled yet: an open channel takes no more payments on a spent funding.
        if (state.type === 'Open') await this.host.step(tempId, { type: 'funding-unconfirmed' });
        continue;
      }
      const spender = await this.backend.getTransaction(status.spendingTxid);
      const paysUs = spender !== null && Transaction.fromHex(spender.hex).outs.some((o) => equalBytes(o.script, this.payoutScript));
      await this.host.step(tempId, { type: 'settled', txid: status.spendingTxid, by: paysUs ? 'close' : 'refund' });
      this.log(`channel ${state.channel.id} settled by ${paysUs ? 'our close' : "the payer's refund"} ${status.spendingTxid}`);
    }
  }

  /** Expiring channels with something paid (their close deadline has come). */
  private async closeDue(tip: BlockTip): Promise<void> {
    const due: Closable[] = [];
    for (const e of this.host.entries()) {
      if (e.type !== 'Expiring' || !e.paid) continue;
      const state = e.state;
      if (state.type === 'Expiring') due.push({ tempId: e.tempId, state });
    }
    if (due.length > 0) await this.closeChecked(due, await this.feeRate(), tip);
  }

  /**
   * Closes channels that have no close in the mempool nor on chain (due ones, and ones whose
   * close was lost or displaced), after looking at each one's funding, so that no channel holds
   * the others back:
   * - unspent: closed in batches, except a channel whose payer can already refund (tip ≥
   *   expiry: the refund is final in the next block), which is closed alone: its refund could
   *   displace a batch at any time;
   * - spent by another transaction still in the mempool (the payer's refund, most likely):
   *   closed alone, at a fee that replaces that spend (BIP125), while the close can still win;
   * - spent on chain: nothing to close; settle() records how it ended.
   */
  private async closeChecked(channels: readonly Closable[], feeRateSatPerVb: number, tip: BlockTip): Promise<void> {
    const batched: Closable[] = [];
    const alone: Closable[] = [];
    const contested: { target: Closable; spenderTxid: string }[] = [];
    for (const c of channels) {
      const status = await this.fundingStatus(c.state.channel);
      if (status.state === 'unspent') (tip.height >= c.state.channel.expiryHeight ? alone : batched).push(c);
      else if (status.state === 'spent' && status.confirmations === 0) contested.push({ target: c, spenderTxid: status.spendingTxid });
    }
    const worth = this.worthBatching(batched, feeRateSatPerVb);
    for (let i = 0; i < worth.length; i += this.policy.maxBatch) await this.closeSplitting(worth.slice(i, i + this.policy.maxBatch), feeRateSatPerVb);
    for (const c of alone) await this.closeSplitting([c], feeRateSatPerVb);
    for (const { target, spenderTxid } of contested) await this.outbid(target, spenderTxid, feeRateSatPerVb);
  }

  /** Whether the funding is spent, searching from the lowest height it can have confirmed at. */
  private fundingStatus(channel: Channel): Promise<OutpointStatus> {
    return this.backend.getOutpointStatus(channel.funding, Math.max(0, channel.expiryHeight - this.policy.maxExpiryBlocks));
  }

  /**
   * Closes `targets` in one transaction; if the node refuses it, each half on its own, and so on
   * down to single channels: one channel the node will not close (its funding spent meanwhile)
   * costs the others a few refused broadcasts, not their close.
   */
  private async closeSplitting(targets: readonly Closable[], feeRateSatPerVb: number): Promise<void> {
    try {
      await this.closeBatch(targets, feeRateSatPerVb);
    } catch (err) {
      if (err instanceof BroadcastRejectedError && targets.length > 1) {
        const half = Math.ceil(targets.length / 2);
        await this.closeSplitting(targets.slice(0, half), feeRateSatPerVb);
        await this.closeSplitting(targets.slice(half), feeRateSatPerVb);
        return;
      }
      this.log(`closer: could not close ${targets.length} channel(s): ${err instanceof BroadcastRejectedError ? err.reason : String(err)}`);
    }
  }

  /**
   * Replaces `spenderTxid`, a conflicting spend of `target`'s funding in the mempool (the
   * payer's refund), with a close of that channel alone: a higher fee rate and a higher fee
   * (BIP125), never above the ceiling, and only while the close still pays us above dust.
   */
  private async outbid(target: Closable, spenderTxid: string, feeRateSatPerVb: number): Promise<void> {
    const conflict = await this.backend.getTransaction(spenderTxid);
    if (conflict === null || conflict.confirmations > 0) return; // gone, or mined: the next tick sees which
    const tx = Transaction.fromHex(conflict.hex);
    // Our own close (stored state restored after a broadcast that did reach the node): it pays
    // us already, and settle() will see it confirm.
    if (tx.outs.some((o) => equalBytes(o.script, this.payoutScript))) return;
    const conflictFeeSat = await transactionFeeSat(this.backend, tx);
    const vsize = batchCloseVsize([this.itemOf(target)], this.payoutScript);
    const needed = conflictFeeSat === null ? bumpedFeeRate(feeRateSatPerVb, this.policy.maxFeeRateSatPerVb) : outbiddingFeeRate(conflictFeeSat, tx.virtualSize(), vsize);
    const rate = Math.max(feeRateSatPerVb, needed);
    if (rate > this.policy.maxFeeRateSatPerVb) {
      this.log(`closer: ${spenderTxid} spends channel ${target.state.channel.id}; replacing it takes ${rate} sat/vB, above the ceiling`);
      return;
    }
    try {
      const close = await this.closeBatch([target], rate);
      this.log(`replaced ${spenderTxid}, a conflicting spend of channel ${target.state.channel.id}, with close ${close.txid} at ${rate} sat/vB`);
    } catch (err) {
      this.log(`closer: could not replace ${spenderTxid} on channel ${target.state.channel.id}: ${err instanceof BroadcastRejectedError ? err.reason : String(err)}`);
    }
  }

  /**
   * A close neither in the mempool nor on the best chain: evicted (a full mempool, a fee below
   * the node's minimum), never broadcast (we died between storing and broadcasting it), its
   * block reorged away and not taken back, or displaced by a conflicting spend of one of its
   * fundings (a payer's refund after its expiry). The same bytes are offered once; if the node
   * refuses them, the channels are closed again at a higher rate, each funding looked at anew:
   * the same bytes would be refused every block until the payers can refund.
   */
  private async replaceLost(tip: BlockTip, close: CloseRecord, channels: readonly Closable[]): Promise<void> {
    try {
      await this.backend.broadcast(close.txHex);
      this.log(`rebroadcast close ${close.txid}`);
      return;
    } catch (err) {
      if (!(err instanceof BroadcastRejectedError)) {
        this.log(`closer: rebroadcast of ${close.txid} failed: ${String(err)} (retrying on the next block)`);
        return;
      }
      this.log(`closer: close ${close.txid} is gone and refused again (${err.reason}): closing its ${channels.length} channel(s) anew`);
    }
    const rate = Math.max(bumpedFeeRate(close.feeRateSatPerVb, this.policy.maxFeeRateSatPerVb), await this.feeRate());
    await this.closeChecked(channels, rate, tip);
  }

  /** Unconfirmed closes: broadcast again if the node lost them, replace them if they waited too long. */
  private async bumpOrRebroadcast(tip: BlockTip): Promise<void> {
    const byClose = new Map<string, Closable[]>();
    for (const e of this.host.entries()) {
      if (e.type !== 'Closing') continue;
      const state = e.state;
      if (state.type !== 'Closing') continue;
      const list = byClose.get(state.close.txid) ?? [];
      list.push({ tempId: e.tempId, state });
      byClose.set(state.close.txid, list);
    }
    for (const [txid, channels] of byClose) {
      const close = (channels[0]!.state as Extract<PayeeState, { type: 'Closing' }>).close;
      const status = await this.backend.getTransaction(txid);
      if (status && status.confirmations > 0) continue; // confirmed; settle() finishes it
      if (status === null) {
        await this.replaceLost(tip, close, channels);
        continue;
      }
      if (tip.height - close.broadcastHeight < this.policy.bumpAfterBlocks) continue;
      if (close.feeRateSatPerVb >= this.policy.maxFeeRateSatPerVb) continue; // at the ceiling: wait
      const rate = bumpedFeeRate(close.feeRateSatPerVb, this.policy.maxFeeRateSatPerVb);
      // Every channel of the close stays in its replacement, even one that no longer pays for
      // its bytes at the higher rate: BIP125 wants a higher absolute fee than the close's, which a
      // smaller replacement may not reach (refused on every block, the close stuck at its old
      // rate), and a channel left out would stay Closing on a close that never confirms.
      try {
        const bumped = await this.closeBatch(channels, rate);
        this.log(`replaced close ${txid} with ${bumped.txid} at ${rate} sat/vB after ${tip.height - close.broadcastHeight} blocks unconfirmed`);
      } catch (err) {
        this.log(`closer: fee bump of ${txid} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
}
