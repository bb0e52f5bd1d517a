/**
 * The dashboard's live part inside the payee: samples payment counts once a second (rates),
 * follows the tip (to record fee bumps of waiting closes as they happen, and to say how long a
 * close has waited), and builds the snapshot the page polls.
 *
 * A snapshot costs a pass over every channel, so it is built at most once per
 * {@link SNAPSHOT_MAX_AGE_MS} and shared by every viewer: ten open dashboards cost one pass a
 * second, not ten. Nothing runs per payment here but the counter (payment-activity.ts).
 */
import type { BlockTip, ChainBackend } from '../../chain/backend.js';
import type { DuplexChannelState } from '../../protocol/duplex-state.js';
import type { PayeeState } from '../../protocol/payee-machine.js';
import { CloseVersions } from './close-versions.js';
import { dashboardSnapshot, type DashboardSnapshot } from './dashboard-snapshot.js';
import { PaymentActivity } from './payment-activity.js';

/** How often payment counts are sampled (the rates' resolution). */
export const SAMPLE_INTERVAL_MS = 1_000;
/** A snapshot younger than this is served again as it is. */
export const SNAPSHOT_MAX_AGE_MS = 1_000;

export interface DashboardSources {
  readonly network: string;
  readonly backend: Pick<ChainBackend, 'getTip' | 'subscribeTips'>;
  /** Every Spilman channel's state, read without keeping idle channels unpacked. */
  spilman(): Iterable<PayeeState>;
  /** Every duplex channel's state (side B). */
  duplex(): Iterable<DuplexChannelState>;
  readonly log?: (line: string) => void;
}

export class Dashboard {
  /** Pass `activity.onPayment` to the payee service's `onPayment` hook. */
  readonly activity = new PaymentActivity();
  private readonly closes = new CloseVersions();
  private tipHeight: number | null = null;
  private cached: { readonly at: number; readonly snapshot: DashboardSnapshot } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly sources: DashboardSources) {}

  /** Starts sampling and following the tip; stopped by {@link stop}. Idempotent. */
  start(): void {
    if (this.timer) return;
    // unref: the dashboard never keeps a payee process alive on its own.
    this.timer = setInterval(() => this.sample(), SAMPLE_INTERVAL_MS).unref();
    this.sample();
    this.unsubscribe = this.sources.backend.subscribeTips((tip) => this.onTip(tip));
    this.sources.backend.getTip().then(
      (tip) => this.onTip(tip),
      (err: unknown) => this.sources.log?.(`dashboard: cannot read the tip: ${String(err)}`),
    );
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /** The current snapshot (built at most once per {@link SNAPSHOT_MAX_AGE_MS}). */
  snapshot(): DashboardSnapshot {
    const now = performance.now();
    if (this.cached && now - this.cached.at < SNAPSHOT_MAX_AGE_MS) return this.cached.snapshot;
    const snapshot = this.build();
    this.cached = { at: now, snapshot };
    return snapshot;
  }

  private build(): DashboardSnapshot {
    return dashboardSnapshot({ network: this.sources.network, tipHeight: this.tipHeight, spilman: this.sources.spilman(), duplex: this.sources.duplex(), activity: this.activity, closes: this.closes });
  }

  private onTip(tip: BlockTip): void {
    this.tipHeight = tip.height;
    // Closes are bumped on new tips: look at them now, whether or not anyone is viewing.
    try {
      this.build();
    } catch (err) {
      this.sources.log?.(`dashboard: ${String(err)}`);
    }
  }

  private sample(): void {
    this.activity.sample(performance.now(), duplexUpdates(this.sources.duplex()));
  }
}

/** The update counters of the live duplex channels (open or closing), by channel id. */
function* duplexUpdates(states: Iterable<DuplexChannelState>): Generator<readonly [string, number]> {
  for (const s of states) if (s.type === 'Open') yield [s.channelId, s.updates];
}
