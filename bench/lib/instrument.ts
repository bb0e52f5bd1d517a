/**
 * Timing probes inside the SQLite store, for the hot-path breakdown only: how long the group
 * commits take (the transaction function: upserts + COMMIT's fsync) and, within them, the
 * upsert statements. They reach into private fields (TypeScript's `private` is compile-time
 * only); if the store's internals change, the probes report themselves unavailable rather than
 * break the benchmark.
 */
import fs from 'node:fs';
import { createHistogram, monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { SqliteStore } from '../../src/store/sqlite-store.js';
import { quantile, round, sorted } from './stats.js';

export interface StoreProbe {
  /** ms spent in group-commit transactions (BEGIN … upserts … COMMIT incl. fsync). */
  commitMs: number;
  /** ms spent in the payee upsert statements inside those transactions (only when `perRow`). */
  upsertMs: number;
  commits: number;
  /** Duration of each commit, ms (since the last {@link takeCommitStats}). */
  durations: number[];
}

type Fn = (...args: unknown[]) => unknown;

/**
 * @param perRow also time each upsert (costs ~1 µs a row: use it in micro-benchmarks, not in headline runs).
 * @param onCommit also told of each commit: its start (performance.now() ms) and duration.
 */
export function probeStore(store: SqliteStore, perRow = false, onCommit?: (startMs: number, ms: number) => void): StoreProbe | null {
  const inner = store as unknown as { commitBatch?: Fn; stmts?: { upsertPayee?: { run: Fn } } };
  const commit = inner.commitBatch;
  const upsert = inner.stmts?.upsertPayee;
  if (typeof commit !== 'function' || !upsert || typeof upsert.run !== 'function') return null;
  const probe: StoreProbe = { commitMs: 0, upsertMs: 0, commits: 0, durations: [] };
  inner.commitBatch = (...args: unknown[]) => {
    const t = performance.now();
    try {
      return commit(...args);
    } finally {
      const ms = performance.now() - t;
      onCommit?.(t, ms);
      probe.commitMs += ms;
      probe.commits++;
      if (probe.durations.length < 1_000_000) probe.durations.push(ms);
    }
  };
  if (!perRow) return probe;
  const run = upsert.run.bind(upsert) as Fn;
  inner.stmts!.upsertPayee = {
    run: (...args: unknown[]) => {
      const t = performance.now();
      try {
        return run(...args);
      } finally {
        probe.upsertMs += performance.now() - t;
      }
    },
  };
  return probe;
}

export interface CommitStats {
  readonly commits: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Commits that blocked the event loop for more than 20 ms (e.g. a WAL checkpoint). */
  readonly over20Ms: number;
  /** Share of the wall time spent inside commits (the event loop is blocked meanwhile). */
  readonly busyShare: number;
}

interface MsSummary {
  readonly count: number;
  /** Sum of the values (not rounded). */
  readonly totalMs: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** Count, sum, mean, p50, p99 and max of durations in ms, rounded to the µs; all 0 when empty. */
function summarizeMs(values: ArrayLike<number>): MsSummary {
  const d = sorted(values);
  if (d.length === 0) return { count: 0, totalMs: 0, meanMs: 0, p50Ms: 0, p99Ms: 0, maxMs: 0 };
  let total = 0;
  for (const x of d) total += x;
  return {
    count: d.length,
    totalMs: total,
    meanMs: round(total / d.length, 3),
    p50Ms: round(quantile(d, 0.5), 3),
    p99Ms: round(quantile(d, 0.99), 3),
    maxMs: round(quantile(d, 1), 3),
  };
}

/** Summarizes and clears the commit durations recorded since the last call. */
export function takeCommitStats(probe: StoreProbe, wallMs: number): CommitStats {
  const durations = probe.durations;
  probe.durations = [];
  const s = summarizeMs(durations);
  return {
    commits: s.count,
    meanMs: s.meanMs,
    p50Ms: s.p50Ms,
    p99Ms: s.p99Ms,
    maxMs: s.maxMs,
    over20Ms: durations.filter((x) => x > 20).length,
    busyShare: round(wallMs > 0 ? s.totalMs / wallMs : 0, 3),
  };
}

/** Event-loop delay (how long ready work waited for the loop), reset on each {@link take}. */
export class LoopDelay {
  private readonly h = monitorEventLoopDelay({ resolution: 1 });
  constructor() {
    this.h.enable();
  }
  take(): { p50Ms: number; p99Ms: number; maxMs: number } {
    const ms = (ns: number): number => Math.round(ns / 1e3) / 1e3;
    const out = { p50Ms: ms(this.h.percentile(50)), p99Ms: ms(this.h.percentile(99)), maxMs: ms(this.h.max) };
    this.h.reset();
    return out;
  }
}

/** How many saves went through each store method (the full state, or the payment alone). */
export interface SaveCounts {
  fullState: number;
  paymentOnly: number;
}

/**
 * Counts `savePayeeChannel` and (where the store has it) `savePayeePayment` calls, by wrapping
 * them on this instance: the service calls them through the instance, so it sees the wrappers.
 */
export function countSaves(store: SqliteStore): SaveCounts {
  const counts: SaveCounts = { fullState: 0, paymentOnly: 0 };
  const inner = store as unknown as Record<string, unknown>;
  for (const [method, key] of [
    ['savePayeeChannel', 'fullState'],
    ['savePayeePayment', 'paymentOnly'],
  ] as const) {
    const original = inner[method];
    if (typeof original !== 'function') continue;
    const bound = (original as Fn).bind(store);
    inner[method] = (...args: unknown[]) => {
      counts[key]++;
      return bound(...args);
    };
  }
  return counts;
}

/**
 * The payee's own share of each payment's latency: from its frame read off the socket to its ack
 * handed to the socket (what `paychan_payment_latency_seconds` observes), collected per phase by
 * wrapping the histogram's `observe` into a native one (no JS array per payment). Quantiles in
 * ms (HdrHistogram, 3 significant digits); reset on each {@link take}.
 */
export function probePaymentLatency(histogram: { observe(seconds: number): void }): { take(): { count: number; p50Ms: number; p99Ms: number; maxMs: number } } {
  const h = createHistogram();
  const observe = histogram.observe.bind(histogram);
  histogram.observe = (seconds: number) => {
    h.record(Math.max(1, Math.round(seconds * 1e9)));
    observe(seconds);
  };
  return {
    take() {
      const ms = (ns: number): number => round(ns / 1e6, 3);
      const out = h.count === 0 ? { count: 0, p50Ms: 0, p99Ms: 0, maxMs: 0 } : { count: h.count, p50Ms: ms(h.percentile(50)), p99Ms: ms(h.percentile(99)), maxMs: ms(h.max) };
      h.reset();
      return out;
    },
  };
}

/**
 * Per-thread scheduler statistics of this process (Linux /proc/self/task/TID/schedstat): time on
 * a CPU and time runnable but waiting for one, in ms, since the previous call. The waiting time
 * is what the machine's other work (the other process, GC helper threads, the kernel) cost this
 * process's threads in latency. Empty where /proc is not available.
 */
export class SchedStats {
  private last = new Map<string, { run: number; wait: number }>();
  constructor() {
    this.read();
  }

  private read(): Map<string, { run: number; wait: number }> {
    const out = new Map<string, { run: number; wait: number }>();
    let tids: string[] = [];
    try {
      tids = fs.readdirSync('/proc/self/task');
    } catch {
      return out;
    }
    for (const tid of tids) {
      try {
        const [run, wait] = fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
        out.set(tid, { run: run! / 1e6, wait: wait! / 1e6 });
      } catch {
        // the thread ended
      }
    }
    return out;
  }

  /** { main: {runMs, waitMs}, helpers: {runMs, waitMs} } since the last call (main = the JS thread, helpers = every other thread of the process). */
  take(): { main: { runMs: number; waitMs: number }; helpers: { runMs: number; waitMs: number } } {
    const now = this.read();
    const main = { runMs: 0, waitMs: 0 };
    const helpers = { runMs: 0, waitMs: 0 };
    for (const [tid, s] of now) {
      const before = this.last.get(tid) ?? { run: 0, wait: 0 };
      const into = tid === String(process.pid) ? main : helpers;
      into.runMs += s.run - before.run;
      into.waitMs += s.wait - before.wait;
    }
    this.last = now;
    const r = (x: { runMs: number; waitMs: number }) => ({ runMs: Math.round(x.runMs), waitMs: Math.round(x.waitMs) });
    return { main: r(main), helpers: r(helpers) };
  }
}
