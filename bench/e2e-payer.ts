/**
 * The payer process of the end-to-end benchmark (spawned by bench/e2e.ts): one wallet, many
 * channels to one payee over a few WebSocket connections, then the measured phases.
 *
 * 1. fund: syncs the wallet (the orchestrator mined its coinbase) and splits one coin into one
 *    coin per channel, each exactly what a funding transaction needs, so every open is a
 *    one-input, changeless funding (branch-and-bound finds it at once).
 * 2. open: `--channels` real channels through `PayerClient.open` (hello, accept, v1's refund
 *    round trip, funding; the payee broadcasts it, the orchestrator mines it, the payee says
 *    channel-open), half spilman-v1, half spilman-v2, on `--connections` WebSockets.
 * 3. throughput: `--payments` payments through `PayerClient.pay` (sign, store the payer state,
 *    send; resolves on the payee's ack, which the payee sends only once the payment is durable),
 *    round-robin over the channels, at most `--window` unacknowledged.
 * 4. latency: `--latency-payments` at half the throughput rate (or `--latency-rate`), open loop;
 *    then latency-4k: the same count at a fixed 4,000 payments/s (`--fixed-rate`), a figure that
 *    compares across runs and machines.
 * 4b. one-channel: `--one-channel-payments` 1-sat payments on one channel, pipelined (at most
 *    1,000 unacknowledged, PayerClient's window): the figure comparable to a Lightning channel's.
 * 5. presigned throughput and latency: the same against the payee with payments signed before
 *    the clock starts and written as text on raw sockets — the payer's own signing and store
 *    taken out, so what is measured is the payee (and the transport).
 *
 * Before each phase it prints {"event":"phase-ready","phase":…} and waits for "go PHASE" on stdin
 * (the orchestrator starts the payee's profiler or notes its CPU time meanwhile); after it,
 * {"event":"phase-done",…}. Every phase reports its CPU time and the bytes it allocated on the
 * JS heap (lib/alloc.ts). The last stdout line is the result.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { address as baddress } from 'bitcoinjs-lib';
import { WebSocket } from 'ws';
import { connectBackend } from '../src/chain/connect.js';
import { loadNativeSecp256k1 } from '../src/crypto/native.js';
import { authMessage } from '../src/protocol/auth.js';
import { fromHex } from '../src/protocol/bytes.js';
import type { Channel } from '../src/protocol/channel.js';
import { encodeMessage, msg, type Message } from '../src/protocol/messages.js';
import { decodeMessageBytes, WireIds } from '../src/protocol/wire-bytes.js';
import { bitcoinjsNetwork } from '../src/protocol/network.js';
import { paymentSighasher, signPayment } from '../src/protocol/payment.js';
import { payerPolicy } from '../src/protocol/policy.js';
import { p2wshOutputScript } from '../src/protocol/scripts.js';
import { VARIANT_NAMES } from '../src/protocol/variants/index.js';
import { PayerClient } from '../src/payer/payer-client.js';
import { openSqliteStore } from '../src/store/sqlite-store.js';
import { connectPayee, type WsPeerLink } from '../src/transport/ws-client.js';
import { WalletKeys } from '../src/wallet/keys.js';
import { p2wpkhSpendVsize } from '../src/wallet/tx-size.js';
import { Wallet } from '../src/wallet/wallet.js';
import { envList, intArg, parseArgs, progress, strArg } from './lib/args.js';
import { LoopDelay, probeStore, SchedStats, takeCommitStats, type StoreProbe } from './lib/instrument.js';
import { emit, onStdinLines } from './lib/lines.js';
import { AllocationCounter } from './lib/alloc.js';
import { AllocationSampler, ScopedProfiler, summarize } from './lib/profile.js';
import { closedLoop, openLoop } from './lib/open-loop.js';
import { mono, monoOffset, Trace } from './lib/trace.js';
import { now, round } from './lib/stats.js';

const args = parseArgs(process.argv.slice(2));
const CHANNELS = intArg(args, 'channels', 1000);
const CONNECTIONS = intArg(args, 'connections', 8);
const PAYMENTS = intArg(args, 'payments', 100_000);
const LATENCY_PAYMENTS = intArg(args, 'latency-payments', 30_000);
/** When > 0, extra closed-loop phases of this many payments, for the payee's profiler only. */
const PROFILE_PAYMENTS = intArg(args, 'profile-payments', 0);
const WARMUP = intArg(args, 'warmup', 5_000);
/** Open-loop rate of the latency phases, payments/s; 0 (the default): half the measured throughput. */
const LATENCY_RATE = intArg(args, 'latency-rate', 0);
/** Open-loop rate of the fixed-rate latency phase, payments/s. */
const FIXED_RATE = intArg(args, 'fixed-rate', 4000);
const ONE_CHANNEL_PAYMENTS = intArg(args, 'one-channel-payments', 50_000);
const WINDOW = intArg(args, 'window', 2048);
const CHUNK = intArg(args, 'chunk', 64);
const CAPACITY_SAT = BigInt(intArg(args, 'capacity', 1_000_000));
const AMOUNT_SAT = BigInt(intArg(args, 'amount', 50));
const FEE_RATE = 2;
const PENDING_PROPOSALS = intArg(args, 'pending-proposals', 8);
// Several payee instances (comma-separated URLs): connection i goes to instance i mod n, and a
// channel always uses the same connection index, so each instance serves its own share.
const wsUrls = strArg(args, 'ws-url').split(',');
const wsUrlOf = (i: number): string => wsUrls[i % wsUrls.length]!;
const dataDir = strArg(args, 'data-dir');
const PROFILE_DIR = strArg(args, 'profile-dir', path.join('bench', 'out'));

