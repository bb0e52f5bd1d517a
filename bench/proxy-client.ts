/**
 * A load generator of the proxy benchmark (bench/proxy.ts spawns several): paying HTTP clients
 * lighter than the library's paying fetch, so that what is measured is the proxy, not undici.
 *
 * Each lane is one channel the orchestrator opened on chain (its channel and key arrive in a
 * file, encoded with the store's codec) with its own keep-alive `node:http` Agent of one socket:
 * requests of a lane go one after another on one connection, so the totals arrive in order, as
 * the paywall needs. Every paid request signs its payment when it is sent (`signPayment`, the
 * payer's own code: sighash and ECDSA), one price higher than the last; nothing is presigned.
 * Bare requests (straight to the upstream) and free ones (through the proxy, unpriced) go through
 * the same lanes and code, without the header: the orchestrator compares like with like.
 *
 * Commands on stdin, one answer event each on stdout:
 *   closed N TARGET      every lane sends N requests one after another → closed-done
 *   open COUNT RATE TARGET   open loop (lib/open-loop.ts), request k on lane k mod lanes → open-done,
 *                        with every request's latency in µs (the orchestrator merges processes)
 *   cpu                  → cpu (user + system µs so far)
 * TARGET is `paid` (through the proxy, paying), `free` (through the proxy, its free route) or
 * `bare` (straight to the upstream).
 */
import fs from 'node:fs';
import { Agent, request, type IncomingMessage } from 'node:http';
import { loadNativeSecp256k1 } from '../src/crypto/native.js';
import type { Channel } from '../src/protocol/channel.js';
import { toHex } from '../src/protocol/bytes.js';
import { paymentSighasher, signPayment } from '../src/protocol/payment.js';
import { decodeState } from '../src/store/codec.js';
import { intArg, parseArgs, strArg } from './lib/args.js';
import { emit, onStdinLines } from './lib/lines.js';
import { openLoop } from './lib/open-loop.js';
import { now, round } from './lib/stats.js';
import { monoOffset, Trace } from './lib/trace.js';

/** One lane as the orchestrator writes it: a channel, its payer key (hex) and its newest total. */
export interface LaneSpec {
  readonly channel: Channel;
  readonly keyHex: string;
  readonly totalSat: bigint;
}

const args = parseArgs(process.argv.slice(2));
const proxyUrl = new URL(strArg(args, 'proxy'));
const upstreamUrl = new URL(strArg(args, 'upstream'));
const PATH = strArg(args, 'path', '/hello');
/** The proxy's free route (bench/proxy-payee.ts): forwarded without a payment. */
const FREE_PATH = `/free${PATH}`;
type Target = 'paid' | 'free' | 'bare';
const PRICE_SAT = BigInt(intArg(args, 'price-sat', 1));
const specs = decodeState<LaneSpec[]>(fs.readFileSync(strArg(args, 'lanes'), 'utf8'));
const secp = loadNativeSecp256k1();
/** With PAYCHAN_BENCH_TRACE: each open-loop request's intended, sent and answered times (bench/proxy-trace-report.ts). */
const trace = new Trace(`client-${process.pid}`);

interface Lane {
  readonly channel: Channel;
  readonly sighasher: ReturnType<typeof paymentSighasher>;
  readonly key: Uint8Array;
  totalSat: bigint;
  /** To the proxy (paid and free requests). */
  readonly proxyAgent: Agent;
  readonly bareAgent: Agent;
  /** The lane's previous request: the next one goes after it (one socket, totals in order). */
  queue: Promise<void>;
}
const agent = (): Agent => new Agent({ keepAlive: true, maxSockets: 1 });
const lanes: Lane[] = specs.map((s) => ({
  channel: s.channel,
  sighasher: paymentSighasher(s.channel),
  key: Uint8Array.from(Buffer.from(s.keyHex, 'hex')),
  totalSat: s.totalSat,
  proxyAgent: agent(),
  bareAgent: agent(),
  queue: Promise.resolve(),
}));

/** One request on `lane`; resolves when its whole answer is read. @throws on any status but 200. */
function send(lane: Lane, target: Target): Promise<void> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    const paid = target === 'paid';
    if (paid) {
      lane.totalSat += PRICE_SAT;
      const signature = signPayment(secp, lane.channel, lane.sighasher, lane.key, lane.totalSat);
      headers['paychan-payment'] = `channel=${lane.channel.id}, total=${lane.totalSat}, sig=${toHex(signature)}`;
    }
    const base = target === 'bare' ? upstreamUrl : proxyUrl;
    const path = target === 'free' ? FREE_PATH : PATH;
    const req = request({ hostname: base.hostname, port: base.port, path, method: 'GET', headers, agent: target === 'bare' ? lane.bareAgent : lane.proxyAgent }, (res: IncomingMessage) => {
      if (res.statusCode !== 200) {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c.slice(0, 500)));
        res.on('end', () => reject(new Error(`${target} request: ${res.statusCode} ${text}`)));
        return;
      }
      res.on('end', resolve).resume();
    });
    req.on('error', reject).end();
  });
}

/** Request on a lane after that lane's previous one. */
function queued(lane: Lane, target: Target): Promise<void> {
  const result = lane.queue.then(() => send(lane, target));
  lane.queue = result.catch(() => undefined);
  return result;
}

async function closed(perLane: number, target: Target): Promise<void> {
  const t0 = now();
  await Promise.all(lanes.map(async (lane) => {
    for (let i = 0; i < perLane; i++) await send(lane, target);
  }));
  emit({ event: 'closed-done', requests: perLane * lanes.length, ms: round(now() - t0, 1) });
}

async function open(count: number, perSec: number, target: Target): Promise<void> {
  const latencyUs: number[] = new Array<number>(count);
  const result = await openLoop(count, perSec, (k) => queued(lanes[k % lanes.length]!, target), (k, intended, _sent, ack) => {
    latencyUs[k] = Math.round((ack - intended) * 1000);
    if (trace.on) {
      const lane = lanes[k % lanes.length]!;
      trace.row('c', intended + monoOffset, _sent + monoOffset, ack + monoOffset, lane.channel.id, String(lane.totalSat));
    }
  });
  emit({ event: 'open-done', achievedPerSec: result.achievedPerSec, sendLagP99Ms: result.sendLagP99Ms, latencyUs });
}

const fail = (err: unknown): void => {
  process.stderr.write(`proxy-client: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
};
onStdinLines((line) => {
  const [command, a, b, c] = line.split(' ');
  if (command === 'trace') {
    if (a === 'begin') trace.begin(b!);
    else trace.end(b!);
    emit({ event: 'trace', verb: a });
    return;
  }
  if (command === 'cpu') {
    const u = process.cpuUsage();
    emit({ event: 'cpu', us: u.user + u.system });
    return;
  }
  const target = command === 'closed' ? b : c;
  if (target !== 'paid' && target !== 'free' && target !== 'bare') return fail(new Error(`unknown target in ${line}`));
  if (command === 'closed') closed(Number(a), target).catch(fail);
  else if (command === 'open') open(Number(a), Number(b), target).catch(fail);
  else fail(new Error(`unknown command ${line}`));
});
emit({ event: 'ready', lanes: lanes.length });
