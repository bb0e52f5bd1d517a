/**
 * The proxy benchmark: `paychan proxy` (bench/proxy-payee.ts, its own process) in front of a
 * bare node:http upstream (bench/proxy-upstream.ts, its own process) on a private btcd regtest
 * node; the clients are paying fetches in this process, each over its own channel opened on
 * chain, on keep-alive connections (undici's pool).
 *
 *   proxyPaidRequestsPerSec   closed loop: `--clients` clients, each one paid request after
 *                             another (a paying fetch pays one request at a time per origin)
 *   paywallOverheadP50Ms/P99Ms open loop at `--rate` requests/s (default 1,000): latency of a
 *                             paid request through the proxy minus that of the same request
 *                             straight to the upstream, at the same rate, per quantile. Every
 *                             payment is durable (SQLite, synchronous commit) before the proxy
 *                             calls the upstream: Paywall.admit awaits the payee's stored ack.
 *   proxy.cpuUsPerRequest     CPU µs per paid request in the proxy, upstream and client
 *                             processes during the throughput phase (holds on a busy machine)
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
import { openLoop } from './lib/open-loop.js';
import { now, round } from './lib/stats.js';

const args = parseArgs(process.argv.slice(2));
const CLIENTS = intArg(args, 'clients', 16);
const REQUESTS = intArg(args, 'requests', 30_000);
const LATENCY_REQUESTS = intArg(args, 'latency-requests', 10_000);
const RATE = intArg(args, 'rate', 1_000);
const WARMUP = intArg(args, 'warmup', 200);
const PRICE_SAT = 1;

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
  const paid = async (side: PayingSide): Promise<void> => {
    const r = await side.fetch(target);
    if (r.status !== 200) throw new Error(`paid request: ${r.status} ${await r.text()}`);
    await r.arrayBuffer();
  };
  const direct = async (): Promise<void> => {
    const r = await fetch(`${upstreamUrl}/hello`);
    if (r.status !== 200) throw new Error(`direct request: ${r.status}`);
    await r.arrayBuffer();
  };
  progress('proxy: warm-up');
  await Promise.all(sides.map(async (s) => {
    for (let i = 0; i < WARMUP; i++) await paid(s);
  }));
  for (let i = 0; i < WARMUP * 4; i++) await direct();

  progress(`proxy: throughput, ${REQUESTS} paid requests on ${CLIENTS} clients`);
  const cpu = async (): Promise<{ proxy: number; upstream: number; clients: number }> => {
    const [p, u] = await Promise.all([payee.ask('cpu', 'cpu'), upstream.ask('cpu', 'cpu')]);
    const c = process.cpuUsage();
    return { proxy: Number(p.us), upstream: Number(u.us), clients: c.user + c.system };
  };
  const cpuBefore = await cpu();
  const t0 = now();
  const perClient = Math.ceil(REQUESTS / CLIENTS);
  await Promise.all(sides.map(async (s) => {
    for (let i = 0; i < perClient; i++) await paid(s);
  }));
  const throughputMs = now() - t0;
  const proxyPaidRequestsPerSec = Math.round((perClient * CLIENTS * 1000) / throughputMs);
  const cpuAfter = await cpu();
  // CPU µs per paid request in each process: what the figures would be on idle cores.
  const cpuUsPerRequest = {
    proxy: round((cpuAfter.proxy - cpuBefore.proxy) / (perClient * CLIENTS), 1),
    upstream: round((cpuAfter.upstream - cpuBefore.upstream) / (perClient * CLIENTS), 1),
    clients: round((cpuAfter.clients - cpuBefore.clients) / (perClient * CLIENTS), 1),
  };
  progress(`proxy: ${proxyPaidRequestsPerSec} paid requests/s`);

  progress(`proxy: latency at ${RATE}/s, straight to the upstream then through the proxy`);
  const bare = await openLoop(LATENCY_REQUESTS, RATE, () => direct());
  const proxied = await openLoop(LATENCY_REQUESTS, RATE, (k) => paid(sides[k % CLIENTS]!));
  const paywallOverheadP50Ms = round(proxied.p50Ms - bare.p50Ms, 3);
  const paywallOverheadP99Ms = round(proxied.p99Ms - bare.p99Ms, 3);
  // Below the asked rate the open loop measures a queue, not the paywall: say so.
  const rateHeld = bare.achievedPerSec >= 0.95 * RATE && proxied.achievedPerSec >= 0.95 * RATE;
  progress(`proxy: overhead p50 ${paywallOverheadP50Ms} ms, p99 ${paywallOverheadP99Ms} ms${rateHeld ? '' : ` (the rate was not held: ${bare.achievedPerSec}/s bare, ${proxied.achievedPerSec}/s proxied)`}`);

  emitResult({
    proxyPaidRequestsPerSec,
    paywallOverheadP50Ms,
    paywallOverheadP99Ms,
    proxy: { rateHeld, cpuUsPerRequest, loadAverage: os.loadavg().map((x) => round(x, 2)), clients: CLIENTS, requests: perClient * CLIENTS, throughputMs: round(throughputMs, 1), openSeconds, priceSat: PRICE_SAT, latencyRate: RATE, bare, proxied },
  });
} finally {
  for (const s of sides) await s.close().catch(() => undefined);
  for (const c of children) c.child.kill('SIGTERM');
  await Promise.all(children.map((c) => c.exited));
  await node.stop();
  fs.rmSync(home, { recursive: true, force: true });
}