const secp = loadNativeSecp256k1();
const backend = await connectBackend(strArg(args, 'rpc-url'), { user: strArg(args, 'rpc-user'), pass: strArg(args, 'rpc-pass'), network: 'regtest' });
const seed = fromHex(fs.readFileSync(strArg(args, 'seed-file'), 'utf8').trim());
const PROFILE_PHASES = new Set(envList('PAYCHAN_BENCH_PROFILE_PHASES'));
const HEAP_PHASES = new Set(envList('PAYCHAN_BENCH_HEAP_PHASES'));
const go = new Map<string, () => void>();
let storeProbe: StoreProbe | null = null;
const loopDelay = new LoopDelay();
const sched = new SchedStats();
const trace = new Trace('payer');
const traceAcked = (k: number, intended: number, sent: number, ack: number): void => trace.row('k', k, intended + monoOffset, sent + monoOffset, ack + monoOffset);
onStdinLines((line) => {
  const [cmd, phase] = line.trim().split(/\s+/);
  if (cmd === 'go' && phase) go.get(phase)?.();
});

/** Announces a phase, waits for the orchestrator's go, runs it, reports its CPU and wall time. */
async function phase<T>(name: string, run: () => Promise<T>): Promise<T & { payerCpuUs: number; wallMs: number }> {
  const ready = new Promise<void>((resolve) => go.set(name, resolve));
  emit({ event: 'phase-ready', phase: name });
  await ready;
  const profiler = PROFILE_PHASES.has(name) ? new ScopedProfiler() : null;
  await profiler?.start();
  const sampler = HEAP_PHASES.has(name) ? new AllocationSampler() : null;
  await sampler?.start();
  const alloc = new AllocationCounter();
  alloc.start();
  const cpu0 = process.cpuUsage();
  const t0 = now();
  if (storeProbe) takeCommitStats(storeProbe, 0);
  loopDelay.take();
  sched.take();
  trace.begin(name);
  const result = await run();
  const wallMs = now() - t0;
  // Read the phase's figures before stopping the profiler/sampler, whose serialization,
  // summary and file writes are not the phase's work.
  const cpu = process.cpuUsage(cpu0);
  const allocated = alloc.stop();
  const out = {
    ...result,
    payerAlloc: allocated,
    payerCpuUs: cpu.user + cpu.system,
    payerSysUs: cpu.system,
    wallMs: round(wallMs, 1),
    payerLoopDelay: loopDelay.take(),
    payerSched: sched.take(),
    ...(storeProbe ? { payerCommits: takeCommitStats(storeProbe, wallMs) } : {}),
  };
  trace.end(name);
  await sampler?.stop(path.join(PROFILE_DIR, `e2e-payer-${name}.heapprofile`));
  if (profiler) {
    const file = path.join(PROFILE_DIR, `e2e-payer-${name}.cpuprofile`);
    progress(`payer profile of ${name}: ${JSON.stringify(summarize(await profiler.stop(file), file, 25).functions)}`);
  }
  emit({ event: 'phase-done', phase: name });
  return out;
}

