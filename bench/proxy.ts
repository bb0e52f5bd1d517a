/**
 * The proxy benchmark: `paychan proxy` (bench/proxy-payee.ts, its own process) in front of a
 * bare node:http upstream (bench/proxy-upstream.ts, its own process) on a private btcd regtest
 * node. `--clients` channels (default 16) are opened on chain by paying fetches here (the
 * library's client: 402, open, first paid request); then they are handed to `--client-procs`
 * load generators (bench/proxy-client.ts, default 2 processes): node:http with one keep-alive
 * socket per channel, each paid request signed when it is sent. undici's fetch cost ~150 µs of
 * CPU more per request than the proxy's own work allows on 2 cores (bench/README.md).
 *
 *   proxyPaidRequestsPerSec   closed loop: every channel sends one paid request after another
 *   paywallOverheadP50Ms/P99Ms open loop at `--rate` requests/s (default 1,000), the same load
 *                             generators and lanes straight to the upstream (bare), then through
 *                             the proxy (paid): the quantile through the proxy minus the same
 *                             quantile bare. Every payment is durable (SQLite, synchronous
 *                             commit) before the proxy calls the upstream: Paywall.admit awaits
 *                             the payee's stored ack.
 *   proxy.cpuUsPerRequest     CPU µs per paid request in the proxy, upstream and load generator
 *                             processes during the throughput phase (holds on a busy machine)
 *   proxy.fsync               fdatasync latency in the payee's data dir: the floor of a commit
 *
 * Prints one JSON line (last on stdout). Run through bench/run.ts (`--only proxy`).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRegtestNode } from '../src/chain/regtest/index.js';
import { secp256k1 } from '../src/crypto/index.js';
import { WalletKeys } from '../src/wallet/keys.js';
import { Wallet } from '../src/wallet/wallet.js';
import { payingSide, type PayingSide } from '../test/helpers/http402-env.js';
import type { RegtestEnv } from '../test/helpers/regtest-env.js';
import { emitResult, envList, intArg, parseArgs, progress } from './lib/args.js';
import { BenchChild } from './lib/lines.js';
import type { OpenLoopResult } from './lib/open-loop.js';
import { now, quantile, round, sorted } from './lib/stats.js';
import type { LaneSpec } from './proxy-client.js';
import { encodeState } from '../src/store/codec.js';

const args = parseArgs(process.argv.slice(2));
const CLIENTS = intArg(args, 'clients', 16);
const REQUESTS = intArg(args, 'requests', 30_000);
const LATENCY_REQUESTS = intArg(args, 'latency-requests', 10_000);
const RATE = intArg(args, 'rate', 1_000);
const WARMUP = intArg(args, 'warmup', 200);
const PROCS = Math.max(1, Math.min(intArg(args, 'client-procs', 2), CLIENTS));
// Each channel is opened over its own WebSocket from 127.0.0.1, and the payee admits 16
// connections per address (server-limits.ts): a 17th opening would wait forever.
if (CLIENTS < 1 || CLIENTS > 16) throw new RangeError(`--clients must be 1..16 (the payee's connections per address), got ${CLIENTS}`);
const PRICE_SAT = 1;

/** Where a load generator sends: through the proxy paying, through its free route, or straight to the upstream. */
type Target = 'paid' | 'free' | 'bare';

/** An open loop's figures (lib/open-loop.ts) counted in requests; sendLagP99Ms is the worst load generator's. */
type LatencyResult = Omit<OpenLoopResult, 'payments'> & { readonly requests: number };

