/**
 * Where the paid requests' tail goes, from a traced proxy bench run:
 *
 *   PAYCHAN_BENCH_TRACE=/tmp/ptrace npm run bench -- --only proxy
 *   node --import tsx bench/proxy-trace-report.ts /tmp/ptrace [PHASE]
 *
 * Joins the load generators' rows (intended, sent, answered) with the proxy's (arrival, the
 * paywall's admission, the answer's end) by channel and total, and splits each paid request's
 * latency into: send lag (the load generator late on its schedule), to the proxy, in the proxy
 * before the admission, the admission (verify + durable commit), the upstream and back, and the
 * way back to the client. Prints the split at p50 and averaged over the slowest 1% and 0.1%,
 * and how often a GC pause or a commit of any process overlapped those requests; and the WAL
 * fdatasyncs the admissions waited for, as they ran under the load.
 */
import fs from 'node:fs';
import path from 'node:path';

const dir = process.argv[2];
const phase = process.argv[3] ?? 'proxy-paid';
if (!dir) throw new Error('usage: proxy-trace-report.ts DIR [PHASE]');

type Rows = { rows: unknown[][]; gc: number[][] };
const read = (file: string): Rows => JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as Rows;
const files = fs.readdirSync(dir).filter((f) => f.endsWith(`-${phase}.json`));
const proxy = read(`proxy-${phase}.json`);
const clients = files.filter((f) => f.startsWith('client-')).map(read);
const upstream = files.includes(`upstream-${phase}.json`) ? read(`upstream-${phase}.json`) : { rows: [], gc: [] };

const admits = new Map<string, [number, number]>();
const reqs = new Map<string, [number, number]>();
for (const r of proxy.rows) {
  if (r[0] === 'admit') admits.set(`${r[3]}/${r[4]}`, [r[1] as number, r[2] as number]);
  if (r[0] === 'req' && r[4] !== '') reqs.set(r[4] as string, [r[1] as number, r[2] as number]);
}
const commits = proxy.rows.filter((r) => r[0] === 'commit').map((r) => [r[1] as number, r[2] as number] as const);

interface Split {
  total: number;
  sendLag: number;
  toProxy: number;
  beforeAdmit: number;
  admit: number;
  upstream: number;
  back: number;
  intended: number;
  ack: number;
}
const splits: Split[] = [];
for (const c of clients) {
  for (const r of c.rows) {
    const [, intended, sent, ack, channelId, total] = r as [string, number, number, number, string, string];
    const a = admits.get(`${channelId}/${total}`);
    const q = reqs.get(`${channelId}/${total}`);
    if (!a || !q) continue;
    splits.push({ total: ack - intended, sendLag: sent - intended, toProxy: q[0] - sent, beforeAdmit: a[0] - q[0], admit: a[1] - a[0], upstream: q[1] - a[1], back: ack - q[1], intended, ack });
  }
}
splits.sort((x, y) => x.total - y.total);
const n = splits.length;
const keys = ['total', 'sendLag', 'toProxy', 'beforeAdmit', 'admit', 'upstream', 'back'] as const;
const mean = (xs: Split[], k: (typeof keys)[number]): number => xs.reduce((s, x) => s + x[k], 0) / Math.max(1, xs.length);
const fmt = (x: number): string => x.toFixed(3).padStart(8);
const overlaps = (xs: Split[], spans: readonly (readonly [number, number])[]): number => xs.filter((x) => spans.some(([s, e]) => s < x.ack && e > x.intended)).length;
const gcSpans = (g: number[][]): [number, number][] => g.map((e) => [e[0]!, e[0]! + e[1]!]);
const clientGc = clients.flatMap((c) => gcSpans(c.gc));
console.log(`${phase}: ${n} paid requests joined (of ${clients.reduce((s, c) => s + c.rows.length, 0)}); ms`);
console.log(`${'slice'.padEnd(12)}${keys.map((k) => k.padStart(12)).join('')}   gc proxy / clients / upstream, commits overlapping`);
for (const [label, from] of [['p50 ±1%', Math.floor(n * 0.49)], ['p90..p99', Math.floor(n * 0.9)], ['slowest 1%', Math.floor(n * 0.99)], ['slowest .1%', Math.floor(n * 0.999)]] as const) {
  const to = label === 'p50 ±1%' ? Math.floor(n * 0.51) : label === 'p90..p99' ? Math.floor(n * 0.99) : n;
  const xs = splits.slice(from, to);
  console.log(`${label.padEnd(12)}${keys.map((k) => `    ${fmt(mean(xs, k))}`).join('')}   ${overlaps(xs, gcSpans(proxy.gc))}/${overlaps(xs, clientGc)}/${overlaps(xs, gcSpans(upstream.gc))} of ${xs.length}, ${overlaps(xs, commits)}`);
}
const pauses = (g: number[][]): string => {
  const d = g.map((e) => e[1]!).sort((a, b) => a - b);
  return d.length ? `${d.length} pauses, median ${d[Math.floor(d.length / 2)]!.toFixed(2)} ms, max ${d[d.length - 1]!.toFixed(2)} ms` : 'none';
};
console.log(`GC proxy: ${pauses(proxy.gc)}; clients: ${pauses(clients.flatMap((c) => c.gc))}; upstream: ${pauses(upstream.gc)}`);
const cd = commits.map(([s, e]) => e - s).sort((a, b) => a - b);
if (cd.length) console.log(`commits: ${cd.length}, median ${cd[Math.floor(cd.length / 2)]!.toFixed(3)} ms, p99 ${cd[Math.floor(cd.length * 0.99)]!.toFixed(3)} ms, max ${cd[cd.length - 1]!.toFixed(3)} ms`);
// The WAL's fdatasync as the proxy waited for it (thread pool call → callback), under the load.
const fd = proxy.rows.filter((r) => r[0] === 'fsync').map((r) => (r[2] as number) - (r[1] as number)).sort((a, b) => a - b);
if (fd.length) console.log(`WAL fdatasync: ${fd.length}, median ${fd[Math.floor(fd.length / 2)]!.toFixed(3)} ms, p90 ${fd[Math.floor(fd.length * 0.9)]!.toFixed(3)} ms, p99 ${fd[Math.floor(fd.length * 0.99)]!.toFixed(3)} ms, max ${fd[fd.length - 1]!.toFixed(3)} ms`);
