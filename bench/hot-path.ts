/**
 * The payee's whole per-payment work, in this process, on one core, and the limit it is held to.
 *
 * - Ceiling: native ECDSA verifications per second (libsecp256k1 through the project's
 *   `Secp256k1`), measured right before and right after the hot path, in this same process, so
 *   the ratio compares like with like on a machine other work may share.
 * - Hot path: what a payee connection does with a frame — the payment decoded from the frame's
 *   bytes (`decodeMessageBytes`, one id interner per 125 channels as over 8 connections), the real
 *   `PayeeService.handle` (state machine, sighash, verification), the real SQLite store (WAL,
 *   group commit) in a temp dir, and every ack written as the server sends it (`wireFrame`).
 *   Payments for `--channels` Open channels are signed before the clock starts and fed
 *   round-robin, `--chunk` per event-loop turn with at most `--window` unacknowledged (like
 *   frames arriving on sockets); the clock runs until the last ack is out.
 * - Breakdown: decode, sighash, verify, the rest of the step, encoding the state and the ack
 *   timed alone (median of 5 runs); the store's commit time measured inside the hot path itself
 *   (a probe around the group-commit transaction), split into the upserts and the rest (COMMIT,
 *   fsync) with a store-only run at the same batch size; what is left is the driver (promise
 *   chains, scheduling), GC, and time the process was not on the CPU.
 *
 * Prints one JSON line (last on stdout). Run through bench/run.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PayeeService } from '../src/payee/payee-service.js';
import type { Channel } from '../src/protocol/channel.js';
import { decodeMessage, msg, type Message } from '../src/protocol/messages.js';
import { payeeStep, type PayeeContext, type PayeeState } from '../src/protocol/payee-machine.js';
import { paymentDigest } from '../src/protocol/payment.js';
import { payeePolicy } from '../src/protocol/policy.js';
import type { PaymentSighasher } from '../src/protocol/sighash.js';
import { decodeMessageBytes, WireIds } from '../src/protocol/wire-bytes.js';
import { encodeState } from '../src/store/codec.js';
import { openSqliteStore } from '../src/store/sqlite-store.js';
import { FrameSlab } from '../src/transport/frame-slab.js';
import type { PeerLink } from '../src/transport/link.js';
import { emitResult, flag, intArg, parseArgs, progress, strArg } from './lib/args.js';
import { PAYEE_KEY, openState, paymentSighasher, paymentText, secp, signTotal, syntheticChannel, benchPayeeOptions } from './lib/fixtures.js';
import { countSaves, probeStore } from './lib/instrument.js';
import { PAYEE_INCLUSIVE, ScopedProfiler, summarize, type ProfileSummary } from './lib/profile.js';
import { cpuMicros, medianRate, now, round } from './lib/stats.js';

const args = parseArgs(process.argv.slice(2));
const CHANNELS = intArg(args, 'channels', 1000);
const PER_CHANNEL = intArg(args, 'payments-per-channel', 100);
const WINDOW = intArg(args, 'window', 4096);
const CHUNK = intArg(args, 'chunk', 256);
const MICRO_MS = intArg(args, 'micro-ms', 300);
const PROFILE = flag(args, 'profile');
const PROFILE_DIR = strArg(args, 'profile-dir', path.join('bench', 'out'));
const AMOUNT_SAT = 10n;
/** The first tenth of the payments warms the JIT and the database; it is not timed. */
const WARMUP_FRACTION = 0.1;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-bench-hot-'));
try {
  emitResult(await main());
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}

