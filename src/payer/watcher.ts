/**
 * The payer's watcher: the payer's recourse when the payee defaults (the seed's 总结), run on
 * every new tip.
 *
 * - Once the refund is final (tip ≥ expiry: a transaction with nLockTime = expiry may enter the
 *   next block) and the funding is still unspent, it broadcasts the refund at the node's fee rate.
 * - If its refund waits unconfirmed for `bumpAfterBlocks`, it re-signs it with a higher fee
 *   (the payee's v1 signature commits to nothing but the input and the locktime, and v2 needs no
 *   payee signature) and replaces it (BIP125), up to `maxFeeRateSatPerVb`.
 * - When the funding is spent with a confirmation — by the payee's close or by our refund — it
 *   records the settlement with what the chain paid the payer.
 */
import { Transaction } from 'bitcoinjs-lib';
import { BroadcastRejectedError, type BlockTip, type ChainBackend } from '../chain/backend.js';
import { bumpedFeeRate, resolveFeeRate } from '../chain/fee-rate.js';
import { equalBytes } from '../protocol/bytes.js';
import type { Channel } from '../protocol/channel.js';
import { isExpiring, payerPolicy } from '../protocol/policy.js';
import type { PayerClient } from './payer-client.js';

export interface PayerWatcherOptions {
  readonly backend: ChainBackend;
  readonly fallbackFeeRateSatPerVb: number;
  readonly maxFeeRateSatPerVb: number;
  readonly bumpAfterBlocks: number;
  /**
   * Blocks before expiry from which an unclosed channel is expiring (PayerPolicy's
   * expiryMarginBlocks, the same margin a paying client uses to stop reusing it): the watcher
   * says so once. Default that policy's default for the network.
   */
  readonly expiryMarginBlocks?: number;
  readonly log: (line: string) => void;
}

/** What one tick did, for callers that report progress. */
export type WatchEvent =
  | { readonly type: 'waiting'; readonly blocksToExpiry: number }
  | { readonly type: 'refund-broadcast'; readonly txid: string; readonly feeRateSatPerVb: number }
  | { readonly type: 'refund-bumped'; readonly txid: string; readonly feeRateSatPerVb: number }
  | { readonly type: 'spent-unconfirmed'; readonly txid: string }
  | { readonly type: 'settled'; readonly by: 'close' | 'refund'; readonly txid: string; readonly payerValueSat: bigint }
  | { readonly type: 'idle' };

/**
 * What a transaction spending the funding is: our refund (locktime = expiry, one output to the
 * payer script) or the payee's close; and what it pays the payer (both pay at the payer script).
 */
export function spendOf(channel: Channel, txHex: string): { by: 'close' | 'refund'; payerValueSat: bigint } {
  const tx = Transaction.fromHex(txHex);
  const ours = (script: Uint8Array) => equalBytes(script, channel.payerScript);
  const payerValueSat = tx.outs.filter((o) => ours(o.script)).reduce((sum, o) => sum + o.value, 0n);
  const by = tx.locktime === channel.expiryHeight && tx.outs.length === 1 && ours(tx.outs[0]!.script) ? 'refund' : 'close';
  return { by, payerValueSat };
}

/**
 * Before a refund by hand: the funding already spent means there is nothing to refund; says by
 * what, in which transaction, rather than let the node answer "orphan transaction". Our own
 * refund still unconfirmed may be replaced (a higher fee), so it passes.
 * @throws Error naming the spending transaction when the funding is spent otherwise.
 */
export async function assertRefundable(backend: ChainBackend, channel: Channel): Promise<void> {
  const status = await backend.getOutpointStatus(channel.funding, Math.max(0, channel.expiryHeight - 5000));
  if (status.state !== 'spent') return;
  const spender = await backend.getTransaction(status.spendingTxid);
  const by = spender ? spendOf(channel, spender.hex).by : 'close';
  if (by === 'refund' && status.confirmations < 1) return;
  const where = `${status.spendingTxid} (${status.confirmations >= 1 ? `${status.confirmations} confirmation(s)` : 'unconfirmed'})`;
  throw new Error(
    by === 'refund'
      ? `channel ${channel.id} was already refunded, in ${where}: nothing to refund`
      : `channel ${channel.id} was closed by the payee, in ${where}: nothing to refund ('paychan payer watch' records what it paid you)`,
  );
}

