/**
 * End to end: a private regtest node (btcd), the payee in one process (bench/e2e-payee.ts, what
 * `paychan payee serve` runs) and the payer in another (bench/e2e-payer.ts), over the real
 * WebSocket transport on loopback, `--channels` channels opened for real on chain. This process
 * plays the miner (a block whenever the mempool holds a transaction), relays each phase's go
 * to the payer, and reads the payee's CPU time around each phase.
 *
 * Afterwards it checks the closes against the node: the payee's store is read back, one close
 * per variant is signed with the newest payment (`signClose`) and offered to the node's
 * testmempoolaccept, and a batch close of 100 channels (`signBatchClose`) is accepted,
 * broadcast and mined.
 *
 * `--store postgres [--instances N]`: the payee on a throwaway PostgreSQL server (Debian's, as
 * the tests start it), N instances sharing it (same seed), the payer's connections spread over
 * them: what one primary carries (docs/scale.md).
 *
 * Prints one JSON line (last on stdout). Run through bench/run.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { address as baddress } from 'bitcoinjs-lib';
import { loadOrCreateSeed } from '../src/app/files.js';
import { startRegtestNode } from '../src/chain/regtest/index.js';
import { RpcClient } from '../src/chain/rpc-client.js';
import { loadNativeSecp256k1 } from '../src/crypto/native.js';
import { toHex } from '../src/protocol/bytes.js';
import { signBatchClose } from '../src/protocol/batch-close.js';
import { signClose } from '../src/protocol/close.js';
import { bitcoinjsNetwork } from '../src/protocol/network.js';
import type { PayeeState } from '../src/protocol/payee-machine.js';
import { VARIANT_NAMES } from '../src/protocol/variants/index.js';
import { openStore } from '../src/store/open-store.js';
import { startPostgres, type PostgresServer } from '../test/helpers/postgres.js';
import { WalletKeys } from '../src/wallet/keys.js';
import { emitResult, envList, flag, intArg, parseArgs, progress, strArg } from './lib/args.js';
import { BenchChild, type Event } from './lib/lines.js';
import { round } from './lib/stats.js';

const args = parseArgs(process.argv.slice(2));
const BATCH = intArg(args, 'batch-close', 100);
const PROFILE = flag(args, 'profile');
const PROFILE_DIR = path.resolve(strArg(args, 'profile-dir', path.join('bench', 'out')));
const STORE = strArg(args, 'store', 'sqlite');
if (STORE !== 'sqlite' && STORE !== 'postgres') throw new TypeError(`--store must be sqlite or postgres, got ${STORE}`);
const INSTANCES = intArg(args, 'instances', 1);
if (INSTANCES > 1 && STORE !== 'postgres') throw new TypeError('--instances > 1 needs --store postgres');
const payerArgs = ['channels', 'connections', 'payments', 'latency-payments', 'latency-rate', 'fixed-rate', 'one-channel-payments', 'warmup', 'window', 'chunk'].flatMap((k) => (args.has(k) ? [`--${k}`, String(args.get(k))] : []));
const PHASES = ['fund', 'open', 'warmup', 'throughput', 'latency', 'latency-fixed', 'one-channel', 'presigned-throughput', 'presigned-latency'];
/** Where the profiled PayerClient phase goes when profiling (after the PayerClient phases). */
const PROFILE_AT = PHASES.indexOf('presigned-throughput');
const PROFILED = new Set(['profile-payer-client', 'profile-presigned', ...envList('PAYCHAN_BENCH_PROFILE_PHASES')]);
const HEAP_SAMPLED = new Set(envList('PAYCHAN_BENCH_HEAP_PHASES'));
/** Extra node flags for the payee and payer processes (experiments: --trace-gc, heap sizes). */
const payeeFlags = envList('PAYCHAN_BENCH_PAYEE_FLAGS', ' ');
// --expose-gc: the payer collects its own presigning garbage before the presigned phases.
const payerFlags = ['--expose-gc', ...envList('PAYCHAN_BENCH_PAYER_FLAGS', ' ')];

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-bench-e2e-'));
const seedFile = path.join(home, 'payer-seed');
fs.writeFileSync(seedFile, toHex(randomBytes(32)), { mode: 0o600 });
const payerSeed = Buffer.from(fs.readFileSync(seedFile, 'utf8'), 'hex');
const miningAddress = WalletKeys.fromSeed(payerSeed, 'regtest').address('receive', 0).address;
const secp = loadNativeSecp256k1();