async function main(): Promise<Record<string, unknown>> {
  const channels = Array.from({ length: CHANNELS }, (_, i) => syntheticChannel(i));
  const sighashers = channels.map((c) => paymentSighasher(c));
  const store = openSqliteStore(path.join(dir, 'payee.db'));
  await Promise.all(channels.map((c, i) => store.savePayeeChannel(openState(i, c).tempId, openState(i, c))));
  const pragmas = store.pragmas();
  // Restored from the store, as after a restart: the service holds decoded states.
  const service = await PayeeService.open(benchPayeeOptions(store));

  const total = CHANNELS * PER_CHANNEL;
  progress(`hot path: signing ${total} payments for ${CHANNELS} channels (untimed)`);
  const texts: string[] = new Array<string>(total);
  for (let j = 0; j < total; j++) {
    const c = j % CHANNELS;
    const totalSat = BigInt(Math.floor(j / CHANNELS) + 1) * AMOUNT_SAT;
    texts[j] = paymentText(channels[c]!.id, totalSat, signTotal(channels[c]!, sighashers[c]!, totalSat));
  }
  // The frames as a connection reads them, each from its own buffer (ws hands over a fresh one).
  const frames = texts.map((t) => Buffer.from(t, 'utf8'));
  const decoded = texts.slice(0, Math.min(total, 8192)).map((t) => decodeMessage(t) as Extract<Message, { type: 'payment' }>);
  const byId = new Map(channels.map((c, i) => [c.id, i]));
  // Copied: a sighasher's digest array is its own, rewritten by its next call.
  const digests = decoded.map((p) => paymentDigest(channels[byId.get(p.channelId)!]!, sighashers[byId.get(p.channelId)!]!, p.totalSat).slice());
  /** Verifications per second of wall time and of this thread's CPU time (median of 5 × 400 ms). */
  const ceiling = (): { wall: number; cpu: number } => {
    const wall: number[] = [];
    const cpu: number[] = [];
    for (let r = 0; r < 5; r++) {
      const c0 = process.cpuUsage();
      const t0 = now();
      let n = 0;
      while (now() - t0 < 400) {
        for (let b = 0; b < 256; b++, n++) {
          const k = n % decoded.length;
          if (!secp.ecdsaVerify(decoded[k]!.signature, digests[k]!, channels[0]!.payerPubkey)) throw new Error('bad signature');
        }
      }
      wall.push((n * 1000) / (now() - t0));
      cpu.push((n * 1e6) / cpuMicros(c0));
    }
    const med = (xs: number[]): number => xs.sort((a, b) => a - b)[2]!;
    return { wall: med(wall), cpu: med(cpu) };
  };

  let acks = 0;
  let errors = 0;
  let firstError = '';
  let onAck: () => void = () => undefined;
  const link: PeerLink = {
    send(m: Message) {
      ackSlab.wireFrame(m); // what the server does with every reply
      if (m.type === 'payment-ack') {
        acks++;
        onAck();
      } else {
        errors++;
        firstError ||= JSON.stringify(m);
      }
    },
  };
  // One interner per connection, as the server has; 8 connections share the channels.
  const ids = Array.from({ length: 8 }, () => new WireIds(256));
  const ackSlab = new FrameSlab();
  const drive = (from: number, to: number): Promise<number> =>
    new Promise((resolve) => {
      const acked0 = acks;
      let next = from;
      const start = now();
      onAck = () => {
        if (acks - acked0 === to - from) resolve(now() - start);
      };
      const pump = (): void => {
        let n = 0;
        while (n < CHUNK && next < to && next - from - (acks - acked0) < WINDOW) {
          const j = next++;
          void service.handle(decodeMessageBytes(frames[j]!, ids[j % CHANNELS % ids.length]!), link);
          n++;
        }
        if (next < to) setImmediate(pump);
      };
      pump();
    });

  const warm = Math.floor(total * WARMUP_FRACTION);
  progress(`hot path: ${warm} warm-up payments, then ${total - warm} timed`);
  await drive(0, warm);
  if (errors > 0) throw new Error(`payee refused payments: ${firstError}`);
  const ceilingBefore = ceiling();

  const probe = probeStore(store);
  const saves = countSaves(store);
  const stats0 = store.stats();
  const cpu0 = process.cpuUsage();
  const load0 = os.loadavg()[0]!;
  const profiler = new ScopedProfiler();
  if (PROFILE) await profiler.start();
  const ms = await drive(warm, total);
  let profile: ProfileSummary | undefined;
  if (PROFILE) {
    const file = path.join(PROFILE_DIR, 'hot-path.cpuprofile');
    profile = summarize(await profiler.stop(file), file, 20, PAYEE_INCLUSIVE);
  }
  const cpuUs = cpuMicros(cpu0);
  const stats1 = store.stats();
  if (errors > 0) throw new Error(`payee refused payments: ${firstError}`);
  const ceilingAfter = ceiling();
  const timed = total - warm;
  const commits = stats1.commits - stats0.commits;
  const rows = stats1.rows - stats0.rows;
  const perSec = (timed * 1000) / ms;
  await service.drain();
  await store.close();

  const micro = await microBreakdown(channels, sighashers, frames, decoded, digests, rows / Math.max(1, commits));
  const perPaymentUs = 1e6 / perSec;
  const commitUs = probe ? (probe.commitMs * 1000) / timed : NaN;
  const upsertUs = micro.upsertUs;
  // Encoding the whole state happens only for full-state saves (a store with a payment-only save
  // skips it on the hot path).
  const fullShare = saves.fullState / Math.max(1, saves.fullState + saves.paymentOnly);
  const encodeUs = micro.encodeStateUs * fullShare;
  const storeUs = encodeUs + commitUs;
  const accounted = micro.decodeUs + micro.stepUs + storeUs + micro.ackEncodeUs;
  const verifyCeilingPerSec = (ceilingBefore.wall + ceilingAfter.wall) / 2;
  const verifyCeilingCpuPerSec = (ceilingBefore.cpu + ceilingAfter.cpu) / 2;
  return {
    verifyCeilingPerSec: Math.round(verifyCeilingPerSec),
    payeeHotPathPerSec: Math.round(perSec),
    hotPathRatio: round(perSec / verifyCeilingPerSec, 3),
    verifyCeiling: {
      beforePerSec: Math.round(ceilingBefore.wall),
      afterPerSec: Math.round(ceilingAfter.wall),
      /** Per second of this process's CPU time: the ceiling with other load on the machine taken out. */
      perCpuSecond: Math.round(verifyCeilingCpuPerSec),
      implementation: secp.name,
    },
    hotPath: {
      channels: CHANNELS,
      payments: timed,
      warmupPayments: warm,
      window: WINDOW,
      chunk: CHUNK,
      elapsedMs: round(ms, 1),
      perPaymentUs: round(perPaymentUs, 2),
      cpuUtilization: round(cpuUs / 1000 / ms, 2),
      /** Process CPU (all threads: V8's concurrent GC helpers too), so it can exceed wall time. */
      processCpuUsPerPayment: round(cpuUs / timed, 2),
      loadAverage1m: round(load0, 2),
      /** Other work on the machine: wall-clock figures (and the breakdown's remainder) suffer. */
      machineContended: load0 > os.cpus().length - 0.5 || cpuUs / 1000 / ms < 0.8,
      commits,
      paymentsPerCommit: round(timed / Math.max(1, commits), 1),
      rowsPerCommit: round(rows / Math.max(1, commits), 1),
      saves: { ...saves },
      sqlite: { journalMode: pragmas.journalMode, synchronous: pragmas.synchronous === 2 ? 'FULL' : String(pragmas.synchronous) },
    },
    hotPathBreakdownUs: {
      decodeUs: round(micro.decodeUs, 2),
      sighashUs: round(micro.sighashUs, 2),
      verifyUs: round(micro.verifyUs, 2),
      stepOtherUs: round(micro.stepUs - micro.sighashUs - micro.verifyUs, 2),
      storeUs: round(storeUs, 2),
      storeEncodeStateUs: round(encodeUs, 2),
      /** Full-state upsert, timed in a store-only run (what a full-state save costs). */
      storeUpsertUs: round(upsertUs, 2),
      /** COMMIT, its fsync and the transaction wrapper: the event loop is blocked meanwhile. */
      storeCommitOtherUs: round(commitUs - upsertUs * fullShare, 2),
      storeCommitUs: round(commitUs, 2),
      ackEncodeUs: round(micro.ackEncodeUs, 2),
      /** The remainder: promise chains and scheduling in the driver, GC, and (on a busy machine) time off the CPU. */
      driverPromisesGcUs: round(perPaymentUs - accounted, 2),
      totalUs: round(perPaymentUs, 2),
      encodedStateBytes: encodeState(openState(0, channels[0]!, 10n, decoded[0]!.signature)).length,
      paymentMessageBytes: texts[0]!.length,
    },
    ...(profile ? { hotPathProfile: profile } : {}),
  };
}

