/**
 * Crash-safety harness: a long payment stream on many channels while the payee process is
 * SIGKILLed at random moments and restarted at once.
 *
 * Setup. A private btcd (regtest) mining to the payer wallet; a miner that mines a block whenever
 * the mempool holds a transaction; the payee as a child process (`paychan payee serve`, fixed
 * port and data directory) whose node RPC goes through a proxy the harness controls
 * (rpc-proxy.ts); the payers in this process: per channel a {@link PayerClient} with its own
 * reconnecting WebSocket link (wired as src/app/payer-app.ts does: `onMessage` → `receive`,
 * `onOpen` → `resume`), all funded by one wallet, their states in a MemoryStore (the payer is
 * never killed here).
 *
 * Stream. Every channel keeps `window` payments in flight (pipelined `pay()` calls of 1..N sat).
 * A payment is *acknowledged* when its `pay()` promise resolves: the payee said the new total is
 * durably stored. Every acknowledged total is recorded. Payments in flight when the payee dies
 * keep waiting: the link reconnects to the next payee, `resume()` asks for the channel's status
 * and resends the newest payment. A `pay()` that rejects is counted (by code) and the stream
 * goes on: the acknowledged ones are what must not be lost.
 *
 * Kills. A killer loop driven by a seeded PRNG: after each restart it waits until payments are
 * acknowledged again, lets the stream run for a random 20–300 ms, and SIGKILLs the payee; a
 * share of the kills (`earlyKillRatio`) comes instead 0–50 ms after the payee listens, while the
 * payers reconnect and resume. After each kill, with no payee running, the store is read
 * (read-only, leaving the WAL for the next payee to recover) and every channel's stored total is
 * compared with the highest total acknowledged so far.
 *
 * End. Once both the payment and the kill targets are reached, new payments stop, those in flight
 * settle, and the payee is SIGKILLed once more; its store, opened as the payee opens it, must
 * hold every acknowledged total. A payee starts again and every payer asks it to close
 * (`requestClose`). With `killDuringClose` (default) the node's `sendrawtransaction` is held at
 * the proxy and the payee is SIGKILLed while its closes wait there (stored as Closing, not yet
 * broadcast); a new payee must get them on chain by itself, and payers whose close request died
 * with the payee ask again. Each channel's funding output must end up spent by a confirmed close
 * that returns `capacity − paid` to the payer's script and pays the payee `paid − fee`, with
 * `paid` ≥ the channel's last acknowledged total (and ≤ what the payer signed); the payee's store
 * must then say Closed with that transaction.
 *
 * Several payees (`store: 'postgres'`, `instances` > 1): the same seed in a data dir each, one
 * PostgreSQL database, the payers given every URL; each kill takes one at random while the others
 * keep serving (its channels move to them, or come back when it restarts, by their leases:
 * docs/scale.md), and the store is read at any time through a plain connection. The end's kills
 * take every instance.
 *
 * `ackedLost` counts payments: at every check, for every channel, the acknowledged payments whose
 * total is above the stored total (or, at the end, above what the close pays); the report holds
 * the largest count seen in one check.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import { address as baddress, Transaction } from 'bitcoinjs-lib';
import type { ChainBackend } from '../../src/chain/backend.js';
import { startRegtestNode, type RegtestNode } from '../../src/chain/regtest/index.js';
import { RpcClient } from '../../src/chain/rpc-client.js';
import { secp256k1 } from '../../src/crypto/index.js';
import { toHex } from '../../src/protocol/bytes.js';
import { bitcoinjsNetwork } from '../../src/protocol/network.js';
import type { PayerState } from '../../src/protocol/payer-machine.js';
import { payerPolicy } from '../../src/protocol/policy.js';
import type { Variant } from '../../src/protocol/scripts.js';
import { PayerClient, PeerError } from '../../src/payer/payer-client.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { connectPayee, type ReconnectOptions, type WsPeerLink } from '../../src/transport/ws-client.js';
import { WalletKeys } from '../../src/wallet/keys.js';
import { Wallet } from '../../src/wallet/wallet.js';
import { freePort } from '../helpers/cli.js';
import { PayeeProcess } from './payee-process.js';
import { prng, type Prng } from './prng.js';
import { startRpcProxy, type RpcProxy } from './rpc-proxy.js';
import { peekPayeeStore, peekPostgresStore, readPayeeStore, type StoreView } from './store-check.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';

export interface CrashOptions {
  /** Channels streaming at once (each its own WebSocket; the payee allows 16 per address). */
  readonly channels: number;
  /** At least this many acknowledged payments, over all channels. */
  readonly payments: number;
  /** At least this many SIGKILLs of the payee during the stream. */
  readonly kills: number;
  /** Seed of the PRNG that picks kill delays and payment amounts. */
  readonly seed: number;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
  /** Capacity of each channel, sat. Default 2,000,000. */
  readonly capacitySat?: bigint;
  /** Payments are 1..maxAmountSat sat, at random. Default 3. */
  readonly maxAmountSat?: number;
  /** Payments in flight per channel (pipelining depth). Default 200. */
  readonly window?: number;
  /** Streaming time between the stream resuming after a restart and the next kill, ms. Default [20, 300]. */
  readonly killDelayMs?: readonly [number, number];
  /** Share of kills that come 0–50 ms after the payee listens, during reconnection. Default 0.1. */
  readonly earlyKillRatio?: number;
  /** SIGKILL the payee once more while its closes wait to be broadcast. Default true. */
  readonly killDuringClose?: boolean;
  /** Variants of the channels, used in turn. Default both. */
  readonly variants?: readonly Variant[];
  /** The payer links' reconnect backoff. Default { minDelayMs: 25, maxDelayMs: 250 }. */
  readonly reconnect?: ReconnectOptions;
  /** A stream that acknowledges nothing for this long fails the run, ms. Default 30,000. */
  readonly stallTimeoutMs?: number;
  /** Keep the temporary directory (payee store) instead of deleting it (it is kept on failure). */
  readonly keepDir?: boolean;
  /** The payees' store: one SQLite file (default) or a throwaway PostgreSQL server's database. */
  readonly store?: 'sqlite' | 'postgres';
  /**
   * Payee instances sharing the store (PostgreSQL only), same seed, each its own data dir and
   * port; the payers get every URL. Each kill takes a random one. Default 1.
   */
  readonly instances?: number;
  /** With PostgreSQL: the channel lease period, ms. Default 1,000. */
  readonly leaseMs?: number;
}