// ---- 1. fund ------------------------------------------------------------------------------
const wallet = await Wallet.open({ seed, network: 'regtest', backend, secp });
const fundPhase = await phase('fund', async () => {
  await wallet.sync();
  // What one changeless funding needs: capacity + fee of 1 P2WPKH input → 1 P2WSH output.
  const fundingVsize = p2wpkhSpendVsize(1, [p2wshOutputScript(new Uint8Array(1))]);
  const coinSat = CAPACITY_SAT + BigInt(Math.ceil(fundingVsize * FEE_RATE)) + 20n;
  const outputs = Array.from({ length: CHANNELS }, () => ({
    script: baddress.toOutputScript(wallet.receiveAddress(), bitcoinjsNetwork('regtest')),
    valueSat: coinSat,
  }));
  const split = await wallet.fund(outputs, FEE_RATE);
  await wallet.broadcast(split.txid);
  progress(`payer: split tx ${split.txid} (${split.vsize} vB, ${CHANNELS} coins of ${coinSat} sat); waiting for a block`);
  for (;;) {
    const status = await backend.getTransaction(split.txid);
    if (status && status.confirmations > 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await wallet.sync();
  return { splitTxid: split.txid, splitVsize: split.vsize };
});

// ---- 2. open ------------------------------------------------------------------------------
fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
const store = openSqliteStore(path.join(dataDir, 'payer.db'));
storeProbe = probeStore(store, false, trace.configured ? (startMs, ms) => trace.commit(startMs, ms) : undefined);
const clients: PayerClient[] = [];
const byRef = new Map<string, PayerClient>();
const rawAckHandlers = new Map<string, (totalSat: bigint) => void>();
let peerErrors = 0;
let firstPeerError = '';

/**
 * Routes a payee message to its channel's client: by tempId, channelId or an error's ref. Read
 * from the frame's bytes (channel ids interned per connection), once: the client takes the
 * decoded message.
 */
function route(bytes: Uint8Array, ids: WireIds): void {
  let m: Message;
  try {
    m = decodeMessageBytes(bytes, ids);
  } catch {
    peerErrors++;
    firstPeerError ||= Buffer.from(bytes).toString('utf8');
    return;
  }
  if (m.type === 'error') {
    peerErrors++;
    firstPeerError ||= encodeMessage(m);
  }
  if (trace.on && m.type === 'payment-ack') trace.row('ackIn', mono(), m.channelId, m.totalSat.toString());
  const ref = 'channelId' in m ? m.channelId : 'tempId' in m ? m.tempId : m.type === 'error' ? m.ref : undefined;
  if (ref === undefined) return;
  let client = byRef.get(ref);
  if (!client) {
    for (const c of clients) {
      if (c.id) byRef.set(c.id, c);
      const s = c.state;
      if (s && 'channel' in s) byRef.set(s.channel.id, c);
    }
    client = byRef.get(ref);
  }
  client?.receiveMessage(m);
}

const links: WsPeerLink[] = Array.from({ length: CONNECTIONS }, (_, i) => {
  const ids = new WireIds();
  return connectPayee(wsUrlOf(i), { onMessage: () => undefined, onFrame: (bytes) => route(bytes, ids), reconnect: false, log: (l) => progress(`payer link: ${l}`) });
});
await Promise.all(links.map((l) => l.ready()));
if (trace.configured) {
  for (const l of links) {
    const send = l.send.bind(l);
    l.send = (message) => {
      if (trace.on && message.type === 'payment') trace.row('send', mono(), message.channelId, message.totalSat.toString());
      send(message);
    };
  }
}
const openPhase = await phase('open', async () => {
  const payout = baddress.toOutputScript(wallet.changeAddress(), bitcoinjsNetwork('regtest'));
  for (let i = 0; i < CHANNELS; i++) {
    clients.push(
      new PayerClient({
        secp,
        policy: payerPolicy({ network: 'regtest' }),
        network: 'regtest',
        backend,
        wallet,
        channelKey: wallet.nextChannelKey(),
        payoutScript: payout,
        link: links[i % CONNECTIONS]!,
        store,
        fundingFeeRateSatPerVb: FEE_RATE,
        random16: () => randomBytes(16),
        log: (l) => progress(`payer: ${l}`),
      }),
    );
  }
  let opened = 0;
  const t0 = now();
  // The payee holds nothing for unfunded proposals (opening cookies); the throttle below keeps
  // the payer's own wallet from reserving coins for more proposals than it funds at once:
  // start the next proposal only once an earlier one has sent its funding, with a margin for
  // funding messages still on the wire.
  let slots = PENDING_PROPOSALS;
  const waiting: (() => void)[] = [];
  const acquire = (): Promise<void> => (slots > 0 ? (slots--, Promise.resolve()) : new Promise((r) => waiting.push(r)));
  const release = (): void => {
    const w = waiting.shift();
    if (w) w();
    else slots++;
  };
  await Promise.all(
    clients.map(async (c, i) => {
      await acquire();
      // The orchestrator mines a block whenever the mempool holds a transaction (every 100 ms while
      // 1,000 fundings arrive): 144 blocks ran out on a busy machine before the phases were done.
      const opening = c.open({ variant: VARIANT_NAMES[i % 2]!, capacitySat: CAPACITY_SAT, expiryBlocks: 2_000 });
      await c.waitFor((s) => s.type === 'AwaitingOpen' || s.type === 'Open').finally(release);
      await opening;
      if (++opened % 250 === 0) progress(`payer: ${opened}/${CHANNELS} channels open after ${Math.round(now() - t0)} ms`);
    }),
  );
  for (const c of clients) byRef.set(c.channel.id, c);
  return { channelsOpen: opened, openSeconds: round((now() - t0) / 1000, 1) };
});

// ---- 3–4. through PayerClient ---------------------------------------------------------------
const payVia = (k: number): Promise<bigint> => {
  const c = clients[k % CHANNELS]!;
  if (!trace.on) return c.pay(AMOUNT_SAT);
  // The call's time before pay() (which signs synchronously), so signing counts as 'persist';
  // the channel and total it names are known only after pay() signed.
  const called = mono();
  const paid = c.pay(AMOUNT_SAT);
  const s = c.state;
  trace.row('call', called, k, s?.type === 'Open' ? s.channel.id : '', s?.type === 'Open' ? s.signedTotalSat.toString() : '');
  return paid;
};
const warm = await phase('warmup', () => closedLoop(WARMUP, WINDOW, CHUNK, payVia));
const throughput = await phase('throughput', () => closedLoop(PAYMENTS, WINDOW, CHUNK, payVia));
const latency = await phase('latency', () => openLoop(LATENCY_PAYMENTS, LATENCY_RATE || throughput.perSec / 2, payVia, trace.on ? traceAcked : undefined));
const latencyFixed = await phase('latency-fixed', () => openLoop(LATENCY_PAYMENTS, FIXED_RATE, payVia, trace.on ? traceAcked : undefined));
// One channel, pipelined up to PayerClient's in-flight window (maxInFlight, 1,000 by default):
// 1 sat a payment so that the count fits in what the channel has left.
const ONE_CHANNEL_WINDOW = Math.min(WINDOW, 1000);
const oneChannel = await phase('one-channel', () => closedLoop(ONE_CHANNEL_PAYMENTS, ONE_CHANNEL_WINDOW, CHUNK, () => clients[0]!.pay(1n)));
const profiled = PROFILE_PAYMENTS > 0 ? await phase('profile-payer-client', () => closedLoop(PROFILE_PAYMENTS, WINDOW, CHUNK, payVia)) : undefined;
if (peerErrors > 0) throw new Error(`payee sent errors: ${firstPeerError}`);

// ---- 5. presigned, raw sockets -------------------------------------------------------------
const payerKeys = WalletKeys.fromSeed(seed, 'regtest');
interface Lane {
  readonly tempId: string;
  readonly channel: Channel;
  readonly sighasher: ReturnType<typeof paymentSighasher>;
  readonly key: Uint8Array;
  total: bigint;
  /** Unacknowledged totals, oldest first, with what to call on their ack. */
  readonly pending: { total: bigint; resolve: () => void }[];
}
const lanes: Lane[] = clients.map((c) => {
  const s = c.state;
  if (s?.type !== 'Open') throw new Error(`channel not open: ${s?.type}`);
  return { tempId: c.id!, channel: s.channel, sighasher: paymentSighasher(s.channel), key: keyOf(s.proposal.keyIndex), total: s.signedTotalSat, pending: [] };
});
function keyOf(index: number): Uint8Array {
  return payerKeys.channelKey(index).privateKey;
}
for (const lane of lanes) rawAckHandlers.set(lane.channel.id, (totalSat) => {
  let n = 0;
  while (n < lane.pending.length && lane.pending[n]!.total <= totalSat) n++;
  for (const p of lane.pending.splice(0, n)) p.resolve();
});
const sockets = await Promise.all(
  Array.from({ length: CONNECTIONS }, (_, i) => {
    const ws = new WebSocket(wsUrlOf(i), { perMessageDeflate: false });
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as { type: string; channelId?: string; totalSat?: string; challenge?: string };
      if (m.type === 'payment-ack') {
        if (trace.on) trace.row('ackIn', mono(), m.channelId, m.totalSat);
        rawAckHandlers.get(m.channelId!)?.(BigInt(m.totalSat!));
      } else if (m.type === 'challenge') {
        // A payer's connection proves itself once (else the payee cuts it as a stranger's after
        // 10 s): the channel this socket carries first (socket i carries channels c ≡ i).
        const lane = lanes[i % CHANNELS]!;
        ws.send(encodeMessage(authMessage(secp, fromHex(m.challenge!), lane.tempId, lane.key)));
      } else {
        peerErrors++;
        firstPeerError ||= String(data);
      }
    });
    return new Promise<WebSocket>((resolve, reject) => ws.once('open', () => resolve(ws)).once('error', reject));
  }),
);
function presign(count: number): string[] {
  const texts = new Array<string>(count);
  for (let k = 0; k < count; k++) {
    const lane = lanes[k % CHANNELS]!;
    lane.total += AMOUNT_SAT;
    texts[k] = encodeMessage(msg('payment', { channelId: lane.channel.id, totalSat: lane.total, signature: signPayment(secp, lane.channel, lane.sighasher, lane.key, lane.total) }));
  }
  // Presigning is the harness's own work (its garbage and ~10 MB of texts): collect it now, so
  // the full collection it would cause does not land inside the measured phase.
  (globalThis as { gc?: () => void }).gc?.();
  return texts;
}
/** Sends presigned payment k (channel k mod C, on that channel's socket); resolves on its ack. */
function sendRaw(texts: readonly string[], base: bigint[]): (k: number) => Promise<void> {
  return (k) =>
    new Promise<void>((resolve) => {
      const c = k % CHANNELS;
      const lane = lanes[c]!;
      lane.pending.push({ total: base[c]! + BigInt(Math.floor(k / CHANNELS) + 1) * AMOUNT_SAT, resolve });
      if (trace.on) trace.row('send', mono(), lane.channel.id, lane.pending.at(-1)!.total.toString(), k);
      sockets[c % CONNECTIONS]!.send(texts[k]!);
    });
}
const baseTotals = (): bigint[] => lanes.map((l) => l.total);