/** fdatasync latency of a 4 KiB write in `file`'s directory: what one durable commit costs at least. */
function fsyncLatency(file: string, count: number): { p50Ms: number; p99Ms: number } {
  const fd = fs.openSync(file, 'w');
  const page = Buffer.alloc(4096, 1);
  const ms = new Float64Array(count);
  try {
    for (let i = 0; i < count; i++) {
      fs.writeSync(fd, page, 0, page.length, (i % 16) * page.length);
      const t = now();
      fs.fdatasyncSync(fd);
      ms[i] = now() - t;
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
  const s = ms.sort();
  return { p50Ms: round(quantile(s, 0.5), 3), p99Ms: round(quantile(s, 0.99), 3) };
}

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-bench-proxy-'));
const seed = randomBytes(32);
const miningAddress = WalletKeys.fromSeed(seed, 'regtest').address('receive', 0).address;
progress('proxy: starting a private regtest node');
const node = await startRegtestNode({ miningAddress, log: (l) => progress(`[node] ${l}`) });
const children: BenchChild[] = [];
const sides: PayingSide[] = [];
try {
  await node.mine(101 + CLIENTS);
  const secp = secp256k1();
  const wallet = await Wallet.open({ seed, network: 'regtest', backend: node.backend, secp });
  await wallet.sync();
  const mine = async (blocks: number): Promise<void> => {
    await node.mine(blocks);
    await wallet.sync();
  };
  const env = { node, backend: node.backend, secp, wallet, mine, mineTo: () => Promise.resolve(), stop: () => node.stop() } as RegtestEnv;

  const upstream = new BenchChild('upstream', 'bench/proxy-upstream.ts', [], [], progress);
  children.push(upstream);
  const upstreamUrl = String((await upstream.next('ready')).url);
  const payee = new BenchChild('proxy', 'bench/proxy-payee.ts', ['--rpc-url', node.rpcUrl, '--rpc-user', node.rpcUser, '--rpc-pass', node.rpcPass, '--data-dir', path.join(home, 'payee'), '--upstream', upstreamUrl, '--price-sat', String(PRICE_SAT)], envList('PAYCHAN_BENCH_PROXY_FLAGS', ' '), progress);
  children.push(payee);
  const proxyUrl = String((await payee.next('ready')).url);
  const target = `${proxyUrl}/hello`;

  progress(`proxy: opening ${CLIENTS} channels`);
  const opened = now();
  for (let i = 0; i < CLIENTS; i++) {
    const side = payingSide(env, { capacitySat: 10_000_000n, maxPriceSat: 10n });
    sides.push(side);
    const r = await side.fetch(target); // the 402, the open, the first paid request
    if (r.status !== 200) throw new Error(`client ${i}: ${r.status}`);
    await r.arrayBuffer();
  }
  const openSeconds = round((now() - opened) / 1000, 1);

  // The channels go to the load generators, CLIENTS / PROCS lanes each; from here on only they
  // sign (the paying fetches above never pay again).
  const lanes: LaneSpec[] = sides.map((side) => {
    const s = side.client().state;
    if (s?.type !== 'Open') throw new Error(`channel not open: ${s?.type}`);
    return { channel: s.channel, keyHex: Buffer.from(side.channelKey.privateKey).toString('hex'), totalSat: s.signedTotalSat };
  });
  const clients: BenchChild[] = [];
  for (let p = 0; p < PROCS; p++) {
    const file = path.join(home, `lanes-${p}.json`);
    fs.writeFileSync(file, encodeState(lanes.filter((_, i) => i % PROCS === p)));
    const child = new BenchChild(`client ${p}`, 'bench/proxy-client.ts', ['--proxy', proxyUrl, '--upstream', upstreamUrl, '--lanes', file, '--price-sat', String(PRICE_SAT)], [], progress);
    children.push(child);
    clients.push(child);
  }
  await Promise.all(clients.map((c) => c.next('ready')));
  const lanesOf = (p: number): number => lanes.filter((_, i) => i % PROCS === p).length;
  /** Every load generator runs `closed N` (N requests per lane); @returns requests/s of all together. */
  const closedLoop = async (perLane: number, target: Target): Promise<{ requests: number; ms: number; perSec: number }> => {
    const t0 = now();
    await Promise.all(clients.map((c) => c.ask(`closed ${perLane} ${target}`, 'closed-done')));
    const ms = now() - t0;
    return { requests: perLane * CLIENTS, ms: round(ms, 1), perSec: Math.round((perLane * CLIENTS * 1000) / ms) };
  };
  /** The open loop split over the load generators (each its share of count and rate); latencies merged. */
  const openLoop = async (count: number, perSec: number, target: Target): Promise<LatencyResult> => {
    // PAYCHAN_BENCH_TRACE: every process records this phase (bench/proxy-trace-report.ts).
    const traced = process.env.PAYCHAN_BENCH_TRACE ? [payee, upstream, ...clients] : [];
    await Promise.all(traced.map((c) => c.ask(`trace begin proxy-${target}`, 'trace')));
    const answers = await Promise.all(clients.map((c, p) => c.ask(`open ${Math.round((count * lanesOf(p)) / CLIENTS)} ${(perSec * lanesOf(p)) / CLIENTS} ${target}`, 'open-done')));
    await Promise.all(traced.map((c) => c.ask(`trace end proxy-${target}`, 'trace')));
    const all = sorted(answers.flatMap((a) => a.latencyUs as number[]).map((us) => us / 1000));
    const q = (p: number): number => round(quantile(all, p), 3);
    return {
      requests: all.length,
      targetPerSec: perSec,
      achievedPerSec: answers.reduce((sum, a) => sum + Number(a.achievedPerSec), 0),
      p50Ms: q(0.5),
      p90Ms: q(0.9),
      p99Ms: q(0.99),
      p999Ms: q(0.999),
      maxMs: round(all[all.length - 1]!, 3),
      sendLagP99Ms: Math.max(...answers.map((a) => Number(a.sendLagP99Ms))),
    };
  };

  progress('proxy: warm-up');
  await closedLoop(WARMUP, 'paid');
  await closedLoop(WARMUP, 'free');
  await closedLoop(WARMUP, 'bare');

  progress(`proxy: throughput, ${REQUESTS} paid requests on ${CLIENTS} lanes in ${PROCS} load generators`);
  const cpu = async (): Promise<{ proxy: number; upstream: number; clients: number; commits: number; loopActiveMs: number; loopIdleMs: number }> => {
    const [p, u, ...c] = await Promise.all([payee.ask('cpu', 'cpu'), upstream.ask('cpu', 'cpu'), ...clients.map((x) => x.ask('cpu', 'cpu'))]);
    return { proxy: Number(p.us), upstream: Number(u.us), clients: c.reduce((sum, x) => sum + Number(x.us), 0), commits: Number(p.commits), loopActiveMs: Number(p.loopActiveMs), loopIdleMs: Number(p.loopIdleMs) };
  };
  const perLane = Math.ceil(REQUESTS / CLIENTS);
  /** A closed loop and the CPU µs per request each process spent in it (what holds on a busy machine). */
  const measured = async (target: Target) => {
    const before = await cpu();
    const run = await closedLoop(perLane, target);
    const after = await cpu();
    const perRequest = (k: 'proxy' | 'upstream' | 'clients'): number => round((after[k] - before[k]) / run.requests, 1);
    const cpuUs = { proxy: perRequest('proxy'), upstream: perRequest('upstream'), clients: perRequest('clients') };
    const requestsPerCommit = round(run.requests / Math.max(1, after.commits - before.commits), 1);
    // The proxy's thread: share of the phase its event loop was busy, and share it was on a CPU.
    const active = after.loopActiveMs - before.loopActiveMs;
    const proxyLoop = { busy: round(active / (active + after.loopIdleMs - before.loopIdleMs), 3), onCpu: round((after.proxy - before.proxy) / 1000 / run.ms, 3) };
    progress(`proxy: ${target} ${run.perSec} requests/s, CPU µs per request ${JSON.stringify(cpuUs)}, proxy loop ${JSON.stringify(proxyLoop)}${target === 'paid' ? `, ${requestsPerCommit} payments per commit` : ''}`);
    return { ...run, cpuUs, requestsPerCommit, proxyLoop };
  };
  const throughput = await measured('paid');
  const proxyPaidRequestsPerSec = throughput.perSec;
  const cpuUsPerRequest = throughput.cpuUs;
  // The same through the proxy's free route (no paywall) and straight to the upstream: what the
  // proxy costs by itself, and what the paywall adds to it.
  const freeThroughput = await measured('free');
  const bareThroughput = await measured('bare');

  // The floor under a durable payment: an fdatasync in the payee's directory (one per commit).
  const fsync = fsyncLatency(path.join(home, 'payee', 'fsync-probe'), 300);
  progress(`proxy: fdatasync in the data dir p50 ${fsync.p50Ms} ms, p99 ${fsync.p99Ms} ms`);

  progress(`proxy: latency at ${RATE}/s, straight to the upstream then through the proxy`);
  const bare = await openLoop(LATENCY_REQUESTS, RATE, 'bare');
  const free = await openLoop(LATENCY_REQUESTS, RATE, 'free');
  const commitsBefore = (await cpu()).commits;
  const proxied = await openLoop(LATENCY_REQUESTS, RATE, 'paid');
  const latencyPaymentsPerCommit = round(proxied.requests / Math.max(1, (await cpu()).commits - commitsBefore), 2);
  const paywallOverheadP50Ms = round(proxied.p50Ms - bare.p50Ms, 3);
  const paywallOverheadP99Ms = round(proxied.p99Ms - bare.p99Ms, 3);
  // Below the asked rate the open loop measures a queue, not the paywall: say so.
  const rateHeld = bare.achievedPerSec >= 0.95 * RATE && proxied.achievedPerSec >= 0.95 * RATE;
  progress(`proxy: overhead p50 ${paywallOverheadP50Ms} ms, p99 ${paywallOverheadP99Ms} ms${rateHeld ? '' : ` (the rate was not held: ${bare.achievedPerSec}/s bare, ${proxied.achievedPerSec}/s proxied)`}`);
  progress(`proxy: p50/p99 ms bare ${bare.p50Ms}/${bare.p99Ms}, free route ${free.p50Ms}/${free.p99Ms}, paid ${proxied.p50Ms}/${proxied.p99Ms}`);

  emitResult({
    proxyPaidRequestsPerSec,
    paywallOverheadP50Ms,
    paywallOverheadP99Ms,
    proxy: {
      rateHeld,
      cpuUsPerRequest,
      loadAverage: os.loadavg().map((x) => round(x, 2)),
      clients: CLIENTS,
      clientProcesses: PROCS,
      requests: throughput.requests,
      throughputMs: throughput.ms,
      paymentsPerCommit: throughput.requestsPerCommit,
      proxyLoop: throughput.proxyLoop,
      latencyPaymentsPerCommit,
      freeRoute: { requestsPerSec: freeThroughput.perSec, cpuUsPerRequest: freeThroughput.cpuUs, proxyLoop: freeThroughput.proxyLoop, latency: free },
      bareRequestsPerSec: bareThroughput.perSec,
      bareCpuUsPerRequest: bareThroughput.cpuUs,
      fsync,
      openSeconds,
      priceSat: PRICE_SAT,
      latencyRate: RATE,
      bare,
      proxied,
    },
  });
} finally {
  for (const s of sides) await s.close().catch(() => undefined);
  for (const c of children) c.child.kill('SIGTERM');
  await Promise.all(children.map((c) => c.exited));
  await node.stop();
  fs.rmSync(home, { recursive: true, force: true });
}
