/**
 * Reads the per-payment traces an e2e run wrote with PAYCHAN_BENCH_TRACE=DIR (bench/lib/trace.ts)
 * and says where each latency percentile's time went, and what happened around the slowest
 * payments (GC pauses and long commits in either process, stretches when a process did nothing).
 *
 *   node --import tsx bench/trace-report.ts DIR [latency|presigned-latency]
 *
 * Segments of one payment (all on CLOCK_MONOTONIC, shared by the processes):
 *   lag      scheduled send → the payer's issue call (the open loop's own lateness)
 *   persist  issue call → payment handed to the socket (signing and the payer's durable save)
 *   wire1    handed to the socket → the payee read the frame
 *   queue    frame read → handed to the service (per-turn pacing)
 *   payee    handed to the service → ack handed to the socket (verify, durable commit)
 *   wire2    ack handed to the socket → the payer read it
 */
import fs from 'node:fs';
import path from 'node:path';

type Row = (string | number)[];
interface TraceFile {
  rows: Row[];
  gc: [number, number, number][];
}

const [dir, phase = 'latency'] = process.argv.slice(2);
if (!dir) throw new TypeError('usage: trace-report.ts DIR [latency|presigned-latency]');
const read = (name: string): TraceFile => JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as TraceFile;
const payer = read(`payer-${phase}.json`);
const payee = read(`payee-${phase}.json`);
const key = (c: unknown, t: unknown): string => `${String(c)} ${String(t)}`;
/** The first time each (channel, total) appears in rows of `kind`: [kind, time, channel, total, …]. */
const first = (file: TraceFile, kind: string): Map<string, number> => {
  const m = new Map<string, number>();
  for (const r of file.rows) if (r[0] === kind && !m.has(key(r[2], r[3]))) m.set(key(r[2], r[3]), Number(r[1]));
  return m;
};
const sent = first(payer, 'send');
const ackIn = first(payer, 'ackIn');
const byK = new Map<number, string>();
const calls = new Map<number, number>();
for (const r of payer.rows) {
  if (r[0] === 'call') {
    byK.set(Number(r[2]), key(r[3], r[4]));
    calls.set(Number(r[2]), Number(r[1]));
  } else if (r[0] === 'send' && r.length > 4) byK.set(Number(r[4]), key(r[2], r[3]));
}
const pin = first(payee, 'in');
const prx = first(payee, 'rx');
const pack = first(payee, 'ack');
const SEGMENTS = ['lag', 'persist', 'wire1', 'queue', 'payee', 'wire2'] as const;
interface Payment {
  t: number;
  total: number;
  seg: Record<(typeof SEGMENTS)[number], number>;
}
const payments: Payment[] = [];
for (const r of payer.rows) {
  if (r[0] !== 'k') continue;
  const [k, intended, issued, acked] = [Number(r[1]), Number(r[2]), Number(r[3]), Number(r[4])];
  const id = byK.get(k);
  if (!id) continue;
  const s = sent.get(id);
  const i = pin.get(id);
  const a = pack.get(id);
  const b = ackIn.get(id);
  if (s === undefined || i === undefined || a === undefined || b === undefined) continue;
  const x = prx.get(id) ?? i;
  const call = calls.get(k) ?? s;
  payments.push({ t: intended, total: acked - intended, seg: { lag: issued - intended, persist: s - call, wire1: i - s, queue: x - i, payee: a - x, wire2: b - a } });
}
payments.sort((a, b) => a.total - b.total);
const n = payments.length;
const t0 = Math.min(...payments.map((p) => p.t));
const f2 = (x: number): string => x.toFixed(2);
console.log(`${phase}: ${n} payments joined; mean ms per segment by latency band`);
for (const [lo, hi] of [
  [0, 0.5],
  [0.5, 0.9],
  [0.9, 0.99],
  [0.99, 1],
] as const) {
  const band = payments.slice(Math.floor(lo * n), Math.floor(hi * n));
  const mean = (f: (p: Payment) => number): number => band.reduce((s, p) => s + f(p), 0) / Math.max(1, band.length);
  console.log(`  p${lo * 100}–p${hi * 100}: total ${f2(mean((p) => p.total))}  ${SEGMENTS.map((s) => `${s} ${f2(mean((p) => p.seg[s]))}`).join('  ')}`);
}
// What happened around the slowest 1%: events within 30 ms before each of its first payments.
const events: [number, string][] = [];
const gc = (who: string, list: [number, number, number][]): void => {
  for (const [at, ms, kind] of list) events.push([at, `${who} GC ${kind === 1 ? 'scavenge' : kind === 4 ? 'mark-compact' : kind === 8 ? 'incremental marking' : `kind ${kind}`} ${f2(ms)} ms`]);
};
gc('payer', payer.gc);
gc('payee', payee.gc);
for (const [who, t] of [
  ['payer', payer],
  ['payee', payee],
] as const) {
  for (const r of t.rows) if (r[0] === 'commit' && Number(r[2]) - Number(r[1]) > 1) events.push([Number(r[1]), `${who} commit ${f2(Number(r[2]) - Number(r[1]))} ms`]);
}
events.sort((a, b) => a[0] - b[0]);
const slow = payments.slice(Math.floor(0.99 * n)).sort((a, b) => a.t - b.t);
let shownUntil = -Infinity;
console.log(`slowest 1% (≥ ${f2(slow.length ? Math.min(...slow.map((p) => p.total)) : 0)} ms), by episode:`);
for (const p of slow) {
  if (p.t < shownUntil) continue;
  const episode = slow.filter((q) => q.t >= p.t && q.t < p.t + 50);
  shownUntil = p.t + 50;
  const near = events.filter(([at]) => at >= p.t - 30 && at <= p.t + 50).map(([at, what]) => `${f2(at - t0)} ${what}`);
  console.log(`  at ${f2(p.t - t0)} ms: ${episode.length} payments up to ${f2(Math.max(...episode.map((q) => q.total)))} ms; around it: ${near.join('; ') || 'no GC or long commit'}`);
}