progress('e2e: starting a private regtest node');
const node = await startRegtestNode({ miningAddress, log: (l) => progress(`[node] ${l}`) });
const rpc = new RpcClient({ url: node.rpcUrl, user: node.rpcUser, pass: node.rpcPass });
const rpcArgs = ['--rpc-url', node.rpcUrl, '--rpc-user', node.rpcUser, '--rpc-pass', node.rpcPass];
let mining = true;
let blocksMined = 0;
let miner: Promise<void> = Promise.resolve();
const children: BenchChild[] = [];
let pg: PostgresServer | undefined;
try {
  await node.mine(101);
  miner = (async () => {
    while (mining) {
      const mempool = (await rpc.call('getrawmempool').catch(() => [])) as string[];
      if (mempool.length > 0) {
        await node.mine(1).catch(() => undefined);
        blocksMined++;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const payeeDir = path.join(home, 'payee');
  let dbUrl: string | undefined;
  if (STORE === 'postgres') {
    pg = await startPostgres();
    dbUrl = await pg.createDatabase();
    progress(`e2e: payee store ${dbUrl}, ${INSTANCES} instance(s)`);
  }
  const payeeSeed = `${toHex(randomBytes(32))}\n`;
  const payees: BenchChild[] = [];
  for (let i = 0; i < INSTANCES; i++) {
    const dataDir = i === 0 ? payeeDir : `${payeeDir}-${i}`;
    if (INSTANCES > 1) {
      fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      fs.writeFileSync(path.join(dataDir, 'seed'), payeeSeed, { mode: 0o600 }); // instances share the keys
    }
    const child = new BenchChild(i === 0 ? 'payee' : `payee${i}`, 'bench/e2e-payee.ts', [...rpcArgs, '--data-dir', dataDir, '--profile-dir', PROFILE_DIR, ...(dbUrl ? ['--db', dbUrl] : [])], payeeFlags, progress);
    children.push(child);
    payees.push(child);
  }
  const payee = payees[0]!;
  const readies = await Promise.all(payees.map((p) => p.next('ready')));
  const ready = readies[0]!;
  const payer = new BenchChild(
    'payer',
    'bench/e2e-payer.ts',
    [...rpcArgs, '--seed-file', seedFile, '--ws-url', readies.map((r) => String(r.wsUrl)).join(','), '--data-dir', path.join(home, 'payer'), '--profile-dir', PROFILE_DIR, ...payerArgs, ...(PROFILE ? ['--profile-payments', String(intArg(args, 'profile-payments', 50_000))] : [])],
    payerFlags,
    progress,
  );
  children.push(payer);

  const payeeCpuMs: Record<string, number> = {};
  /** The part of payeeCpuMs spent in the kernel (system calls: socket I/O, fsync). */
  const payeeSysMs: Record<string, number> = {};
  /** CPU time used by the whole machine (every process and the kernel) during each phase. */
  const machineCpuMs: Record<string, number | null> = {};
  /** CPU time of the PostgreSQL server (the postmaster and its backends) during each phase. */
  const postgresCpuMs: Record<string, number | null> = {};
  const payeeLoop: Record<string, unknown> = {};
  /** JS heap bytes the payee allocated during each phase (lib/alloc.ts). */
  const payeeAlloc: Record<string, { allocatedBytes: number; collections: number; gcMs: number }> = {};
  const profiles: Record<string, unknown> = {};
  const phases = PROFILE ? [...PHASES.slice(0, PROFILE_AT), 'profile-payer-client', ...PHASES.slice(PROFILE_AT), 'profile-presigned'] : PHASES;
  for (const name of phases) {
    await payer.next((e) => e.event === 'phase-ready' && e.phase === name);
    progress(`e2e: phase ${name}`);
    const profiled = PROFILED.has(name);
    if (profiled) await payee.ask('profile-start', 'profiling');
    const heapSampled = HEAP_SAMPLED.has(name);
    if (heapSampled) await payee.ask('heap-start', 'heap-sampling');
    // Payee CPU is summed over the instances.
    const c0s = await Promise.all(payees.map((p) => p.ask(`cpu-begin ${name}`, 'cpu')));
    const m0 = machineBusyMs();
    const pg0 = pg ? processTreeCpuMs(pg.pid) : null;
    payer.send(`go ${name}`);
    await payer.next((e) => e.event === 'phase-done' && e.phase === name);
    const afters = await Promise.all(payees.map((p) => p.ask(`cpu-end ${name}`, 'cpu')));
    const after = afters[0]!;
    const sum = (events: Event[], key: string): number => events.reduce((n, e) => n + Number(e[key]), 0);
    payeeCpuMs[name] = round((sum(afters, 'us') - sum(c0s, 'us')) / 1000, 1);
    payeeSysMs[name] = round((sum(afters, 'sysUs') - sum(c0s, 'sysUs')) / 1000, 1);
    const m1 = machineBusyMs();
    machineCpuMs[name] = m0 === null || m1 === null ? null : round(m1 - m0, 0);
    const pg1 = pg ? processTreeCpuMs(pg.pid) : null;
    if (pg) postgresCpuMs[name] = pg0 === null || pg1 === null ? null : round(pg1 - pg0, 0);
    payeeLoop[name] = { commits: after.commits, loopDelay: after.loopDelay, payeeLatency: after.payeeLatency, sched: after.sched };
    payeeAlloc[name] = after.alloc as (typeof payeeAlloc)[string];
    if (heapSampled) await payee.ask(`heap-stop e2e-payee-${name}`, 'heap-sampled');
    if (profiled) profiles[`e2e-payee-${name}`] = (await payee.ask(`profile-stop e2e-payee-${name}`, 'profile')).summary;
  }
  const result = await payer.next('result');
  await payer.exited;
  const stoppedAll = await Promise.all(payees.map((p) => p.ask('stop', 'stopped')));
  const stopped = stoppedAll[0]!;
  await Promise.all(payees.map((p) => p.exited));

  progress('e2e: checking closes against the node');
  const closes = await checkCloses(dbUrl ?? path.join(payeeDir, 'payee.db'), loadOrCreateSeed(path.join(payeeDir, 'seed')), String(ready.payoutAddress), result);

  type Alloc = { allocatedBytes: number; collections: number; gcMs: number };
  const throughput = result.throughput as { perSec: number; payments: number; payerCpuUs: number; payerAlloc: Alloc };
  const latency = result.latency as { p50Ms: number; p99Ms: number };
  const latencyFixed = result.latencyFixed as { p50Ms: number; p99Ms: number; ratePerSec: number; achievedPerSec: number };
  const oneChannel = result.oneChannel as { perSec: number; payments: number; payerCpuUs: number };
  const perPayment = (bytes: number, payments: number) => Math.round(bytes / payments);
  const raw = result.presignedThroughput as { perSec: number; payments: number; payerCpuUs: number };
  const rawLatency = result.presignedLatency as { p50Ms: number; p99Ms: number };
  emitResult({
    e2ePaymentsPerSec: throughput.perSec,
    e2eP50Ms: latency.p50Ms,
    e2eP99Ms: latency.p99Ms,
    e2eP99At4kMs: latencyFixed.ratePerSec === 4000 ? latencyFixed.p99Ms : null,
    e2eOneChannelPaymentsPerSec: oneChannel.perSec,
    allocBytesPerPaymentPayee: perPayment(payeeAlloc.throughput!.allocatedBytes, throughput.payments),
    allocBytesPerPaymentPayer: perPayment(throughput.payerAlloc.allocatedBytes, throughput.payments),
    e2ePresignedPaymentsPerSec: raw.perSec,
    e2ePresignedP50Ms: rawLatency.p50Ms,
    e2ePresignedP99Ms: rawLatency.p99Ms,
    e2e: {
      store: STORE,
      instances: INSTANCES,
      channels: result.channels,
      connections: result.connections,
      window: result.window,
      amountSat: result.amountSat,
      node: 'btcd',
      blocksMined,
      fund: result.fund,
      open: result.open,
      throughput: {
        ...throughput,
        payeeCpuUsPerPayment: round((payeeCpuMs.throughput! * 1000) / throughput.payments, 1),
        payerCpuUsPerPayment: round(throughput.payerCpuUs / throughput.payments, 1),
        ...(pg && postgresCpuMs.throughput != null ? { postgresCpuUsPerPayment: round((postgresCpuMs.throughput * 1000) / throughput.payments, 1) } : {}),
      },
      latency: { ...latency, payeeCpuMs: payeeCpuMs.latency },
      latencyFixed: { ...latencyFixed, payeeCpuMs: payeeCpuMs['latency-fixed'] },
      oneChannel: { ...oneChannel, payeeCpuUsPerPayment: round((payeeCpuMs['one-channel']! * 1000) / oneChannel.payments, 1), payerCpuUsPerPayment: round(oneChannel.payerCpuUs / oneChannel.payments, 1) },
      payeeAlloc,
      presignedThroughput: { ...raw, payeeCpuUsPerPayment: round((payeeCpuMs['presigned-throughput']! * 1000) / raw.payments, 1), payerCpuUsPerPayment: round(raw.payerCpuUs / raw.payments, 1) },
      presignedLatency: { ...rawLatency, payeeCpuMs: payeeCpuMs['presigned-latency'] },
      payeeCpuMs,
      payeeSysMs,
      machineCpuMs,
      ...(pg ? { postgresCpuMs } : {}),
      payeeCommitsAndLoopDelay: payeeLoop,
      payeeStore: INSTANCES > 1 ? stoppedAll.map((s) => s.store) : stopped.store,
      payeeMetrics: stopped.metrics,
      ...(PROFILE ? { profiledThroughput: result.profiledThroughput, profiledPresignedThroughput: result.profiledPresignedThroughput } : {}),
    },
    closeOnChain: closes,
    ...(PROFILE ? { e2eProfiles: profiles } : {}),
  });
} finally {
  mining = false;
  await miner;
  for (const c of children) c.kill();
  rpc.close();
  await node.stop();
  await pg?.stop();
  fs.rmSync(home, { recursive: true, force: true });
}

/**
 * CPU time (ms, user + system) of process `root` and its children (PostgreSQL's backends are the
 * postmaster's children), from /proc; null where there is none.
 */
function processTreeCpuMs(root: number): number | null {
  try {
    let ticks = 0;
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let stat: string;
      try {
        stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      } catch {
        continue; // gone meanwhile
      }
      // Fields after the command (which may hold spaces) in parentheses: state ppid ... utime(14) stime(15).
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(entry) === root || Number(f[1]) === root) ticks += Number(f[11]) + Number(f[12]);
    }
    return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

/** CPU time (ms) all cores spent not idle since boot, from /proc/stat; null where there is none. */
function machineBusyMs(): number | null {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    const busy = f.slice(0, 8).reduce((a, b) => a + b, 0) - f[3]! - f[4]!; // all but idle and iowait
    return (busy * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

/**
 * Reads the payee's channels back from its store and offers closes to the node: one per variant
 * (testmempoolaccept only: they conflict with the batch), then the batch close of the first
 * `BATCH` channels, which is broadcast and mined.
 */
async function checkCloses(location: string, payeeSeed: Uint8Array, payoutAddress: string, result: Event): Promise<Record<string, unknown>> {
  const store = openStore(location);
  const states = (await store.loadPayeeChannels()).map((r) => r.state);
  await store.close();
  const paid = states.filter((s): s is Extract<PayeeState, { type: 'Open' }> => s.type === 'Open' && s.signature !== null);
  const expected = (result.channelIds as string[]).length;
  const keys = WalletKeys.fromSeed(payeeSeed, 'regtest');
  const payoutScript = baddress.toOutputScript(payoutAddress, bitcoinjsNetwork('regtest'));
  const single: Record<string, unknown> = {};
  for (const variant of VARIANT_NAMES) {
    const s = paid.find((c) => c.channel.variant === variant);
    if (!s) continue;
    const close = signClose(secp, s.channel, { totalSat: s.paidSat, signature: s.signature! }, keys.payeeChannelPrivateKey(s.keyIndex), payoutScript, 2);
    const accept = await node.backend.testAccept(close.txHex);
    single[variant] = { vsize: close.vsize, feeSat: Number(close.feeSat), paidSat: Number(s.paidSat), accepted: accept.allowed, ...(accept.allowed ? {} : { reason: accept.reason }) };
  }
  const batchChannels = paid.slice(0, BATCH).map((s) => ({ channel: s.channel, totalSat: s.paidSat, signature: s.signature!, payeePrivateKey: keys.payeeChannelPrivateKey(s.keyIndex) }));
  const batch = signBatchClose(secp, batchChannels, payoutScript, 2);
  const accept = await node.backend.testAccept(batch.txHex);
  let confirmations = 0;
  if (accept.allowed) {
    await node.backend.broadcast(batch.txHex);
    for (let i = 0; i < 100 && confirmations === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      confirmations = (await node.backend.getTransaction(batch.txid))?.confirmations ?? 0;
    }
  }
  return {
    payeeChannelsOpenAndPaid: paid.length,
    payerChannels: expected,
    single,
    batch: {
      channels: batchChannels.length,
      vsize: batch.vsize,
      vsizePerChannel: round(batch.vsize / batchChannels.length, 1),
      feeSat: Number(batch.feeSat),
      accepted: accept.allowed,
      ...(accept.allowed ? { confirmations } : { reason: accept.reason }),
    },
  };
}
