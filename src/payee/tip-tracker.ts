/**
 * The payee's view of the chain tip, in two readings:
 *
 * - **The notified tip** (`tip`): as the last block notification told it (read from the node at
 *   open). Every payment is checked against its height: past a channel's close deadline nothing
 *   is acknowledged, even before the closer's pass over the channels has moved it out of Open.
 *   A new tip that does not extend it is a chain switch ({@link TipTracker.advance}).
 * - **The tip for a cookie** ({@link TipTracker.cookieHeight}): notifications can lag a burst of
 *   blocks (regtest mines ten at once), and a cookie issued at a lagging height would look that
 *   much older when its funding comes, and expire early. So a hello asks the node, at most once
 *   per {@link TIP_READ_MAX_AGE_MS}, one read shared by every hello meanwhile: a flood of hellos
 *   is not a flood of node calls.
 */
import type { BlockTip, ChainBackend } from '../chain/backend.js';

/** A hello reuses a tip read this recent. */
export const TIP_READ_MAX_AGE_MS = 250;

export class TipTracker {
  /** The tip as last read from the node for a hello, and when (performance.now()). */
  private readTipHeight = 0;
  private tipReadAtMs = Number.NEGATIVE_INFINITY;
  /** The tip read in flight, shared by every hello that arrives meanwhile. */
  private tipRead: Promise<void> | null = null;

  constructor(
    private readonly backend: Pick<ChainBackend, 'getTip' | 'getBlock'>,
    /** The notified tip: a field, read once per payment. */
    public tip: BlockTip,
    private readonly log: (line: string) => void,
  ) {}

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
      this.tipRead ??= this.backend.getTip().then(
        (tip) => {
          this.readTipHeight = tip.height;
          this.tipReadAtMs = performance.now();
          this.tipRead = null;
        },
        (err: unknown) => {
          this.log(`cannot read the tip for a hello: ${String(err)}`);
          this.tipRead = null;
        },
      );
      await this.tipRead;
    }
    return this.knownHeight();
  }

  /** The highest tip known without asking the node: notified, or read for a hello. */
  knownHeight(): number {
    return Math.max(this.tip.height, this.readTipHeight);
  }
}
