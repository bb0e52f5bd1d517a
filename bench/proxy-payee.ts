/**
 * The proxy process of the proxy benchmark: exactly what `paychan proxy` runs (startPayeeApp
 * with the reverse proxy mounted: PayeeService, SQLite store, one HTTP/WebSocket server).
 * Every route is priced `--price-sat` per request, except /free/* (forwarded free). Prints {"event":"ready","url":…}; SIGTERM
 * closes it. On stdin, `cpu` answers {"event":"cpu","us":…,"commits":…} (CPU µs, store commits and the event loop's active and idle ms so far).
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { startPayeeApp } from '../src/app/payee-app.js';
import { connectRpcBackend } from '../src/chain/rpc-backend.js';
import { parsePriceTable } from '../src/proxy/price-table.js';
import { createPaychanProxy } from '../src/proxy/proxy.js';
import { SqliteStore } from '../src/store/sqlite-store.js';
import { intArg, parseArgs, strArg } from './lib/args.js';
import { emit, onStdinLines } from './lib/lines.js';
import { probeStore } from './lib/instrument.js';
import { AllocationSampler } from './lib/profile.js';
import { mono, Trace } from './lib/trace.js';

/**
 * With PAYCHAN_BENCH_TRACE=DIR, the proxy's side of each request of the traced phase (`trace
 * begin PHASE` / `trace end PHASE` on stdin): arrival, the paywall's admission start and end,
 * and the answer's end (bench/proxy-trace-report.ts joins them with the load generators' rows).
 */
const trace = new Trace('proxy');
const sampler = new AllocationSampler();

const args = parseArgs(process.argv.slice(2));
const backend = await connectRpcBackend({ url: strArg(args, 'rpc-url'), user: strArg(args, 'rpc-user'), pass: strArg(args, 'rpc-pass'), network: 'regtest' });
// /free/* is forwarded without payment: the proxy's own cost, for comparison with the paid routes.
const prices = parsePriceTable({ routes: [{ path: '/free/*' }, { path: '/*', perRequestSat: intArg(args, 'price-sat', 1) }] });
const app = await startPayeeApp({
  network: 'regtest',
  backend,
  dataDir: strArg(args, 'data-dir'),
  host: '127.0.0.1',
  port: 0,
  priceSat: 1n,
  fallbackFeeRateSatPerVb: 2,
  log: (line) => process.stderr.write(`${line}\n`),
  mount: (paywall) => {
    const routes = createPaychanProxy({ upstream: strArg(args, 'upstream'), prices, paywall });
    if (!trace.configured) return routes;
    const admit = paywall.admit.bind(paywall);
    paywall.admit = (header, priceSat) => {
      const start = mono();
      const total = trace.on && header ? /total=(\d+)/.exec(header)?.[1] : undefined;
      return admit(header, priceSat).then((a) => (total !== undefined && trace.row('admit', start, mono(), a.ok ? a.channelId : '', total), a));
    };
    return {
      ...routes,
      request(req, res) {
        if (trace.on) {
          const arrived = mono();
          const header = req.headers['paychan-payment'];
          const paid = typeof header === 'string' ? /channel=([^,]+), total=(\d+)/.exec(header) : null;
          res.on('finish', () => trace.row('req', arrived, mono(), req.url, paid ? `${paid[1]}/${paid[2]}` : ''));
        }
        return routes.request(req, res);
      },
      close: () => routes.close(),
    };
  },
});
if (trace.configured && app.store instanceof SqliteStore) probeStore(app.store, false, (startMs, ms) => trace.commit(startMs, ms));
if (trace.configured) {
  // The WAL's fdatasync in libuv's pool (store/wal-sync.ts): from the call to its callback, as
  // the admissions waited for it (the quiet-disk probe before the phase says less under load).
  const fdatasync = fs.fdatasync;
  (fs as { fdatasync: (fd: number, cb: fs.NoParamCallback) => void }).fdatasync = (fd, cb) => {
    const start = mono();
    fdatasync(fd, (err) => {
      if (trace.on) trace.row('fsync', start, mono());
      cb(err);
    });
  };
}
emit({ event: 'ready', url: app.server.url });
// `cpu` → CPU time used so far (user + system), for CPU per request independent of other load.
onStdinLines((line) => {
  const [command, verb, phase] = line.split(' ');
  if (command === 'trace') {
    if (verb === 'begin') trace.begin(phase!);
    else trace.end(phase!);
    // PAYCHAN_BENCH_HEAP_DIR: what the traced phase allocates, by function (collected objects included).
    const heapDir = process.env.PAYCHAN_BENCH_HEAP_DIR;
    const done = (): void => emit({ event: 'trace', verb });
    if (!heapDir) return done();
    void (verb === 'begin' ? sampler.start() : sampler.stop(`${heapDir}/proxy-${phase}.heapprofile`)).then(done);
    return;
  }
  if (line === 'cpu') {
    const u = process.cpuUsage();
    // Commits (one fsync each) so far too: how many payments shared one.
    // The event loop's busy time (ms, cumulative): busy beyond the CPU time is time blocked
    // (a commit's fsync) or waiting for a core.
    const elu = performance.eventLoopUtilization();
    emit({ event: 'cpu', us: u.user + u.system, commits: app.store instanceof SqliteStore ? app.store.stats().commits : -1, loopActiveMs: elu.active, loopIdleMs: elu.idle });
  }
});
process.on('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
