/**
 * Wakes the open loop's sender when its next payment is due, without spinning and without
 * Node's 1 ms timer granularity.
 *
 * The two obvious senders both distort what they measure on a 2-core machine: spinning on
 * setImmediate keeps one core busy for the whole phase (the core the payee, its GC helpers and
 * the kernel need), and sleeping with setTimeout sends late by up to ~1.5 ms (the timer's
 * granularity), which the open loop rightly counts as latency. So a worker thread sleeps in
 * Atomics.wait (a futex with a sub-millisecond timeout) until each due time and posts the
 * number of payments due by then; the sender's event loop sleeps in between. A wake-up costs
 * ~50 µs of CPU between the two threads (one per payment at 5,500/s took a quarter of a core),
 * so wake-ups are at least {@link QUANTUM_MS} apart: a payment is sent at most that late.
 *
 * `PAYCHAN_BENCH_PACER=spin|sleep` selects one of the two others, for comparison.
 */
import { Worker } from 'node:worker_threads';

export type PacerKind = 'worker' | 'spin' | 'sleep';

export function pacerKind(): PacerKind {
  const kind = process.env.PAYCHAN_BENCH_PACER ?? 'worker';
  if (kind !== 'worker' && kind !== 'spin' && kind !== 'sleep') throw new RangeError(`PAYCHAN_BENCH_PACER must be worker, spin or sleep, got ${kind}`);
  return kind;
}

export const QUANTUM_MS = 0.5;

// Plain JavaScript (a worker from a string needs no loader). Times are absolute
// (timeOrigin + now), which both threads share.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { startAbsMs, intervalMs, count, quantumMs } = workerData;
const cell = new Int32Array(new SharedArrayBuffer(4));
const nowAbs = () => performance.timeOrigin + performance.now();
let next = 0;
let lastWake = -Infinity;
while (next < count) {
  const wait = Math.max(startAbsMs + next * intervalMs, lastWake + quantumMs) - nowAbs();
  if (wait > 0.02) Atomics.wait(cell, 0, 0, wait);
  const t = nowAbs();
  let due = next;
  while (due < count && startAbsMs + due * intervalMs <= t) due++;
  if (due > next) {
    parentPort.postMessage(due);
    next = due;
    lastWake = t;
  }
}
`;

/**
 * Starts pacing: `onDue(n)` is called (on this thread) whenever payments before index n are due,
 * payment k being due at `startMs + k * intervalMs` (performance.now() ms). @returns stop.
 */
export function startWorkerPacer(startMs: number, intervalMs: number, count: number, onDue: (dueBefore: number) => void): () => void {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { startAbsMs: performance.timeOrigin + startMs, intervalMs, count, quantumMs: QUANTUM_MS } });
  worker.on('message', (n: number) => onDue(n));
  worker.on('error', (err) => {
    throw err;
  });
  return () => void worker.terminate();
}
