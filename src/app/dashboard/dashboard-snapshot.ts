/**
 * What the operator's dashboard shows, built from the channel states at one moment: every
 * channel (spilman-v1, spilman-v2, duplex) with its money and state, totals, recent payment
 * rates, and the closes still waiting to confirm with the fee bumps seen on them.
 *
 * Amounts are JSON numbers of satoshis in keys ending `Sat` (exact: no channel holds 2^53 sat).
 * The list is bounded ({@link MAX_ROWS}, the most pressing first); totals cover every channel.
 */
import { viewOf } from '../../duplex/duplex-view.js';
import type { DuplexChannelState } from '../../protocol/duplex-state.js';
import { stateLocktime } from '../../protocol/duplex-tx.js';
import type { PayeeState } from '../../protocol/payee-machine.js';
import type { VariantName } from '../../protocol/variants/index.js';
import type { CloseVersion, CloseVersions } from './close-versions.js';
import { RATE_WINDOW_SAMPLES, type PaymentActivity } from './payment-activity.js';

/** Rows sent at most: a payee with 100,000 channels still answers in a few kB. */
export const MAX_ROWS = 200;

export type DashboardVariant = VariantName | 'duplex';

export interface DashboardChannel {
  readonly channelId: string;
  readonly variant: DashboardVariant;
  /** The payee's state name (Spilman) or the duplex phase. */
  readonly state: string;
  readonly capacitySat: number;
  /** Paid to the payee (duplex: A to B). */
  readonly paidSat: number;
  /** Duplex: paid back by the payee to the payer. */
  readonly paidBackSat?: number;
  /** Spilman: the refund height. Duplex: the newest state's locktime. */
  readonly expiryHeight: number;
  /** The transaction that closes (or closed) the channel. */
  readonly closeTxid?: string;
  /** Payments (duplex: updates either way) per second over the recent window; 0 when idle. */
  readonly paymentsPerSecond: number;
}

/** A close transaction not confirmed yet (a Spilman batch close may hold several channels). */
export interface DashboardClose {
  readonly txid: string;
  readonly variant: DashboardVariant;
  readonly channelIds: readonly string[];
  /** Duplex: cooperative, unilateral or rollover; Spilman: batch. */
  readonly kind: string;
  readonly feeSat: number;
  readonly feeRateSatPerVb: number;
  readonly broadcastHeight?: number;
  /** Blocks mined since it was broadcast. */
  readonly waitingBlocks?: number;
  /** Duplex unilateral: the height from which the published state can be mined. */
  readonly finalAtHeight?: number;
  /** Fee bumps seen (versions before the current one). */
  readonly bumps: number;
  /** Every version seen, oldest first; the last is the current one. */
  readonly versions: readonly CloseVersion[];
}

export interface DashboardTotals {
  readonly channels: number;
  /** Channels not closed (or aborted). */
  readonly liveChannels: number;
  /** Capacity of the live channels. */
  readonly capacitySat: number;
  /** Paid to the payee over every channel, closed ones included. */
  readonly paidSat: number;
  readonly paidBackSat: number;
  readonly byVariant: Readonly<Record<DashboardVariant, { readonly channels: number; readonly liveChannels: number; readonly paidSat: number }>>;
  readonly closesWaiting: number;
}

export interface DashboardSnapshot {
  readonly network: string;
  readonly tipHeight: number | null;
  readonly totals: DashboardTotals;
  readonly rate: {
    readonly windowSeconds: number;
    readonly paymentsPerSecond: number;
    /** Payments per sample (one a second), oldest first, up to a minute. */
    readonly series: readonly number[];
  };
  readonly channels: readonly DashboardChannel[];
  /** Channels left out of `channels` (beyond {@link MAX_ROWS}). */
  readonly channelsNotShown: number;
  readonly closes: readonly DashboardClose[];
}

export interface SnapshotInput {
  readonly network: string;
  readonly tipHeight: number | null;
  readonly spilman: Iterable<PayeeState>;
  readonly duplex: Iterable<DuplexChannelState>;
  readonly activity: PaymentActivity;
  readonly closes: CloseVersions;
}

/** The most pressing first: closes in flight, then channels taking payments, then the rest. */
const STATE_ORDER: Readonly<Record<string, number>> = { Closing: 0, closing: 0, Expiring: 1, Open: 2, open: 2, ZeroConf: 2, Suspended: 3, AwaitingConfirmation: 4, opening: 4 };
const LAST = 9;
const DEAD = new Set(['Closed', 'closed', 'aborted']);

const sat = (value: bigint): number => Number(value);

