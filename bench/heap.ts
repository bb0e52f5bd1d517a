/**
 * Payee heap per idle open channel. Two steps, two processes:
 *
 * 1. (this process) writes `--channels` Open channel states to a SQLite store in a temp dir, as
 *    a payee that has run for a while holds them: each paid once (a total and the payer's
 *    signature on it), half spilman-v1, half spilman-v2.
 * 2. (a child with --expose-gc) opens that store and measures `heapUsed` after full GCs before
 *    and after `PayeeService.open` restores every channel: the delta / channels is the cost of
 *    an idle open channel as the service holds it after a restart (states, its maps, its
 *    per-channel promise chains). Then it takes one payment on every channel and measures again:
 *    a channel that has been paid since the restart also holds its cached payment sighasher.
 *    `arrayBuffers` (byte storage outside the V8 heap) is reported beside it.
 *
 * Prints one JSON line (last on stdout). Run through bench/run.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PayeeService } from '../src/payee/payee-service.js';
import type { Message } from '../src/protocol/messages.js';
import { openSqliteStore } from '../src/store/sqlite-store.js';
import type { PeerLink } from '../src/transport/link.js';
import { emitResult, flag, intArg, parseArgs, progress, strArg } from './lib/args.js';
import { openState, paymentSighasher, paymentText, signTotal, syntheticChannel, benchPayeeOptions } from './lib/fixtures.js';
import { BenchChild } from './lib/lines.js';
import { round } from './lib/stats.js';

const args = parseArgs(process.argv.slice(2));
const CHANNELS = intArg(args, 'channels', 100_000);
const PAID_SAT = 1_000n;

if (strArg(args, 'mode', 'build') === 'measure') await measure(strArg(args, 'db'));
else await build();

async function build(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-bench-heap-'));
  try {
    const db = path.join(dir, 'payee.db');
    progress(`heap: storing ${CHANNELS} open channels`);
    const store = openSqliteStore(db);
    const saves: Promise<void>[] = [];
    for (let i = 0; i < CHANNELS; i++) {
      const channel = syntheticChannel(i);
      const signature = signTotal(channel, paymentSighasher(channel), PAID_SAT);
      saves.push(store.savePayeeChannel(openState(i, channel).tempId, openState(i, channel, PAID_SAT, signature)));
      if (saves.length === 10_000) await Promise.all(saves.splice(0));
    }
    await Promise.all(saves);
    await store.close();
    const child = new BenchChild('heap', 'bench/heap.ts', ['--mode', 'measure', '--db', db, '--channels', String(CHANNELS), ...(flag(args, 'no-warm') ? ['--no-warm'] : [])], ['--expose-gc'], progress);
    const result = await child.next('heap-result');
    await child.exited;
    const { event: _, ...rest } = result;
    emitResult({ ...rest, dbBytesPerChannel: Math.round(fs.statSync(db).size / CHANNELS) });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function fullGc(): Promise<NodeJS.MemoryUsage> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage();
}

async function measure(db: string): Promise<void> {
  const store = openSqliteStore(db);
  const options = benchPayeeOptions(store);
  // Warm the code paths (and the store) on nothing, so the baseline holds the code, not us.
  await (await PayeeService.open({ ...options, store: openSqliteStore(':memory:') })).drain();
  const before = await fullGc();
  const service = await PayeeService.open(options);
  const idle = await fullGc();
  const count = service.channels().length;
  if (count !== CHANNELS) throw new Error(`restored ${count} channels, expected ${CHANNELS}`);

  let warm: NodeJS.MemoryUsage | null = null;
  if (!flag(args, 'no-warm')) {
    progress(`heap: one payment on each of ${CHANNELS} channels`);
    let texts: string[] | null = [];
    for (let i = 0; i < CHANNELS; i++) {
      const channel = syntheticChannel(i);
      const total = PAID_SAT + 10n;
      texts.push(paymentText(channel.id, total, signTotal(channel, paymentSighasher(channel), total)));
    }
    let acks = 0;
    let bad = '';
    const link: PeerLink = { send: (m: Message) => (m.type === 'payment-ack' ? acks++ : (bad ||= JSON.stringify(m))) };
    for (let i = 0; i < texts.length; i += 512) {
      for (const t of texts.slice(i, i + 512)) void service.receive(t, link);
      await new Promise((r) => setImmediate(r));
    }
    texts = null;
    await service.drain();
    if (acks !== CHANNELS) throw new Error(`${acks} acks for ${CHANNELS} payments: ${bad}`);
    warm = await fullGc();
  }
  // Attribution: the decoded states alone (what the store hands the service), and the cost of
  // one small Uint8Array (a state holds nine: keys, scripts, the signature, twice some of them).
  let states: unknown[] | null = (await store.loadPayeeChannels()).map((r) => r.state);
  const statesOnly = await fullGc();
  const statesBytes = Math.round((statesOnly.heapUsed - (warm ?? idle).heapUsed) / CHANNELS);
  states = null;
  const afterDrop = await fullGc();
  let arrays: Uint8Array[] | null = Array.from({ length: CHANNELS }, () => new Uint8Array(33));
  const withArrays = await fullGc();
  const uint8ArrayBytes = Math.round((withArrays.heapUsed - afterDrop.heapUsed + (withArrays.arrayBuffers - afterDrop.arrayBuffers)) / CHANNELS);
  arrays = null;
  const sample = service.channels()[0]!;
  const uint8Arrays = countTypedArrays(sample);
  const per = (a: NodeJS.MemoryUsage, b: NodeJS.MemoryUsage, k: 'heapUsed' | 'arrayBuffers' | 'external') => Math.round((a[k] - b[k]) / CHANNELS);
  process.stdout.write(
    `${JSON.stringify({
      event: 'heap-result',
      heapBytesPerChannel: per(idle, before, 'heapUsed'),
      heapChannels: CHANNELS,
      heap: {
        idle: { heapUsedBytesPerChannel: per(idle, before, 'heapUsed'), arrayBuffersBytesPerChannel: per(idle, before, 'arrayBuffers') },
        ...(warm
          ? { afterOnePaymentEach: { heapUsedBytesPerChannel: per(warm, before, 'heapUsed'), arrayBuffersBytesPerChannel: per(warm, before, 'arrayBuffers') } }
          : {}),
        attribution: {
          decodedStateBytes: statesBytes,
          serviceOverheadBytes: per(idle, before, 'heapUsed') - statesBytes,
          uint8ArraysPerState: uint8Arrays,
          bytesPerSmallUint8Array: uint8ArrayBytes,
        },
        baselineHeapUsedMB: round(before.heapUsed / 2 ** 20, 1),
        idleHeapUsedMB: round(idle.heapUsed / 2 ** 20, 1),
        ...(warm ? { warmHeapUsedMB: round(warm.heapUsed / 2 ** 20, 1) } : {}),
      },
    })}\n`,
  );
  await store.close();
  // Keep the service alive until the last measurement.
  if (service.channels().length !== CHANNELS || arrays !== null || states !== null) throw new Error('unreachable');
}

function countTypedArrays(value: unknown, seen = new Set<unknown>()): number {
  if (value instanceof Uint8Array) return seen.has(value) ? 0 : (seen.add(value), 1);
  if (value === null || typeof value !== 'object' || seen.has(value)) return 0;
  seen.add(value);
  return Object.values(value).reduce((n: number, v) => n + countTypedArrays(v, seen), 0);
}
