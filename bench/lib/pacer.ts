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

type PacerKind = 'worker' | 'spin' | 'sleep';

export function pacerKind(): PacerKind {
  const kind = process.env.PAYCHAN_BENCH_PACER ?? 'worker';
  if (kind !== 'worker' && kind !== 'spin' && kind !== 'sleep') throw new RangeError(`PAYCHAN_BENCH_PACER must be worker, spin or sleep, got ${kind}`);
  return kind;
}

const QUANTUM_MS = 0.5;

// Plain JavaScript (a worker from a string needs no loader). Times are absolute
// (timeOrigin + now), which both threads share. The thread first sleeps until the sender
// publishes the start time (flag[0] = 1, start[0] = absolute ms), so the schedule starts only
// once this thread is running, not while it is still starting up.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { shared, intervalMs, count, quantumMs } = workerData;
const flag = new Int32Array(shared, 0, 1);
const start = new Float64Array(shared, 8, 1);
while (Atomics.load(flag, 0) === 0) Atomics.wait(flag, 0, 0);
const startAbsMs = start[0];
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

export interface WorkerPacerOptions {
  readonly intervalMs: number;
  readonly count: number;
  /**
   * Called once, when the pacing thread is running: @returns the schedule's start (performance.now()
   * ms), payment k being due at `start + k * intervalMs`.
   */
  readonly start: () => number;
  /** Called (on this thread) whenever the payments before index `dueBefore` are due. */
  readonly onDue: (dueBefore: number) => void;
  /**
   * Called at most once if the pacing thread fails: it threw, or it exited before it was stopped
   * and before all `count` payments were due. No `onDue` follows.
   */
  readonly onError: (err: Error) => void;
}

/** Starts the pacing thread. @returns stop (idempotent; no callbacks after it). */
export function startWorkerPacer(options: WorkerPacerOptions): () => void {
  const { intervalMs, count } = options;
  const shared = new SharedArrayBuffer(16);
  // execArgv: [] — the thread runs plain JavaScript: no tsx loader, none of this process's flags.
  const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { shared, intervalMs, count, quantumMs: QUANTUM_MS } });
  let stopped = false;
  let dueBefore = 0;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    void worker.terminate();
  };
  const fail = (err: Error): void => {
    if (stopped) return;
    stop();
    options.onError(err);
  };
  worker.once('online', () => {
    if (stopped) return;
    new Float64Array(shared, 8, 1)[0] = performance.timeOrigin + options.start();
    const flag = new Int32Array(shared, 0, 1);
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
  });
  worker.on('message', (n: number) => {
    if (stopped) return;
    dueBefore = n;
    options.onDue(n);
  });
  worker.on('error', (err) => fail(err));
  worker.on('exit', (code) => {
    if (dueBefore < count) fail(new Error(`pacing thread exited (code ${code}) with ${dueBefore} of ${count} payments due`));
  });
  return stop;
}