/** Builds the snapshot, and records the closes it sees waiting in `closes` (fee-bump history). */
export function dashboardSnapshot(input: SnapshotInput): DashboardSnapshot {
  const rows: DashboardChannel[] = [];
  const closes = new Map<string, DashboardClose>();
  const tip = input.tipHeight;
  for (const s of input.spilman) {
    if (!('channel' in s)) continue;
    const id = s.channel.id;
    const closeTxid = s.type === 'Closing' ? s.close.txid : s.type === 'Closed' ? s.closeTxid : undefined;
    rows.push({
      channelId: id,
      variant: s.channel.variant,
      state: s.type,
      capacitySat: sat(s.channel.capacitySat),
      paidSat: 'paidSat' in s ? sat(s.paidSat) : 0,
      expiryHeight: s.channel.expiryHeight,
      ...(closeTxid === undefined ? {} : { closeTxid }),
      paymentsPerSecond: input.activity.channelRate(id)?.paymentsPerSecond ?? 0,
    });
    if (s.type !== 'Closing') continue;
    const c = s.close;
    const versions = input.closes.observe(id, { txid: c.txid, feeSat: sat(c.feeSat), feeRateSatPerVb: c.feeRateSatPerVb, broadcastHeight: c.broadcastHeight });
    const batch = closes.get(c.txid);
    if (batch) (batch.channelIds as string[]).push(id);
    else
      closes.set(c.txid, {
        txid: c.txid,
        variant: s.channel.variant,
        channelIds: [id],
        kind: 'batch',
        feeSat: sat(c.feeSat),
        feeRateSatPerVb: c.feeRateSatPerVb,
        broadcastHeight: c.broadcastHeight,
        ...(tip === null ? {} : { waitingBlocks: Math.max(0, tip - c.broadcastHeight) }),
        bumps: versions.length - 1,
        versions: [...versions],
      });
  }
  for (const state of input.duplex) {
    const v = viewOf(state);
    if (v.channelId === undefined || v.terms === undefined) continue;
    const id = v.channelId;
    const closeTxid = v.settlement?.txid ?? v.close?.txid;
    rows.push({
      channelId: id,
      variant: 'duplex',
      state: v.phase,
      capacitySat: sat(v.terms.contributionASat + v.terms.contributionBSat),
      paidSat: sat(v.paidAtoBSat),
      paidBackSat: sat(v.paidBtoASat),
      expiryHeight: stateLocktime(v.terms, v.current?.index ?? 0),
      ...(closeTxid === undefined ? {} : { closeTxid }),
      paymentsPerSecond: input.activity.channelRate(id, true)?.paymentsPerSecond ?? 0,
    });
    const c = v.close;
    // A close whose transaction is complete (both signatures, or our own state) and not settled.
    if (state.type !== 'Closing' || c === undefined || c.txHex === '') continue;
    const finalAt = c.kind === 'unilateral' ? stateLocktime(v.terms, c.stateIndex ?? v.current?.index ?? 0) : undefined;
    const versions = input.closes.observe(`duplex:${id}`, { txid: c.txid, feeSat: sat(c.feeSat), feeRateSatPerVb: c.feeRateSatPerVb, ...(c.broadcastHeight === undefined ? {} : { broadcastHeight: c.broadcastHeight }) });
    closes.set(c.txid, {
      txid: c.txid,
      variant: 'duplex',
      channelIds: [id],
      kind: c.kind,
      feeSat: sat(c.feeSat),
      feeRateSatPerVb: c.feeRateSatPerVb,
      ...(c.broadcastHeight === undefined ? {} : { broadcastHeight: c.broadcastHeight }),
      ...(c.broadcastHeight === undefined || tip === null ? {} : { waitingBlocks: Math.max(0, tip - c.broadcastHeight) }),
      ...(finalAt === undefined ? {} : { finalAtHeight: finalAt }),
      bumps: versions.length - 1,
      versions: [...versions],
    });
  }
  input.closes.retainSeen();
  const totals = totalsOf(rows, closes.size);
  rows.sort((a, b) => (STATE_ORDER[a.state] ?? LAST) - (STATE_ORDER[b.state] ?? LAST) || b.paymentsPerSecond - a.paymentsPerSecond || b.paidSat - a.paidSat || (a.channelId < b.channelId ? -1 : 1));
  return {
    network: input.network,
    tipHeight: tip,
    totals,
    rate: { windowSeconds: RATE_WINDOW_SAMPLES, paymentsPerSecond: input.activity.paymentsPerSecond(), series: input.activity.recentSeries() },
    channels: rows.slice(0, MAX_ROWS),
    channelsNotShown: Math.max(0, rows.length - MAX_ROWS),
    closes: [...closes.values()],
  };
}

function totalsOf(rows: readonly DashboardChannel[], closesWaiting: number): DashboardTotals {
  const byVariant: Record<DashboardVariant, { channels: number; liveChannels: number; paidSat: number }> = {
    'spilman-v1': { channels: 0, liveChannels: 0, paidSat: 0 },
    'spilman-v2': { channels: 0, liveChannels: 0, paidSat: 0 },
    duplex: { channels: 0, liveChannels: 0, paidSat: 0 },
  };
  let liveChannels = 0;
  let capacitySat = 0;
  let paidSat = 0;
  let paidBackSat = 0;
  for (const r of rows) {
    const live = !DEAD.has(r.state);
    const v = (byVariant[r.variant] ??= { channels: 0, liveChannels: 0, paidSat: 0 });
    v.channels++;
    v.paidSat += r.paidSat;
    paidSat += r.paidSat;
    paidBackSat += r.paidBackSat ?? 0;
    if (!live) continue;
    v.liveChannels++;
    liveChannels++;
    capacitySat += r.capacitySat;
  }
  return { channels: rows.length, liveChannels, capacitySat, paidSat, paidBackSat, byVariant, closesWaiting };
}
