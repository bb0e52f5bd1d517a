/**
 * Per-payment timestamps for the latency phases of the end-to-end benchmark, kept in memory and
 * written as one JSON object per phase ({ rows, gc }) when PAYCHAN_BENCH_TRACE names a directory
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

/** The phases traced (those bench/trace-report.ts reads); the others run untraced. */
const TRACED_PHASES: ReadonlySet<string> = new Set(['latency', 'latency-fixed', 'presigned-latency', 'proxy-paid', 'proxy-free', 'proxy-bare']);

export class Trace {
  private readonly rows: unknown[][] = [];
  private readonly gc: number[][] = [];
  private recording = false;

  constructor(readonly name: string) {
    if (!TRACE_DIR) return;
    // perf_hooks keeps an observing observer alive: no field needed.
    new PerformanceObserver((list) => {
      if (!this.recording) return;
      for (const e of list.getEntries()) this.gc.push([e.startTime + monoOffset, e.duration, ((e as unknown as { detail?: { kind?: number } }).detail?.kind ?? -1)]);
    }).observe({ entryTypes: ['gc'] });
  }

  /** Whether PAYCHAN_BENCH_TRACE is set (hooks worth installing). */
  get configured(): boolean {
    return TRACE_DIR !== '';
  }

  /** Whether the current phase is being traced: hooks skip their work otherwise. */
  get on(): boolean {
    return this.recording;
  }

  /** Starts a phase: recorded if it is one of the traced phases and tracing is configured. */
  begin(phase: string): void {
    this.rows.length = 0;
    this.gc.length = 0;
    this.recording = TRACE_DIR !== '' && TRACED_PHASES.has(phase);
  }

  /** Ends the phase begun last: writes what it recorded to DIR/NAME-PHASE.json ({ rows, gc }). */
  end(phase: string): void {
    if (!this.recording) return;
    this.recording = false;
    fs.mkdirSync(TRACE_DIR, { recursive: true });
    fs.writeFileSync(path.join(TRACE_DIR, `${this.name}-${phase}.json`), JSON.stringify({ rows: this.rows, gc: this.gc }));
    this.rows.length = 0;
    this.gc.length = 0;
  }

  row(...values: unknown[]): void {
    if (this.recording) this.rows.push(values);
  }

  /** A `commit` row for a group commit that started at `startMs` (performance.now()) and took `ms`. */
  commit(startMs: number, ms: number): void {
    if (this.recording) this.rows.push(['commit', startMs + monoOffset, startMs + ms + monoOffset]);
  }
}