/** One channel's figures in the report. */
export interface ChannelReport {
  readonly channelId: string;
  readonly variant: Variant;
  readonly capacitySat: string;
  readonly acknowledged: number;
  readonly lastAckedSat: string;
  readonly signedSat: string;
  readonly storedSat: string;
  readonly closeTxid: string | null;
  readonly closeTotalSat: string | null;
}

export interface CrashReport {
  /** Every check passed and nothing acknowledged was lost. */
  readonly ok: boolean;
  /** SIGKILLs of the payee during the stream (the one after it and the one during the closes not counted). */
  readonly kills: number;
  /** Acknowledged payments (resolved `pay()` calls), all channels. */
  readonly payments: number;
  /** Acknowledged payments missing from the payee's store or from the closes (most in one check). Must be 0. */
  readonly ackedLost: number;
  /** The same in satoshis (acknowledged total − stored total, summed over channels, most in one check). */
  readonly ackedLostSat: string;
  readonly channels: number;
  /** Payments signed (`pay()` calls that stepped), acknowledged or not. */
  readonly paymentsSigned: number;
  /** `pay()` calls that rejected. */
  readonly paymentsRejected: number;
  readonly rejectedByCode: Record<string, number>;
  /** Payee starts after the first one. */
  readonly restarts: number;
  /** Kills that came while the payers were reconnecting (0–50 ms after the payee listened). */
  readonly earlyKills: number;
  /** Kills with payments in flight (signed, not yet acknowledged) on some channel. */
  readonly killsWithPaymentsInFlight: number;
  /** Kills after which some channel's store held more than the payer had seen acknowledged (stored, ack not delivered). */
  readonly killsBetweenStoreAndAck: number;
  /** Kills while closes waited to be broadcast (0 or 1), and how many channels were stored as Closing then. */
  readonly closeKills: number;
  readonly closingAtCloseKill: number;
  /** Store readings compared with the acknowledged totals. */
  readonly storeChecks: number;
  /** Payee exits the harness did not cause. */
  readonly unexpectedExits: number;
  /** Channels whose funding was spent by a confirmed close paying at least the acknowledged total. */
  readonly closedOnChain: number;
  /** Smallest (close total − last acknowledged total) over the channels, sat; negative means loss. */
  readonly minCloseMarginSat: string | null;
  /** Σ close totals (what the channels paid the payee on chain, before fees). */
  readonly paidSat: string;
  readonly closeFeesSat: string;
  /** Channels the payer recorded as closed by a transaction other than the one on chain. */
  readonly payerCloseTxidMismatches: number;
  readonly durationSec: number;
  readonly streamSec: number;
  /** Acknowledged payments per second of stream, restarts included. */
  readonly paymentsPerSec: number;
  readonly restartMsMean: number;
  readonly restartMsMax: number;
  readonly seed: number;
  readonly perChannel: readonly ChannelReport[];
  /** What went wrong, one line each (empty in a good run). */
  readonly failures: readonly string[];
}

interface Chan {
  readonly index: number;
  readonly variant: Variant;
  readonly client: PayerClient;
  readonly link: WsPeerLink;
  readonly payerScript: Uint8Array;
  readonly capacitySat: bigint;
  /** Stop paying above this total (keeps the payer's change far from dust). */
  readonly budgetSat: bigint;
  readonly channelId: string;
  readonly funding: { readonly txid: string; readonly vout: number };
  /** Acknowledged totals, in the order the `pay()` promises resolved (increasing). */
  readonly acked: number[];
  lastAcked: bigint;
  outstanding: number;
  signed: number;
  rejected: number;
  exhausted: boolean;
  /** Fires whenever one of this channel's payments settles. */
  readonly slot: Signal;
}

