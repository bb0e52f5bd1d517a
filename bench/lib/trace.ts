/**
 * Per-payment timestamps for the latency phases of the end-to-end benchmark, kept in memory and
 * written as one JSON object per file ({ rows, gc }) when PAYCHAN_BENCH_TRACE names a directory
 * (experiments only; off by default).
 *
 * Times are ms on CLOCK_MONOTONIC (process.hrtime), which every process on the machine shares,
 * so the payer's and the payee's timestamps of one payment can be subtracted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PerformanceObserver, performance } from 'node:perf_hooks';

const TRACE_DIR = process.env.PAYCHAN_BENCH_TRACE ?? '';

/** Monotonic ms shared across processes. */
export const mono = (): number => Number(process.hrtime.bigint()) / 1e6;
/** Converts a performance.now() reading to {@link mono}'s clock. */
export const monoOffset = mono() - performance.now();

export class Trace {
  private readonly rows: unknown[][] = [];
  private readonly gc: number[][] = [];

  constructor(readonly name: string) {
    if (!TRACE_DIR) return;
    // perf_hooks keeps an observing observer alive: no field needed.
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) this.gc.push([e.startTime + monoOffset, e.duration, ((e as unknown as { detail?: { kind?: number } }).detail?.kind ?? -1)]);
    }).observe({ entryTypes: ['gc'] });
  }

  get on(): boolean {
    return TRACE_DIR !== '';
  }

  row(...values: unknown[]): void {
    if (TRACE_DIR) this.rows.push(values);
  }

  /** Records a `commit` row (start, end) around every group commit of a SQLite store. */
  traceCommits(store: object): void {
    const inner = store as { commitBatch: (...a: unknown[]) => unknown };
    const commit = inner.commitBatch;
    inner.commitBatch = (...a: unknown[]) => {
      const t = mono();
      try {
        return commit(...a);
      } finally {
        this.row('commit', t, mono());
      }
    };
  }

  /** Drops what was recorded so far (rows and GC pauses) without writing it. */
  clear(): void {
    this.rows.length = 0;
    this.gc.length = 0;
  }

  /** Writes what was recorded to DIR/NAME-SUFFIX.json (one JSON object: { rows, gc }) and clears it. */
  flush(suffix: string): void {
    if (!TRACE_DIR) return;
    fs.mkdirSync(TRACE_DIR, { recursive: true });
    fs.writeFileSync(path.join(TRACE_DIR, `${this.name}-${suffix}.json`), JSON.stringify({ rows: this.rows, gc: this.gc }));
    this.clear();
  }
}