export class PayerWatcher {
  /** Our refund in flight: its txid, fee rate and the tip it was broadcast at. */
  private refund: { txid: string; feeRateSatPerVb: number; height: number } | null = null;
  private warnedExpiring = false;

  constructor(
    private readonly client: PayerClient,
    private readonly options: PayerWatcherOptions,
  ) {}

  /** One pass. @throws ChainBackendError if the node cannot be asked (retry on the next tip). */
  async tick(tip: BlockTip): Promise<WatchEvent> {
    const state = this.client.state;
    if (!state || !('channel' in state) || (state.type === 'Closed' && state.settlement)) return { type: 'idle' };
    const channel = state.channel;
    const status = await this.options.backend.getOutpointStatus(channel.funding, Math.max(0, channel.expiryHeight - 5000));
    if (status.state === 'spent') {
      if (status.confirmations < 1) return this.maybeBump(tip, status.spendingTxid);
      const spender = await this.options.backend.getTransaction(status.spendingTxid);
      if (!spender) return { type: 'spent-unconfirmed', txid: status.spendingTxid };
      const { by, payerValueSat } = spendOf(channel, spender.hex);
      this.client.settle({ by, txid: status.spendingTxid, payerValueSat });
      this.options.log(`channel ${channel.id} settled by ${by === 'close' ? "the payee's close" : 'our refund'} ${status.spendingTxid}: ${payerValueSat} sat to us`);
      return { type: 'settled', by, txid: status.spendingTxid, payerValueSat };
    }
    if (status.state !== 'unspent') return { type: 'idle' };
    if (tip.height < channel.expiryHeight) {
      if (!this.warnedExpiring && isExpiring(channel.expiryHeight, tip.height, this.options.expiryMarginBlocks ?? payerPolicy({ network: channel.network }).expiryMarginBlocks)) {
        this.warnedExpiring = true;
        this.options.log(`channel ${channel.id} is ${channel.expiryHeight - tip.height} block(s) from expiry and the payee has not closed it: pay no more on it; the refund goes out at block ${channel.expiryHeight}`);
      }
      return { type: 'waiting', blocksToExpiry: channel.expiryHeight - tip.height };
    }
    // Final and unspent: the payee did not close in time.
    const rate = Math.min(this.options.maxFeeRateSatPerVb, await resolveFeeRate(this.options.backend, 2, this.options.fallbackFeeRateSatPerVb));
    const refund = await this.client.refund(rate);
    this.refund = { txid: refund.txid, feeRateSatPerVb: rate, height: tip.height };
    this.options.log(`the payee did not close channel ${channel.id} by its expiry: refund ${refund.txid} broadcast at ${rate} sat/vB`);
    return { type: 'refund-broadcast', txid: refund.txid, feeRateSatPerVb: rate };
  }

  private async maybeBump(tip: BlockTip, spendingTxid: string): Promise<WatchEvent> {
    const mine = this.refund;
    if (!mine || mine.txid !== spendingTxid) return { type: 'spent-unconfirmed', txid: spendingTxid };
    if (tip.height - mine.height < this.options.bumpAfterBlocks || mine.feeRateSatPerVb >= this.options.maxFeeRateSatPerVb) return { type: 'spent-unconfirmed', txid: spendingTxid };
    const rate = bumpedFeeRate(mine.feeRateSatPerVb, this.options.maxFeeRateSatPerVb);
    try {
      const refund = await this.client.refund(rate);
      this.refund = { txid: refund.txid, feeRateSatPerVb: rate, height: tip.height };
      this.options.log(`refund ${spendingTxid} unconfirmed for ${tip.height - mine.height} blocks: replaced by ${refund.txid} at ${rate} sat/vB`);
      return { type: 'refund-bumped', txid: refund.txid, feeRateSatPerVb: rate };
    } catch (err) {
      this.options.log(`refund fee bump refused: ${err instanceof BroadcastRejectedError ? err.reason : String(err)}`);
      return { type: 'spent-unconfirmed', txid: spendingTxid };
    }
  }
}