progress(`payer: presigning ${PAYMENTS + LATENCY_PAYMENTS} payments (untimed)`);
let base = baseTotals();
const rawTexts = presign(PAYMENTS);
const rawThroughput = await phase('presigned-throughput', () => closedLoop(PAYMENTS, WINDOW * 2, CHUNK * 4, sendRaw(rawTexts, base)));
base = baseTotals();
const rawLatencyTexts = presign(LATENCY_PAYMENTS);
const rawLatency = await phase('presigned-latency', () => openLoop(LATENCY_PAYMENTS, LATENCY_RATE || rawThroughput.perSec / 2, sendRaw(rawLatencyTexts, base), trace.on ? traceAcked : undefined));
let rawProfiled;
if (PROFILE_PAYMENTS > 0) {
  base = baseTotals();
  const texts = presign(PROFILE_PAYMENTS);
  rawProfiled = await phase('profile-presigned', () => closedLoop(PROFILE_PAYMENTS, WINDOW * 2, CHUNK * 4, sendRaw(texts, base)));
}
if (peerErrors > 0) throw new Error(`payee sent errors: ${firstPeerError}`);

for (const ws of sockets) ws.close();
await Promise.all(clients.map((c) => c.drain()));
await Promise.all(links.map((l) => l.close()));
await store.close();
await backend.close();
emit({
  event: 'result',
  channels: CHANNELS,
  connections: CONNECTIONS,
  window: WINDOW,
  amountSat: Number(AMOUNT_SAT),
  fund: fundPhase,
  open: openPhase,
  warmup: warm,
  throughput,
  latency,
  latencyFixed: { ...latencyFixed, ratePerSec: FIXED_RATE },
  oneChannel: { ...oneChannel, window: ONE_CHANNEL_WINDOW },
  presignedThroughput: rawThroughput,
  presignedLatency: rawLatency,
  ...(profiled ? { profiledThroughput: profiled, profiledPresignedThroughput: rawProfiled } : {}),
  channelIds: lanes.map((l) => l.channel.id),
});
process.exit(0);
