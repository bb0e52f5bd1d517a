/**
 * Load shapes for the end-to-end benchmark.
 *
 * - {@link closedLoop}: as fast as the system goes, with at most `window` payments unacknowledged
 *   (pipelining); issues at most `chunk` per event-loop turn so replies are read meanwhile.
 * - {@link openLoop}: payment k is due at t0 + k / rate, whatever happened to the earlier ones
 *   (no coordinated omission: a slow ack never delays the next send). Latency = ack time −
 *   *intended* send time, so a sender that falls behind its schedule shows up as latency.
 *   The sender is woken by a pacing thread (pacer.ts), so it neither spins nor oversleeps.
 */
import { pacerKind, startWorkerPacer } from './pacer.js';
import { now, quantile, sorted, round } from './stats.js';

export interface ClosedLoopResult {
  readonly payments: number;
  readonly elapsedMs: number;
  readonly perSec: number;
}

export function closedLoop(count: number, window: number, chunk: number, issue: (k: number) => Promise<unknown>): Promise<ClosedLoopResult> {
  return new Promise((resolve, reject) => {
    let next = 0;
    let acked = 0;
    let failed = false;
    const start = now();
    const done = (): void => {
      acked++;
      if (acked === count) {
        const elapsedMs = now() - start;
        resolve({ payments: count, elapsedMs: round(elapsedMs, 1), perSec: Math.round((count * 1000) / elapsedMs) });
      } else if (next - acked < window - chunk && scheduled === false) {
        scheduled = true;
        setImmediate(pump);
      }
    };
    const fail = (err: unknown): void => {
      if (!failed) reject(err instanceof Error ? err : new Error(String(err)));
      failed = true;
    };
    let scheduled = false;
    const pump = (): void => {
      scheduled = false;
      if (failed) return;
      let n = 0;
      while (n < chunk && next < count && next - acked < window) {
        issue(next++).then(done, fail);
        n++;
      }
      if (next < count && next - acked < window && !scheduled) {
        scheduled = true;
        setImmediate(pump);
      }
    };
    pump();
  });
}

export interface OpenLoopResult {
  readonly payments: number;
  readonly targetPerSec: number;
  readonly achievedPerSec: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  /** How late the sender itself issued payments (its own scheduling jitter), p99. */
  readonly sendLagP99Ms: number;
}

/**
 * How far ahead of "now" the schedule starts: with the pacing thread, set only once that thread
 * is running (it takes ~20 ms to start), so this covers just its wake-up and the first message.
 */
const START_LEAD_MS = 1;

/** @param onAcked optional: called per payment with its intended send, actual send and ack times (performance.now() ms). */
export function openLoop(count: number, perSec: number, issue: (k: number) => Promise<unknown>, onAcked?: (k: number, intendedMs: number, sentMs: number, ackMs: number) => void): Promise<OpenLoopResult> {
  return new Promise((resolve, reject) => {
    const latency = new Float64Array(count);
    const lag = new Float64Array(count);
    const interval = 1000 / perSec;
    const pacer = pacerKind();
    /** The schedule's start: payment k is due at t0 + k * interval (fixed when the pacer runs). */
    let t0 = NaN;
    let stopPacer = (): void => {};
    let next = 0;
    let done = 0;
    let failed = false;
    const fail = (err: unknown): void => {
      if (failed) return;
      failed = true;
      stopPacer();
      reject(err instanceof Error ? err : new Error(String(err)));
    };
    const finish = (): void => {
      stopPacer();
      const s = sorted(latency);
      const elapsed = now() - t0;
      resolve({
        payments: count,
        targetPerSec: Math.round(perSec),
        achievedPerSec: Math.round((count * 1000) / elapsed),
        p50Ms: round(quantile(s, 0.5), 3),
        p90Ms: round(quantile(s, 0.9), 3),
        p99Ms: round(quantile(s, 0.99), 3),
        p999Ms: round(quantile(s, 0.999), 3),
        maxMs: round(s[s.length - 1]!, 3),
        sendLagP99Ms: round(quantile(sorted(lag), 0.99), 3),
      });
    };
    /** Sends every payment due by now (or, from the pacing thread, before index `dueBefore`). */
    const tick = (dueBefore = 0): void => {
      if (failed) return;
      const t = now();
      while (next < count && (next < dueBefore || t0 + next * interval <= t)) {
        const k = next++;
        const intended = t0 + k * interval;
        lag[k] = t - intended;
        issue(k).then(() => {
          const ackAt = now();
          latency[k] = ackAt - intended;
          onAcked?.(k, intended, intended + lag[k]!, ackAt);
          if (++done === count) finish();
        }, fail);
      }
      if (next < count && pacer !== 'worker') {
        const wait = t0 + next * interval - now();
        if (pacer === 'spin') {
          // Sleep until ~1.5 ms before the due time (the timer's granularity), then spin.
          if (wait > 2) setTimeout(tick, wait - 1.5);
          else setImmediate(tick);
        } else setTimeout(tick, Math.max(0, wait));
      }
    };
    if (pacer === 'worker') {
      stopPacer = startWorkerPacer({ intervalMs: interval, count, start: () => (t0 = now() + START_LEAD_MS), onDue: tick, onError: fail });
    } else {
      t0 = now() + START_LEAD_MS;
      tick();
    }
  });
}
