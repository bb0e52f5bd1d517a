/** Small numeric helpers for the benchmarks. */
import { performance } from 'node:perf_hooks';

export const now = (): number => performance.now();

/** The `p`-quantile (0..1) of `sorted` (ascending), nearest-rank. */
export function quantile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[rank]!;
}

/** Sorted copy as a Float64Array (fast numeric sort). */
export function sorted(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).sort();
}

export function round(x: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/**
 * Runs `fn(i)` for i = 0.. until at least `minMs` have passed (checking the clock every `batch`
 * calls). @returns calls per second and µs per call.
 */
export function rate(fn: (i: number) => void, minMs: number, batch = 256): { perSec: number; micros: number; calls: number } {
  let calls = 0;
  const start = now();
  let elapsed = 0;
  do {
    for (let k = 0; k < batch; k++) fn(calls++);
    elapsed = now() - start;
  } while (elapsed < minMs);
  return { perSec: (calls * 1000) / elapsed, micros: (elapsed * 1000) / calls, calls };
}

/** The child's share of CPU time since `since` (µs, user + system) from process.cpuUsage. */
export function cpuMicros(since?: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return u.user + u.system;
}

/**
 * {@link rate} repeated `reps` times for `msEach` ms, keeping the median: other processes on a
 * shared machine slow some repetitions down, and the median shrugs that off.
 */
export function medianRate(fn: (i: number) => void, msEach: number, reps = 5): { perSec: number; micros: number; samples: number[] } {
  const samples: number[] = [];
  let offset = 0;
  for (let r = 0; r < reps; r++) {
    const res = rate((i) => fn(offset + i), msEach);
    offset += res.calls;
    samples.push(res.perSec);
  }
  const perSec = quantile(sorted(samples), 0.5);
  return { perSec, micros: 1e6 / perSec, samples: samples.map((x) => Math.round(x)) };
}