/** `wait()` resolves at the next `fire()`. */
class Signal {
  private waiters: (() => void)[] = [];
  wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  fire(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const resolve of w) resolve();
  }
}

const NETWORK = 'regtest';
const EXPIRY_BLOCKS = 1_000;
const FEE_RATE = 2;
const CLOSE_TIMEOUT_MS = 60_000;

export async function runCrashHarness(options: CrashOptions): Promise<CrashReport> {
  const o = {
    capacitySat: 2_000_000n,
    maxAmountSat: 3,
    window: 200,
    killDelayMs: [20, 300] as readonly [number, number],
    earlyKillRatio: 0.1,
    killDuringClose: true,
    variants: ['spilman-v1', 'spilman-v2'] as readonly Variant[],
    reconnect: { minDelayMs: 25, maxDelayMs: 250 } as ReconnectOptions,
    stallTimeoutMs: 30_000,
    keepDir: false,
    store: 'sqlite' as 'sqlite' | 'postgres',
    instances: 1,
    leaseMs: 1_000,
    ...definedOnly(options),
  };
  checkOptions(o);
  const log = o.log ?? (() => undefined);
  const rng: Prng = prng(o.seed);
  const t0 = performance.now();
  const failures: string[] = [];
  const fail = (line: string) => {
    if (failures.length < 100) failures.push(line);
    log(`FAIL: ${line}`);
  };

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-crash-'));
  const payeeDir = path.join(dir, 'payee');
  const payeeDb = path.join(payeeDir, 'payee.db');
  const seed = randomBytes(32);
  const miningAddress = WalletKeys.fromSeed(seed, NETWORK).address('receive', 0).address;

  let node: RegtestNode | undefined;
  let rpc: RpcClient | undefined;
  let proxy: RpcProxy | undefined;
  const payees: PayeeProcess[] = [];
  let pgServer: PostgresServer | undefined;
  /** The store as the harness reads it: the SQLite file (read-only, no payee running) or PostgreSQL. */
  let peek: () => Promise<StoreView> = () => Promise.resolve(peekPayeeStore(payeeDb));
  let read: () => Promise<StoreView> = () => readPayeeStore(payeeDb);
  let mining = false;
  let miner: Promise<void> = Promise.resolve();
  const chans: Chan[] = [];

  // Figures, filled in as the run goes.
  let kills = 0;
  let earlyKills = 0;
  let killsWithPaymentsInFlight = 0;
  let killsBetweenStoreAndAck = 0;
  let closeKills = 0;
  let closingAtCloseKill = 0;
  let storeChecks = 0;
  let ackedLost = 0;
  let ackedLostSat = 0n;
  let ackedPayments = 0;
  let streamSec = 0;
  let closedOnChain = 0;
  let minCloseMargin: bigint | null = null;
  let paidSat = 0n;
  let closeFees = 0n;
  let payerCloseTxidMismatches = 0;
  const rejectedByCode: Record<string, number> = {};
  const storedAtEnd = new Map<string, bigint>();
  const closeTxids = new Map<string, { txid: string; total: bigint }>();
  const progress = new Signal();

  /**
   * Counts the acknowledged payments of `ch` above `totalSat`, among its first `mark` ones (all by
   * default; with payees still running, only those acknowledged before the store was read).
   */
  const lostAbove = (ch: Chan, totalSat: bigint, mark = ch.acked.length): number => {
    const acked = mark === ch.acked.length ? ch.acked : ch.acked.slice(0, mark);
    return lastOf(acked) > totalSat ? acked.filter((t) => BigInt(t) > totalSat).length : 0;
  };
  const lastOf = (acked: readonly number[]): bigint => (acked.length > 0 ? BigInt(acked[acked.length - 1]!) : 0n);
  /** How many payments each channel had acknowledged: taken before a reading of a store others still write. */
  const ackMarks = (): number[] => chans.map((c) => c.acked.length);

  /** Compares a store reading with what the payers saw acknowledged (up to `marks`); returns the payments lost. */
  const check = (stored: StoreView, when: string, marks: readonly number[] = ackMarks()): number => {
    storeChecks++;
    let lost = 0;
    let lostSat = 0n;
    for (const [i, ch] of chans.entries()) {
      const s = stored.get(ch.channelId);
      const storedSat = s?.paidSat ?? 0n;
      const mark = marks[i] ?? ch.acked.length;
      const missing = lostAbove(ch, storedSat, mark);
      if (missing > 0) {
        const lastAcked = lastOf(ch.acked.slice(0, mark));
        lost += missing;
        lostSat += lastAcked - storedSat;
        fail(`${when}: channel ${ch.index} (${ch.channelId}): ${lastAcked} sat acknowledged, the store holds ${s ? `${storedSat} sat (${s.stateType})` : 'no such channel'}: ${missing} acknowledged payments lost`);
      }
      const signedSat = signedTotal(ch.client.state);
      if (storedSat > signedSat) fail(`${when}: channel ${ch.index}: the store holds ${storedSat} sat, the payer signed only ${signedSat}`);
    }
    ackedLost = Math.max(ackedLost, lost);
    if (lostSat > ackedLostSat) ackedLostSat = lostSat;
    return lost;
  };

  try {
    // 1. The node, the wallet (one mature coinbase per channel, and spare), the miner.
    node = await startRegtestNode({ miningAddress, log: (l) => log(`node: ${l}`) });
    const theNode = node;
    await theNode.mine(100 + o.channels + 2);
    const secp = secp256k1();
    const wallet = await Wallet.open({ seed, network: NETWORK, backend: theNode.backend, secp });
    await wallet.sync();
    const openedAtHeight = (await theNode.backend.getTip()).height;
    rpc = new RpcClient({ url: theNode.rpcUrl, user: theNode.rpcUser, pass: theNode.rpcPass });
    const theRpc = rpc;
    mining = true;
    miner = (async () => {
      while (mining) {
        const mempool = (await theRpc.call('getrawmempool').catch(() => [])) as string[];
        if (mempool.length > 0) await theNode.mine(1).catch(() => undefined);
        await sleep(100);
      }
    })();

    // 2. The payees, their node calls through the proxy.
    proxy = await startRpcProxy(theNode.rpcUrl);
    const theProxy = proxy;
    const extraArgs: string[] = [];
    if (o.store === 'postgres') {
      pgServer = await startPostgres();
      const dbUrl = `${await pgServer.createDatabase()}?paychan_lease_ms=${o.leaseMs}`;
      extraArgs.push('--db', dbUrl);
      peek = () => peekPostgresStore(dbUrl);
      read = peek;
      log(`store ${dbUrl}`);
    }
    // Several instances share one seed: each derives every channel's keys.
    const payeeSeed = `${toHex(randomBytes(32))}\n`;
    for (let i = 0; i < o.instances; i++) {
      const dataDir = i === 0 ? payeeDir : `${payeeDir}-${i}`;
      if (o.instances > 1) {
        fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
        fs.writeFileSync(path.join(dataDir, 'seed'), payeeSeed, { mode: 0o600 });
      }
      payees.push(new PayeeProcess({ rpcUrl: theProxy.url, rpcUser: theNode.rpcUser, rpcPass: theNode.rpcPass, dataDir, port: await freePort(), extraArgs, env: { ...process.env, PAYCHAN_HOME: path.join(dir, 'home') } }));
    }
    const thePayees = payees;
    const startAll = () => Promise.all(thePayees.map((p) => p.start()));
    const killAll = () => Promise.all(thePayees.map((p) => p.kill()));
    await startAll();
    const urls = thePayees.map((p) => p.url);
    log(`payee${urls.length > 1 ? 's' : ''} listening at ${urls.join(' ')} (data ${payeeDir})`);

    // 3. The channels, opened together (each funding spends its own mature coinbase).
    const store = new MemoryStore();
    const policy = payerPolicy({ network: NETWORK });
    const opened = await Promise.allSettled(
      Array.from({ length: o.channels }, async (_, index): Promise<Chan> => {
        const variant = o.variants[index % o.variants.length]!;
        const payerScript = baddress.toOutputScript(wallet.changeAddress(), bitcoinjsNetwork(NETWORK));
        const holder: { client?: PayerClient } = {};
        const link = connectPayee(urls, {
          onMessage: (t) => holder.client?.receive(t),
          onOpen: () => holder.client?.resume(),
          reconnect: o.reconnect,
          log: (l) => {
            // Refused connections and drops are the point of the exercise.
            if (!/^payee link(: | closed)/.test(l)) log(`payer ${index}: ${l}`);
          },
        });
        const client = new PayerClient({
          secp,
          policy,
          network: NETWORK,
          backend: theNode.backend,
          wallet,
          channelKey: wallet.nextChannelKey(),
          payoutScript: payerScript,
          link,
          store,
          fundingFeeRateSatPerVb: FEE_RATE,
          random16: () => randomBytes(16),
          log: (l) => log(`payer ${index}: ${l}`),
        });
        holder.client = client;
        await link.ready();
        const channel = await withTimeout(client.open({ variant, capacitySat: o.capacitySat, expiryBlocks: EXPIRY_BLOCKS }), 60_000, `channel ${index} did not open within 60 s`);
        return {
          index,
          variant,
          client,
          link,
          payerScript,
          capacitySat: o.capacitySat,
          budgetSat: o.capacitySat / 2n,
          channelId: channel.id,
          funding: channel.funding,
          acked: [],
          lastAcked: 0n,
          outstanding: 0,
          signed: 0,
          rejected: 0,
          exhausted: false,
          slot: new Signal(),
        };
      }),
    );
    for (const r of opened) {
      if (r.status === 'fulfilled') chans.push(r.value);
      else fail(`opening a channel failed: ${String(r.reason)}`);
    }
    chans.sort((a, b) => a.index - b.index);
    if (chans.length !== o.channels) throw new Error(`only ${chans.length} of ${o.channels} channels opened`);
    log(`${chans.length} channels open: ${chans.map((c) => `${c.variant} ${c.channelId}`).join(', ')}`);

    // 4. The stream and the killer.
    let stopPaying = false;
    let fatal: string | null = null;
    const streamStart = performance.now();
    const targetsReached = () => ackedPayments >= o.payments && kills >= o.kills;

    const pump = async (ch: Chan): Promise<void> => {
      let sinceYield = 0;
      while (!stopPaying && fatal === null) {
        if (ch.outstanding >= o.window) {
          await ch.slot.wait();
          continue;
        }
        const amount = BigInt(rng.int(1, o.maxAmountSat));
        if (signedTotal(ch.client.state) + amount > ch.budgetSat) {
          ch.exhausted = true;
          return;
        }
        ch.outstanding++;
        ch.signed++;
        ch.client
          .pay(amount)
          .then(
            (total) => {
              if (total <= ch.lastAcked) fail(`channel ${ch.index}: acknowledgement of ${total} after ${ch.lastAcked}`);
              else ch.lastAcked = total;
              ch.acked.push(Number(total));
              ackedPayments++;
              if (ackedPayments % 10_000 === 0) log(`${ackedPayments} payments acknowledged, ${kills} kills`);
              if (targetsReached()) stopPaying = true;
            },
            (err: unknown) => {
              ch.rejected++;
              const code = err instanceof PeerError ? err.code : err instanceof Error ? err.name : 'unknown';
              rejectedByCode[code] = (rejectedByCode[code] ?? 0) + 1;
              if (ch.rejected <= 3) log(`payer ${ch.index}: a payment was refused: ${String(err)}`);
            },
          )
          .finally(() => {
            ch.outstanding--;
            ch.slot.fire();
            progress.fire();
          });
        if (++sinceYield >= 16) {
          sinceYield = 0;
          await yieldToLoop();
        }
      }
    };

    /** Waits until a payment is acknowledged after `mark` were; false after `timeoutMs`. */
    const acksAfter = async (mark: number, timeoutMs: number): Promise<boolean> => {
      const deadline = performance.now() + timeoutMs;
      while (ackedPayments <= mark && !stopPaying) {
        const left = deadline - performance.now();
        if (left <= 0) return false;
        await Promise.race([progress.wait(), sleep(Math.min(left, 500))]);
      }
      return true;
    };

    const killer = async (): Promise<void> => {
      while (kills < o.kills && fatal === null && !chans.every((c) => c.exhausted)) {
        const early = rng.chance(o.earlyKillRatio);
        if (early) {
          await sleep(rng.between(0, 50));
        } else {
          if (!(await acksAfter(ackedPayments, o.stallTimeoutMs))) {
            fatal = `no payment acknowledged for ${o.stallTimeoutMs / 1000} s after payee start ${thePayees.reduce((n, p) => n + p.starts, 0)}`;
            fail(fatal);
            return;
          }
          await sleep(rng.between(o.killDelayMs[0], o.killDelayMs[1]));
        }
        const inFlight = chans.some((c) => c.outstanding > 0);
        // One payee: that one; several: one at random (the others keep serving).
        const victim = thePayees.length === 1 ? thePayees[0]! : thePayees[rng.int(0, thePayees.length - 1)]!;
        await victim.kill();
        kills++;
        if (early) earlyKills++;
        if (inFlight) killsWithPaymentsInFlight++;
        // Other payees may acknowledge while the store is read: compare with what was before.
        const marks = ackMarks();
        const view = await peek();
        if (chans.some((c) => (view.get(c.channelId)?.paidSat ?? 0n) > c.lastAcked)) killsBetweenStoreAndAck++;
        check(view, `after kill ${kills}`, marks);
        if (kills % 10 === 0) log(`kill ${kills}: ${ackedPayments} payments acknowledged`);
        await victim.start();
      }
    };

    const pumps = chans.map((ch) => pump(ch));
    await killer();
    // The kills are done; the stream runs on to the payment target if it is not there yet.
    while (!stopPaying && fatal === null && !chans.every((c) => c.exhausted)) {
      if (targetsReached()) break;
      if (!(await acksAfter(ackedPayments, o.stallTimeoutMs))) {
        fatal = `no payment acknowledged for ${o.stallTimeoutMs / 1000} s`;
        fail(fatal);
      }
    }
    stopPaying = true;
    for (const ch of chans) ch.slot.fire();
    await Promise.all(pumps);
    if (chans.every((c) => c.exhausted) && !targetsReached()) fail('every channel reached its budget before the targets: raise capacitySat');
    // Payments in flight settle: acknowledged by the running payee, or refused.
    const settleBy = performance.now() + o.stallTimeoutMs;
    while (chans.some((c) => c.outstanding > 0)) {
      if (performance.now() > settleBy) {
        fail(`payments unacknowledged ${o.stallTimeoutMs / 1000} s after the stream stopped: ${chans.map((c) => c.outstanding).join(', ')}`);
        break;
      }
      await Promise.race([progress.wait(), sleep(200)]);
    }
    streamSec = (performance.now() - streamStart) / 1000;
    log(`stream done: ${ackedPayments} payments acknowledged in ${streamSec.toFixed(1)} s, ${kills} kills`);

    // 5. One more SIGKILL (of every payee); then the store, opened as the payee opens it.
    await killAll();
    const finalView = await read();
    check(finalView, 'after the stream');
    for (const ch of chans) storedAtEnd.set(ch.channelId, finalView.get(ch.channelId)?.paidSat ?? 0n);

    // 6. Every channel closes: first with a kill while the closes wait to be broadcast.
    await startAll();
    const lastRequest = new Map<Chan, number>();
    const requestClose = (ch: Chan) => {
      if (ch.client.state?.type !== 'Open' || !ch.link.connected) return;
      lastRequest.set(ch, performance.now());
      ch.client.requestClose();
    };
    await Promise.all(chans.map((ch) => ch.link.ready()));
    if (o.killDuringClose) {
      theProxy.hold('sendrawtransaction');
      const held = theProxy.nextCall('sendrawtransaction');
      for (const ch of chans) requestClose(ch);
      await withTimeout(held, 30_000, 'no close reached the node within 30 s');
      await sleep(300); // the other channels' closes get there too
      await killAll();
      closeKills++;
      theProxy.drop('sendrawtransaction');
      const view = await peek();
      closingAtCloseKill = [...view.values()].filter((s) => s.stateType === 'Closing').length;
      check(view, 'after the kill during the closes');
      log(`payee killed with ${closingAtCloseKill} of ${chans.length} closes stored and not broadcast`);
      await startAll();
    } else {
      for (const ch of chans) requestClose(ch);
    }
    // A payer whose request died with a payee asks again (the payee answers a repeated request
    // for a closing channel with its close).
    const closeDeadline = performance.now() + CLOSE_TIMEOUT_MS;
    while (chans.some((ch) => ch.client.state?.type !== 'Closed') && performance.now() < closeDeadline) {
      for (const ch of chans) if (performance.now() - (lastRequest.get(ch) ?? 0) > 3_000) requestClose(ch);
      await sleep(100);
    }
    for (const ch of chans) if (ch.client.state?.type !== 'Closed') fail(`channel ${ch.index}: the payer does not know of a close after ${CLOSE_TIMEOUT_MS / 1000} s (state ${ch.client.state?.type ?? '-'})`);

    // 7. The chain: each funding spent by a confirmed close paying what was acknowledged.
    const spenders = await Promise.all(chans.map((ch) => confirmedSpender(theNode.backend, ch.funding, openedAtHeight, CLOSE_TIMEOUT_MS).catch((err: unknown) => err as Error)));
    const byTx = new Map<string, Chan[]>();
    for (const [i, ch] of chans.entries()) {
      const s = spenders[i]!;
      if (s instanceof Error) {
        fail(`channel ${ch.index} (${ch.channelId}): ${s.message}`);
        continue;
      }
      byTx.set(s, [...(byTx.get(s) ?? []), ch]);
      const st = ch.client.state;
      if (st?.type === 'Closed' && st.closeTxid !== s) payerCloseTxidMismatches++;
    }
    let closeLost = 0;
    let closeLostSat = 0n;
    for (const [txid, group] of byTx) {
      const result = await verifyClose(theNode.backend, txid, group);
      for (const problem of result.problems) fail(problem);
      closeFees += result.fee;
      for (const ch of group) {
        const total = result.totals.get(ch) ?? 0n;
        closeTxids.set(ch.channelId, { txid, total });
        const stored = storedAtEnd.get(ch.channelId) ?? 0n;
        const margin = total - ch.lastAcked;
        if (minCloseMargin === null || margin < minCloseMargin) minCloseMargin = margin;
        paidSat += total;
        const lost = lostAbove(ch, total);
        if (lost > 0) {
          closeLost += lost;
          closeLostSat += ch.lastAcked - total;
          fail(`channel ${ch.index} (${ch.channelId}): the close ${txid} pays ${total} sat, ${ch.lastAcked} were acknowledged: ${lost} acknowledged payments lost`);
        } else if (o.instances === 1 ? total !== stored : total < stored) {
          // One payee: the close pays exactly what was stored. Several: a payment refused with
          // CHANNEL_MOVED while its channel moved is still signed, and the payer's resume may
          // deliver it after the store was read; the close may then pay more (never more than
          // signed: verifyClose checks that), never less.
          fail(`channel ${ch.index} (${ch.channelId}): the close ${txid} pays ${total} sat, the store held ${stored}`);
        } else if (result.problems.length === 0) {
          closedOnChain++;
        }
      }
    }
    ackedLost = Math.max(ackedLost, closeLost);
    if (closeLostSat > ackedLostSat) ackedLostSat = closeLostSat;
    log(`${closedOnChain} of ${chans.length} channels closed on chain for their acknowledged totals`);

    // 8. The payee settles the closes, stops cleanly, and its store says so.
    const settledBy = performance.now() + 30_000;
    while (performance.now() < settledBy && !(await allSettled(thePayees.map((p) => p.port), chans))) await sleep(200);
    await Promise.all(thePayees.map((p) => p.stop()));
    const afterClose = await read();
    for (const ch of chans) {
      const s = afterClose.get(ch.channelId);
      const c = closeTxids.get(ch.channelId);
      if (c && (!s || s.stateType !== 'Closed' || s.closeTxid !== c.txid)) {
        fail(`channel ${ch.index}: after its close the payee stored ${s ? `${s.stateType} ${s.closeTxid ?? ''}` : 'nothing'}, not Closed by ${c.txid}`);
      }
    }
    for (const exit of thePayees.flatMap((p) => p.unexpectedExits)) fail(exit);
  } catch (err) {
    fail(`harness error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    for (const p of payees) log(p.recentOutput());
  } finally {
    mining = false;
    await miner;
    await Promise.all(chans.map((c) => c.link.close().catch(() => undefined)));
    await Promise.all(payees.map((p) => p.kill().catch(() => undefined)));
    await pgServer?.stop().catch(() => undefined);
    await proxy?.close().catch(() => undefined);
    rpc?.close();
    await node?.stop().catch(() => undefined);
    if (o.keepDir || failures.length > 0) log(`kept ${dir}`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }

  // Restarts: every start after each payee's first.
  const startMs = payees.flatMap((p) => p.startMs.slice(1));
  const durationSec = (performance.now() - t0) / 1000;
  return {
    ok: failures.length === 0 && ackedLost === 0,
    kills,
    payments: ackedPayments,
    ackedLost,
    ackedLostSat: ackedLostSat.toString(),
    channels: chans.length,
    paymentsSigned: chans.reduce((s, c) => s + c.signed, 0),
    paymentsRejected: chans.reduce((s, c) => s + c.rejected, 0),
    rejectedByCode,
    restarts: startMs.length,
    earlyKills,
    killsWithPaymentsInFlight,
    killsBetweenStoreAndAck,
    closeKills,
    closingAtCloseKill,
    storeChecks,
    unexpectedExits: payees.reduce((n, p) => n + p.unexpectedExits.length, 0),
    closedOnChain,
    minCloseMarginSat: minCloseMargin === null ? null : String(minCloseMargin),
    paidSat: paidSat.toString(),
    closeFeesSat: closeFees.toString(),
    payerCloseTxidMismatches,
    durationSec: round(durationSec, 1),
    streamSec: round(streamSec, 1),
    paymentsPerSec: streamSec > 0 ? Math.round(ackedPayments / streamSec) : 0,
    restartMsMean: startMs.length ? Math.round(startMs.reduce((a, b) => a + b, 0) / startMs.length) : 0,
    restartMsMax: startMs.length ? Math.round(Math.max(...startMs)) : 0,
    seed: o.seed,
    perChannel: chans.map((ch) => {
      const c = closeTxids.get(ch.channelId);
      return {
        channelId: ch.channelId,
        variant: ch.variant,
        capacitySat: ch.capacitySat.toString(),
        acknowledged: ch.acked.length,
        lastAckedSat: ch.lastAcked.toString(),
        signedSat: signedTotal(ch.client.state).toString(),
        storedSat: (storedAtEnd.get(ch.channelId) ?? 0n).toString(),
        closeTxid: c?.txid ?? null,
        closeTotalSat: c ? c.total.toString() : null,
      };
    }),
    failures,
  };
}

/** Polls until `outpoint` is spent by a confirmed transaction; resolves with its txid. */
async function confirmedSpender(backend: ChainBackend, outpoint: { txid: string; vout: number }, fromHeight: number, timeoutMs: number): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  let last = 'unknown';
  while (performance.now() < deadline) {
    const status = await backend.getOutpointStatus(outpoint, fromHeight);
    if (status.state === 'spent' && status.confirmations >= 1) return status.spendingTxid;
    last = status.state === 'spent' ? `spent by ${status.spendingTxid}, unconfirmed` : status.state;
    await sleep(200);
  }
  throw new Error(`the funding ${outpoint.txid}:${outpoint.vout} is not spent by a confirmed transaction after ${timeoutMs / 1000} s (${last})`);
}

/** What one close transaction pays each of its channels, and its fee. */
interface CloseCheck {
  /** Per channel: capacity − the payer's change, i.e. the total the close pays the payee before the fee. */
  readonly totals: Map<Chan, bigint>;
  readonly fee: bigint;
  readonly problems: string[];
}

/**
 * Reads close `txid` (spending the fundings of `group`) and checks its shape: one input per
 * channel, each channel's payer change `capacity − total` to its own script, the payee's outputs
 * `Σ totals − fee`, a positive fee. (A close may be a batch: one payee output for all.)
 */
async function verifyClose(backend: ChainBackend, txid: string, group: readonly Chan[]): Promise<CloseCheck> {
  const problems: string[] = [];
  const totals = new Map<Chan, bigint>();
  const status = await backend.getTransaction(txid);
  if (!status) return { totals, fee: 0n, problems: [`close ${txid}: the node does not know it`] };
  const tx = Transaction.fromHex(status.hex);
  const spent = new Set(tx.ins.map((i) => `${toHex(Uint8Array.from(i.hash).reverse())}:${i.index}`));
  if (tx.ins.length !== group.length) problems.push(`close ${txid} has ${tx.ins.length} inputs for ${group.length} of our channels`);
  const payerScripts = new Set(group.map((ch) => toHex(ch.payerScript)));
  let capacity = 0n;
  for (const ch of group) {
    if (!spent.has(`${ch.funding.txid}:${ch.funding.vout}`)) problems.push(`close ${txid} does not spend channel ${ch.index}'s funding`);
    const mine = tx.outs.filter((out) => toHex(out.script) === toHex(ch.payerScript));
    if (mine.length > 1) problems.push(`close ${txid} pays channel ${ch.index}'s payer in ${mine.length} outputs`);
    const change = mine.reduce((s, out) => s + out.value, 0n);
    const total = ch.capacitySat - change;
    totals.set(ch, total);
    capacity += ch.capacitySat;
    const signed = signedTotal(ch.client.state);
    if (total > signed) problems.push(`close ${txid} pays ${total} sat on channel ${ch.index}, the payer signed only ${signed}`);
  }
  const toPayee = tx.outs.filter((out) => !payerScripts.has(toHex(out.script))).reduce((s, out) => s + out.value, 0n);
  const sumTotals = [...totals.values()].reduce((a, b) => a + b, 0n);
  const fee = capacity - tx.outs.reduce((s, out) => s + out.value, 0n);
  if (fee <= 0n) problems.push(`close ${txid} has fee ${fee}`);
  if (toPayee + fee !== sumTotals) problems.push(`close ${txid}: payee outputs ${toPayee} + fee ${fee} ≠ ${sumTotals} paid`);
  return { totals, fee, problems };
}

/** True when a payee reports every channel Closed (GET /v1/channels/:id; with several, the one holding it). */
async function allSettled(ports: readonly number[], chans: readonly Chan[]): Promise<boolean> {
  for (const ch of chans) {
    let closed = false;
    for (const port of ports) {
      const res = await fetch(`http://127.0.0.1:${port}/v1/channels/${ch.channelId}`).catch(() => null);
      if (!res?.ok) continue;
      const body = (await res.json()) as { state?: string };
      if (body.state === 'Closed') closed = true;
    }
    if (!closed) return false;
  }
  return true;
}

function signedTotal(state: PayerState | null): bigint {
  return state && (state.type === 'Open' || state.type === 'Closed') ? state.signedTotalSat : 0n;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** `options` without its undefined fields, so that spreading it keeps the defaults. */
function definedOnly<T extends object>(options: T): T {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as T;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** @throws RangeError naming the first option out of range. */
function checkOptions(o: Required<Omit<CrashOptions, 'log'>>): void {
  const positiveInt = (name: string, v: number, max = Number.MAX_SAFE_INTEGER) => {
    if (!Number.isInteger(v) || v < 1 || v > max) throw new RangeError(`${name} must be an integer in [1, ${max}], got ${v}`);
  };
  positiveInt('channels', o.channels, 16);
  positiveInt('payments', o.payments);
  if (!Number.isInteger(o.kills) || o.kills < 0) throw new RangeError(`kills must be an integer ≥ 0, got ${o.kills}`);
  positiveInt('maxAmountSat', o.maxAmountSat);
  positiveInt('window', o.window, 900);
  const [lo, hi] = o.killDelayMs;
  if (!(lo >= 0 && hi >= lo)) throw new RangeError('killDelayMs must be [lo, hi] with 0 ≤ lo ≤ hi');
  if (!(o.earlyKillRatio >= 0 && o.earlyKillRatio <= 1)) throw new RangeError('earlyKillRatio must be in [0, 1]');
  if (o.variants.length === 0) throw new RangeError('variants must not be empty');
  if (o.store !== 'sqlite' && o.store !== 'postgres') throw new RangeError(`store must be sqlite or postgres, got ${String(o.store)}`);
  positiveInt('instances', o.instances, 8);
  if (o.instances > 1 && o.store !== 'postgres') throw new RangeError('several instances need a shared store: --store postgres');
  positiveInt('leaseMs', o.leaseMs, 600_000);
  if (o.capacitySat < 100_000n) throw new RangeError('capacitySat must be at least 100,000');
  const perChannel = BigInt(Math.ceil(o.payments / o.channels) * o.maxAmountSat);
  if (perChannel > o.capacitySat / 2n) throw new RangeError(`capacitySat ${o.capacitySat} is too small for ${o.payments} payments of up to ${o.maxAmountSat} sat on ${o.channels} channels`);
}
