/**
 * Timing probes inside the SQLite store, for the hot-path breakdown only: how long the group
 * commits take (the transaction function: upserts + COMMIT's fsync) and, within them, the
 * upsert statements. They reach into private fields (TypeScript's `private` is compile-time
 * only); if the store's internals change, the probes report themselves unavailable rather than
 * break the benchmark.
 */
import fs from 'node:fs';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { SqliteStore } from '../../src/store/sqlite-store.js';

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

/** @param perRow also time each upsert (costs ~1 µs a row: use it in micro-benchmarks, not in headline runs). */
export function probeStore(store: SqliteStore, perRow = false): StoreProbe | null {
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

/** Summarizes and clears the commit durations recorded since the last call. */
export function takeCommitStats(probe: StoreProbe, wallMs: number): CommitStats {
  const d = Float64Array.from(probe.durations).sort();
  probe.durations = [];
  const total = d.reduce((a, b) => a + b, 0);
  const q = (p: number): number => (d.length ? d[Math.min(d.length - 1, Math.ceil(p * d.length) - 1)]! : 0);
  const r = (x: number): number => Math.round(x * 1000) / 1000;
  return {
    commits: d.length,
    meanMs: r(d.length ? total / d.length : 0),
    p50Ms: r(q(0.5)),
    p99Ms: r(q(0.99)),
    maxMs: r(d.length ? d[d.length - 1]! : 0),
    over20Ms: d.filter((x) => x > 20).length,
    busyShare: r(wallMs > 0 ? total / wallMs : 0),
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
 * wrapping the histogram's `observe`. Quantiles in ms; reset on each {@link take}.
 */
export function probePaymentLatency(histogram: { observe(seconds: number): void }): { take(): { count: number; p50Ms: number; p99Ms: number; maxMs: number } } {
  let samples: number[] = [];
  const observe = histogram.observe.bind(histogram);
  histogram.observe = (seconds: number) => {
    if (samples.length < 1_000_000) samples.push(seconds * 1000);
    observe(seconds);
  };
  return {
    take() {
      const d = Float64Array.from(samples).sort();
      samples = [];
      const q = (p: number): number => (d.length ? Math.round(d[Math.min(d.length - 1, Math.ceil(p * d.length) - 1)]! * 1000) / 1000 : 0);
      return { count: d.length, p50Ms: q(0.5), p99Ms: q(0.99), maxMs: q(1) };
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

  private read(): Map<string, { run: number; wait: number; name: string }> {
    const out = new Map<string, { run: number; wait: number; name: string }>();
    let tids: string[] = [];
    try {
      tids = fs.readdirSync('/proc/self/task');
    } catch {
      return out;
    }
    for (const tid of tids) {
      try {
        const [run, wait] = fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
        const name = fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
        out.set(tid, { run: run! / 1e6, wait: wait! / 1e6, name });
      } catch {
        // the thread ended
      }
    }
    return out;
  }

  /** { main: {runMs, waitMs}, others: {runMs, waitMs} } since the last call (main = the JS thread). */
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
