/**
 * The payee's funding watcher: it tells each channel when its funding confirmed, and when it lost
 * its confirmations.
 *
 * - **Watches** (`watch`): a funding waiting for `confirmations` (the machine's
 *   `watch-confirmations` effect, or a stored channel that was waiting when the payee stopped).
 *   Checked on every tip; a due one is stepped `confirmed` once and dropped. A watched funding
 *   the node does not know (the payee died between storing and broadcasting it, or the mempool
 *   evicted it) is handed to the node again while the channel still awaits it, until the
 *   channel's expiry: from then on the payer can take its coins back by its refund, so such a
 *   channel can never be paid on, and its watch is dropped (not its row: it stays
 *   AwaitingConfirmation, packed, and costs no node call per block any more).
 * - **Depth** (`checkDepth`): an open channel's funding is checked every block until it has
 *   {@link DEEP_CONFIRMATIONS}; one that fell below the minimum (reorged out, double-spent)
 *   suspends the channel (`funding-unconfirmed`) and is watched again. After a chain switch
 *   (`chainSwitched`) every funding is checked again, however deep it was.
 *
 * Like the closer (closer.ts) it reads the chain itself and changes channels only through its
 * host, in each channel's own input queue.
 */
import { BroadcastRejectedError, type ChainBackend } from '../chain/backend.js';
import type { PayeeInput, PayeeState } from '../protocol/payee-machine.js';
import { logText } from '../transport/log-text.js';

/** A funding this deep is not watched for reorgs any more. */
export const DEEP_CONFIRMATIONS = 6;

/** A channel as the watcher scans it: `type` is read first, `state` only for open channels. */
export interface WatchedEntry {
  readonly tempId: string;
  readonly type: PayeeState['type'];
  readonly state: PayeeState;
}

/** What the funding watcher needs from the payee service. */
export interface FundingWatcherHost {
  /** Every channel. */
  entries(): Iterable<WatchedEntry>;
  /** One channel, or undefined if the payee has none by that tempId (any more). */
  entry(tempId: string): WatchedEntry | undefined;
  /**
   * Steps a channel with `input` (`confirmed`, `funding-unconfirmed`) after its queued inputs.
   * Never rejects: a refused input is the host's to answer (on the channel's link).
   */
  step(tempId: string, input: PayeeInput): Promise<void>;
}

/** A funding transaction the payee waits to see confirmed. */
interface Watch {
  readonly tempId: string;
  readonly txid: string;
  readonly confirmations: number;
}

export class FundingWatcher {
  private watches: Watch[] = [];
  private checking = false;
  /** A new tip arrived while a check ran. */
  private recheck = false;
  /** Channels whose funding has DEEP_CONFIRMATIONS (in memory: rechecked once after a restart). */
  private readonly deepFundings = new Set<string>();
  /** The newest tip height the service gave ({@link checkWatches}): expired watches are dropped by it. */
  private tipHeight = 0;

  constructor(
    private readonly host: FundingWatcherHost,
    private readonly backend: Pick<ChainBackend, 'getTransaction' | 'broadcast'>,
    /** The minimum confirmations of an open channel's funding (the payee's policy). */
    private readonly minFundingConfirmations: number,
    private readonly log: (line: string) => void,
  ) {}

  /** Waits for `txid` to have `confirmations`, then steps channel `tempId` with `confirmed`. */
  watch(tempId: string, txid: string, confirmations: number): void {
    this.watches.push({ tempId, txid, confirmations });
  }

  /** The chain switched (a reorg, another chain): deep fundings may be gone, check them all again. */
  chainSwitched(): void {
    this.deepFundings.clear();
  }

  /**
   * Open channels whose funding is still shallow are checked every block: a funding that lost
   * its confirmations (reorged out, or double-spent) suspends the channel until it confirms
   * again. Past {@link DEEP_CONFIRMATIONS} a funding is not checked any more.
   */
  async checkDepth(): Promise<void> {
    for (const entry of this.host.entries()) {
      if (entry.type !== 'Open' || this.deepFundings.has(entry.tempId)) continue;
      const state = entry.state;
      if (state.type !== 'Open') continue;
      try {
        const status = await this.backend.getTransaction(state.channel.funding.txid);
        const confirmations = status?.confirmations ?? 0;
        if (confirmations >= DEEP_CONFIRMATIONS) {
          this.deepFundings.add(entry.tempId);
        } else if (confirmations < this.minFundingConfirmations) {
          this.log(`funding ${state.channel.funding.txid} has ${status ? confirmations : 'no'} confirmation(s): channel ${state.channel.id} suspended`);
          await this.host.step(entry.tempId, { type: 'funding-unconfirmed' });
          this.watch(entry.tempId, state.channel.funding.txid, this.minFundingConfirmations);
        }
      } catch (err) {
        this.log(`checking funding of ${state.channel.id} failed: ${String(err)}`);
      }
    }
  }

  /**
   * Checks every watched transaction once (also runs on every new tip). A call while a check
   * runs makes that check run once more when it ends: a block that arrives mid-check must not
   * be skipped (on a quiet chain the next block could be far away).
   */
  async checkWatches(tipHeight?: number): Promise<void> {
    if (tipHeight !== undefined) this.tipHeight = tipHeight;
    if (this.checking) {
      this.recheck = true;
      return;
    }
    this.checking = true;
    try {
      do {
        this.recheck = false;
        await this.checkWatchesOnce();
      } while (this.recheck);
    } finally {
      this.checking = false;
    }
  }

  private async checkWatchesOnce(): Promise<void> {
    try {
      const due: Watch[] = [];
      const dropped: Watch[] = [];
      for (const w of this.watches) {
        const status = await this.backend.getTransaction(w.txid);
        if (status && status.confirmations >= w.confirmations) due.push(w);
        if (status !== null) continue;
        if (this.expiredAwaiting(w)) dropped.push(w);
        else await this.rebroadcastFunding(w.tempId);
      }
      if (due.length === 0 && dropped.length === 0) return;
      this.watches = this.watches.filter((w) => !due.includes(w) && !dropped.includes(w));
      for (const w of due) {
        if (this.host.entry(w.tempId)) await this.host.step(w.tempId, { type: 'confirmed', txid: w.txid });
      }
    } catch (err) {
      this.log(`checking confirmations failed (will retry on the next block): ${String(err)}`);
    }
  }

  /**
   * Whether `w` is the watch of a channel still awaiting its funding, past its expiry (its funding
   * unknown to the node: the caller's check): nothing was or can be paid on it; logged once.
   */
  private expiredAwaiting(w: Watch): boolean {
    const state = this.host.entry(w.tempId)?.state;
    if (state?.type !== 'AwaitingConfirmation' || this.tipHeight < state.channel.expiryHeight) return false;
    this.log(`funding ${w.txid} of channel ${state.channel.id} is unknown to the node and the channel expired at ${state.channel.expiryHeight}: no longer watched (nothing was paid on it)`);
    return true;
  }

  /**
   * A funding we stored but the node does not know (we died between storing and broadcasting
   * it, or it was evicted): hand it to the node again.
   */
  private async rebroadcastFunding(tempId: string): Promise<void> {
    const state = this.host.entry(tempId)?.state;
    if (state?.type !== 'AwaitingConfirmation') return;
    try {
      await this.backend.broadcast(state.fundingTxHex);
      this.log(`rebroadcast funding ${state.channel.funding.txid}`);
    } catch (err) {
      this.log(`funding ${state.channel.funding.txid} refused on rebroadcast: ${logText(err instanceof BroadcastRejectedError ? err.reason : String(err))}`);
    }
  }
}
