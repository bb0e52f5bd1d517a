/**
 * The payee's view of the chain tip, in two readings:
 *
 * - **The notified tip** (`tip`): as the last block notification told it (read from the node at
 *   open). Every payment is checked against {@link TipTracker.knownHeight}, the higher of it and
 *   the tip last read (a notification may lag a read): past a channel's close deadline nothing
 *   is acknowledged, even before the closer's pass over the channels has moved it out of Open.
 *   A new tip that does not extend it is a chain switch ({@link TipTracker.advance}).
 * - **The tip for a cookie** ({@link TipTracker.cookieHeight}): notifications can lag a burst of
 *   blocks (regtest mines ten at once), and a cookie issued at a lagging height would look that
 *   much older when its funding comes, and expire early. So a hello asks the node, at most once
 *   per {@link TIP_READ_MAX_AGE_MS}, one read shared by every hello meanwhile: a flood of hellos
 *   is not a flood of node calls.
 * - **Freshness** ({@link TipTracker.stale}): a block notification says nothing when the node
 *   stops answering (the port's subscription is silent on failures), so the tip could freeze
 *   while the real chain passes a channel's close deadline. Every successful read (a
 *   notification, a hello's read, the service's periodic {@link TipTracker.refresh}) marks the
 *   tip fresh; {@link TipTracker.checkFreshness} flips `stale` once none succeeded for the bound,
 *   and back on the next success, logging each change once. Payments read the flag (no clock
 *   read per payment) and are refused while it is set.
 */
import type { BlockTip, ChainBackend } from '../chain/backend.js';

/** A hello reuses a tip read this recent. */
export const TIP_READ_MAX_AGE_MS = 250;

export class TipTracker {
  /** The tip as last read from the node for a hello, and when (performance.now()). */
  private readTipHeight = 0;
  private tipReadAtMs = Number.NEGATIVE_INFINITY;
  /** The tip read in flight, shared by every hello that arrives meanwhile. */
  private tipRead: Promise<unknown> | null = null;
  /** When a tip was last learned from the node (performance.now()): notified or read. */
  private freshAtMs = performance.now();
  /**
   * No tip was learned for longer than the bound ({@link checkFreshness}): the chain may have
   * moved past what the payee knows. A field, read once per payment.
   */
  stale = false;

  constructor(
    private readonly backend: Pick<ChainBackend, 'getTip' | 'getBlock'>,
    /** The notified tip: a field, read once per payment. */
    public tip: BlockTip,
    private readonly log: (line: string) => void,
    /** How long without a tip learned from the node before the tip counts as stale, ms. */
    private readonly maxTipAgeMs: number = Number.POSITIVE_INFINITY,
  ) {}

  /** A tip was learned from the node now: fresh again (said once if it was stale). */
  private fresh(): void {
    this.freshAtMs = performance.now();
    if (!this.stale) return;
    this.stale = false;
    this.log(`the node answers again (tip ${this.knownHeight()}): payments are taken again`);
  }

  /**
   * Sets {@link stale} when no tip was learned for longer than the bound (said once).
   * @returns whether the tip is stale now.
   */
  checkFreshness(nowMs = performance.now()): boolean {
    if (!this.stale && nowMs - this.freshAtMs > this.maxTipAgeMs) {
      this.stale = true;
      this.log(`no chain tip read from the node for ${Math.round((nowMs - this.freshAtMs) / 1000)} s (last known ${this.knownHeight()}): payments are refused until it answers`);
    }
    return this.stale;
  }

  /** Why a payment is refused while the tip is stale (an error's detail for the payer). */
  staleDetail(): string {
    return `the payee cannot read the chain tip from its node (none for over ${Math.round(this.maxTipAgeMs / 1000)} s): payments are refused until it can; nothing changed, retry later`;
  }

  /**
   * Reads the tip from the node (the service calls this periodically: between blocks no
   * notification comes, and a failing node is silent), sharing a read in flight. A read tip
   * counts for payments and cookies through {@link knownHeight}. Never rejects: a failed read
   * changes nothing but the tip's age.
   */
  async refresh(): Promise<void> {
    await this.read();
    this.checkFreshness();
  }

  /** One read of the node's tip at a time, shared by every caller meanwhile. @returns null, or why it failed. */
  private read(): Promise<unknown> {
    return (this.tipRead ??= this.backend.getTip().then(
      (tip) => {
        this.readTipHeight = tip.height;
        this.tipReadAtMs = performance.now();
        this.tipRead = null;
        this.fresh();
        return null;
      },
      (err: unknown) => {
        this.tipRead = null;
        return err ?? new Error('tip read failed');
      },
    ));
  }

  /**
   * Takes a notified tip (at once: payments from now on are checked against it), then finds out
   * whether it extends the last one.
   * @returns whether the chain switched (a reorg, or a node restarted without its blocks or on
   *   another chain): fundings however deep may be gone. A block that cannot be read counts as
   *   a switch.
   */
  advance(tip: BlockTip): Promise<boolean> {
    const last = this.tip;
    this.tip = tip;
    this.fresh();
    if (last.hash === tip.hash) return Promise.resolve(false);
    return this.switched(last, tip);
  }

  private async switched(last: BlockTip, tip: BlockTip): Promise<boolean> {
    const switched = tip.height <= last.height || (await this.backend.getBlock(last.height).then((b) => b.hash !== last.hash, () => true));
    if (!switched) return false;
    // A tip read for a hello may be of the chain that lost: read again for the next one.
    this.readTipHeight = 0;
    this.tipReadAtMs = Number.NEGATIVE_INFINITY;
    this.log(`the chain switched (tip ${last.height} ${last.hash} → ${tip.height} ${tip.hash}): checking every funding again`);
    return true;
  }

  /**
   * The height a cookie is issued at: the notified tip, or the node's as read at most
   * {@link TIP_READ_MAX_AGE_MS} ago if higher (see the module comment). The cookie is later
   * judged by {@link knownHeight}, never below a height it was issued at. Never rejects: a
   * failed read leaves the notified tip (the next hello tries again).
   */
  async cookieHeight(): Promise<number> {
    if (performance.now() - this.tipReadAtMs > TIP_READ_MAX_AGE_MS) {
      const failure = await this.read();
      if (failure !== null) this.log(`cannot read the tip for a hello: ${String(failure)}`);
    }
    return this.knownHeight();
  }

  /** The highest tip known without asking the node: notified, or read for a hello. */
  knownHeight(): number {
    return Math.max(this.tip.height, this.readTipHeight);
  }
}