/** Each piece of the per-payment work timed alone: µs per payment, median of 5 runs. */
async function microBreakdown(
  channels: readonly Channel[],
  sighashers: readonly PaymentSighasher[],
  frames: readonly Buffer[],
  decoded: readonly Extract<Message, { type: 'payment' }>[],
  digests: readonly Uint8Array[],
  rowsPerCommit: number,
): Promise<{ decodeUs: number; sighashUs: number; verifyUs: number; stepUs: number; encodeStateUs: number; ackEncodeUs: number; upsertUs: number }> {
  const n = frames.length;
  const ids = Array.from({ length: 8 }, () => new WireIds(256));
  const m = decoded.length;
  const byId = new Map(channels.map((c, i) => [c.id, i]));
  const idx = decoded.map((p) => byId.get(p.channelId)!);
  const decode = medianRate((i) => decodeMessageBytes(frames[i % n]!, ids[(i % n) % channels.length % ids.length]), MICRO_MS);
  const sighash = medianRate((i) => {
    const k = i % m;
    paymentDigest(channels[idx[k]!]!, sighashers[idx[k]!]!, decoded[k]!.totalSat);
  }, MICRO_MS);
  const verify = medianRate((i) => {
    const k = i % m;
    if (!secp.ecdsaVerify(decoded[k]!.signature, digests[k]!, channels[idx[k]!]!.payerPubkey)) throw new Error('bad signature');
  }, MICRO_MS);
  const ctx: PayeeContext = { secp, policy: payeePolicy({ network: 'regtest' }), privateKey: () => PAYEE_KEY, openingSecret: new Uint8Array(32) };
  const states: PayeeState[] = channels.map((c, i) => openState(i, c));
  const step = medianRate((i) => {
    const k = i % m;
    payeeStep(ctx, states[idx[k]!]!, { type: 'message', message: decoded[k]!, tipHeight: 100 });
  }, MICRO_MS);
  const paid = decoded.slice(0, 1000).map((p, k) => openState(idx[k]!, channels[idx[k]!]!, p.totalSat, p.signature));
  const encState = medianRate((i) => encodeState(paid[i % paid.length]!), MICRO_MS);
  const ack = msg('payment-ack', { channelId: channels[0]!.id, totalSat: 12_345n });
  const ackSlab = new FrameSlab();
  const ackEncode = medianRate(() => ackSlab.wireFrame(ack), MICRO_MS);
  // The store alone: batches of `rowsPerCommit` saves of distinct channels, each one commit, with
  // every upsert statement timed (too costly a probe for the hot path itself).
  const scratch = openSqliteStore(path.join(dir, 'scratch.db'));
  const probe = probeStore(scratch, true);
  const batch = Math.max(1, Math.min(paid.length, Math.round(rowsPerCommit)));
  let rows = 0;
  for (const t0 = now(); now() - t0 < MICRO_MS * 3; rows += batch) {
    await Promise.all(paid.slice(0, batch).map((st) => scratch.savePayeeChannel(st.tempId, st)));
  }
  await scratch.close();
  return {
    upsertUs: probe ? (probe.upsertMs * 1000) / rows : NaN,
    decodeUs: decode.micros,
    sighashUs: sighash.micros,
    verifyUs: verify.micros,
    stepUs: step.micros,
    encodeStateUs: encState.micros,
    ackEncodeUs: ackEncode.micros,
  };
}
