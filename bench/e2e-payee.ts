/**
 * The payee process of the end-to-end benchmark: exactly what `paychan payee serve` runs
 * (`startPayeeApp`: PayeeService + SQLite store + HTTP/WebSocket server), plus a control channel
 * on stdin for the orchestrator (bench/e2e.ts):
 *
 *   cpu-begin NAME      → {"event":"cpu","us":…}        CPU time used so far (user + system);
 *   cpu-end NAME        → {"event":"cpu","us":…,"alloc":…} the same, and the JS heap bytes
 *                                                      allocated since cpu-begin (lib/alloc.ts)
 *   profile-start NAME  → {"event":"profiling"}        starts V8's sampling profiler
 *   profile-stop NAME   → {"event":"profile",…}        writes DIR/NAME.cpuprofile, summarizes it
 *   stop                → {"event":"stopped",…}        closes everything (store stats) and exits
 *
 * On start it prints {"event":"ready","wsUrl":…,"payoutAddress":…}.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { startPayeeApp } from '../src/app/payee-app.js';
import { connectBackend } from '../src/chain/connect.js';
import { SqliteStore } from '../src/store/sqlite-store.js';
import { parseArgs, strArg } from './lib/args.js';
import { emit, onStdinLines } from './lib/lines.js';
import { LoopDelay, probePaymentLatency, SchedStats, probeStore, takeCommitStats } from './lib/instrument.js';
import type { Message } from '../src/protocol/messages.js';
import { PaymentLatency } from '../src/transport/payment-latency.js';
import { mono, Trace } from './lib/trace.js';
import { AllocationSampler, PAYEE_INCLUSIVE, ScopedProfiler, summarize } from './lib/profile.js';
import { AllocationCounter, type AllocationFigures } from './lib/alloc.js';

const args = parseArgs(process.argv.slice(2));
const profileDir = strArg(args, 'profile-dir', path.join('bench', 'out'));
const backend = await connectBackend(strArg(args, 'rpc-url'), { user: strArg(args, 'rpc-user'), pass: strArg(args, 'rpc-pass'), network: 'regtest' });
const app = await startPayeeApp({
  network: 'regtest',
  backend,
  dataDir: strArg(args, 'data-dir'),
  host: '127.0.0.1',
  port: 0,
  priceSat: 10n,
  fallbackFeeRateSatPerVb: 2,
  ...(args.has('db') ? { dbPath: strArg(args, 'db') } : {}),
  log: (line) => process.stderr.write(`${line}\n`),
});
// The bench reads the SQLite adapter's own counters (commits, rows per commit); PostgreSQL's
// (`--db postgres://…`) gives its stats at the end only.
const sqlite = app.store instanceof SqliteStore ? app.store : null;
const trace = new Trace('payee');
const storeProbe = sqlite ? probeStore(sqlite, false, trace.configured ? (startMs, ms) => trace.commit(startMs, ms) : undefined) : null;
const payeeLatency = probePaymentLatency(app.server.metrics.paymentLatency);
const sched = new SchedStats();
const loopDelay = new LoopDelay();
if (trace.configured) {
  const proto = PaymentLatency.prototype as unknown as { frameIn(c: string, t: bigint, now: number): void; ackOut(c: string, t: bigint, now: number): number | undefined };
  const frameIn = proto.frameIn;
  const ackOut = proto.ackOut;
  proto.frameIn = function (c, t, now) {
    if (trace.on) trace.row('in', mono(), c, t.toString());
    frameIn.call(this, c, t, now);
  };
  proto.ackOut = function (c, t, now) {
    if (trace.on) trace.row('ack', mono(), c, t.toString());
    return ackOut.call(this, c, t, now);
  };
  // The server's connections decode each frame once and route the message to service.handle.
  const service = app.service as unknown as { handle(message: Message, link: unknown): Promise<void> };
  const handle = service.handle.bind(service);
  service.handle = (message, link) => {
    if (trace.on && message.type === 'payment') trace.row('rx', mono(), message.channelId, message.totalSat.toString());
    return handle(message, link);
  };
}
let lastSample = performance.now();
emit({ event: 'ready', wsUrl: app.server.wsUrl, payoutAddress: app.payoutAddress, pid: process.pid });

const profiler = new ScopedProfiler();
const sampler = new AllocationSampler();
const alloc = new AllocationCounter();
let queue = Promise.resolve();
onStdinLines((line) => {
  queue = queue.then(() => command(line.trim())).catch((err: unknown) => emit({ event: 'error', message: String(err) }));
});

async function command(line: string): Promise<void> {
  const [cmd, name = 'payee'] = line.split(/\s+/);
  switch (cmd) {
    // A phase's first and last sample: its trace (if it is traced) runs between the two.
    case 'cpu-begin':
      trace.begin(name);
      emitCpu(null);
      alloc.start();
      return;
    case 'cpu-end':
      emitCpu(alloc.stop());
      trace.end(name);
      return;
    case 'heap-start':
      await sampler.start();
      emit({ event: 'heap-sampling' });
      return;
    case 'heap-stop':
      await sampler.stop(path.join(profileDir, `${name}.heapprofile`));
      emit({ event: 'heap-sampled' });
      return;
    case 'profile-start':
      await profiler.start();
      emit({ event: 'profiling' });
      return;
    case 'profile-stop': {
      const file = path.join(profileDir, `${name}.cpuprofile`);
      emit({ event: 'profile', summary: summarize(await profiler.stop(file), file, 20, PAYEE_INCLUSIVE) });
      return;
    }
    case 'stop': {
      const stats = (app.store as unknown as { stats?: () => unknown }).stats?.() ?? null;
      await app.close();
      await backend.close();
      emit({ event: 'stopped', store: stats, metrics: app.server.metrics.render().split('\n').filter((l) => l.startsWith('paychan_payments_total') || l.startsWith('paychan_messages_rejected_total')) });
      process.exit(0);
    }
    // falls through (process.exit never returns)
    default:
      emit({ event: 'error', message: `unknown command ${line}` });
  }
}

function emitCpu(allocated: AllocationFigures | null): void {
  const u = process.cpuUsage();
  const t = performance.now();
  const commits = storeProbe ? takeCommitStats(storeProbe, t - lastSample) : null;
  lastSample = t;
  emit({ event: 'cpu', us: u.user + u.system, sysUs: u.system, rss: process.memoryUsage().rss, commits, loopDelay: loopDelay.take(), payeeLatency: payeeLatency.take(), sched: sched.take(), alloc: allocated });
}
