/**
 * Crash points the random kills of the harness are unlikely to hit, each forced deterministically
 * with the RPC proxy (hold a node call, SIGKILL the payee while it waits) or with a SQLite lock
 * (a commit that takes long, like an fsync on a slow disk). One payee process, one payer in this
 * process, one channel per scenario.
 *
 * - `close-before-durable`: the payee's close reaches the node while the Closing state is not
 *   yet committed, and the payee dies. Must hold: the payee restarts knowing the channel is
 *   closing, and acknowledges nothing the close does not pay.
 * - `funding-broadcast-crash`: the payee dies while handing the funding to the node, before the
 *   node has it (and so before it stored the channel: a channel row follows the node's accept,
 *   docs/design.md "Openings without state"). Must hold: the channel still opens (the payer's
 *   resume sends the funding again).
 * - `handshake-crash`: the payee dies while answering `hello`. Must hold: the channel still opens.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { address as baddress, Transaction } from 'bitcoinjs-lib';
import { startRegtestNode, type RegtestNode } from '../../src/chain/regtest/index.js';
import { RpcClient } from '../../src/chain/rpc-client.js';
import { secp256k1 } from '../../src/crypto/index.js';
import type { Channel } from '../../src/protocol/channel.js';
import { bitcoinjsNetwork } from '../../src/protocol/network.js';
import { payerPolicy } from '../../src/protocol/policy.js';
import { PayerClient } from '../../src/payer/payer-client.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { connectPayee, type WsPeerLink } from '../../src/transport/ws-client.js';
import { WalletKeys } from '../../src/wallet/keys.js';
import { Wallet } from '../../src/wallet/wallet.js';
import { freePort } from '../helpers/cli.js';
import { PayeeProcess } from './payee-process.js';
import { startRpcProxy, type RpcProxy } from './rpc-proxy.js';
import { peekPayeeStore } from './store-check.js';

export const SCENARIOS = ['close-before-durable', 'funding-broadcast-crash', 'handshake-crash'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface ScenarioReport {
  readonly scenario: ScenarioName;
  readonly ok: boolean;
  /** What happened, step by step. */
  readonly steps: readonly string[];
  /** Acknowledged payments the chain does not pay (close-before-durable). */
  readonly ackedLost?: number;
  readonly durationSec: number;
}

const CAPACITY = 1_000_000n;

interface Env {
  readonly node: RegtestNode;
  readonly proxy: RpcProxy;
  readonly payee: PayeeProcess;
  readonly payeeDb: string;
  readonly payer: { client: PayerClient; link: WsPeerLink; payerScript: Uint8Array };
  stop(): Promise<void>;
}

async function startEnv(log: (line: string) => void): Promise<Env> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-crash-scenario-'));
  const seed = randomBytes(32);
  const node = await startRegtestNode({ miningAddress: WalletKeys.fromSeed(seed, 'regtest').address('receive', 0).address });
  const rpc = new RpcClient({ url: node.rpcUrl, user: node.rpcUser, pass: node.rpcPass });
  let mining = true;
  let miner: Promise<void> = Promise.resolve();
  let proxy: RpcProxy | undefined;
  let payee: PayeeProcess | undefined;
  let link: WsPeerLink | undefined;
  const stop = async () => {
    mining = false;
    await miner;
    await link?.close();
    await payee?.kill();
    await proxy?.close();
    rpc.close();
    await node.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await node.mine(103);
    miner = (async () => {
      while (mining) {
        const mempool = (await rpc.call('getrawmempool').catch(() => [])) as string[];
        if (mempool.length > 0) await node.mine(1).catch(() => undefined);
        await sleep(100);
      }
    })();
    proxy = await startRpcProxy(node.rpcUrl);
    const payeeDir = path.join(dir, 'payee');
    payee = new PayeeProcess({ rpcUrl: proxy.url, rpcUser: node.rpcUser, rpcPass: node.rpcPass, dataDir: payeeDir, port: await freePort(), env: { ...process.env, PAYCHAN_HOME: path.join(dir, 'home') } });
    await payee.start();
    const secp = secp256k1();
    const wallet = await Wallet.open({ seed, network: 'regtest', backend: node.backend, secp });
    await wallet.sync();
    const holder: { client?: PayerClient } = {};
    link = connectPayee(payee.url, {
      onMessage: (t) => holder.client?.receive(t),
      onOpen: () => holder.client?.resume(),
      reconnect: { minDelayMs: 25, maxDelayMs: 250 },
    });
    const payerScript = baddress.toOutputScript(wallet.changeAddress(), bitcoinjsNetwork('regtest'));
    const client = new PayerClient({
      secp,
      policy: payerPolicy({ network: 'regtest' }),
      network: 'regtest',
      backend: node.backend,
      wallet,
      channelKey: wallet.nextChannelKey(),
      payoutScript: payerScript,
      link,
      store: new MemoryStore(),
      fundingFeeRateSatPerVb: 2,
      random16: () => randomBytes(16),
      log: (l) => log(`payer: ${l}`),
    });
    holder.client = client;
    await link.ready();
    return { node, proxy, payee, payeeDb: path.join(payeeDir, 'payee.db'), payer: { client, link, payerScript }, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Resolves with `promise`'s value, or with `fallback` after `ms`. */
async function within<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<F>((resolve) => (timer = setTimeout(() => resolve(fallback), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `probe` every 20 ms until it answers non-null; null after `ms`. */
async function pollFor<T>(probe: () => Promise<T | null>, ms: number): Promise<T | null> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    const value = await probe();
    if (value !== null) return value;
    await sleep(20);
  }
  return null;
}

function storeLine(db: string): string {
  return [...peekPayeeStore(db).values()].map((s) => `${s.stateType} paid ${s.paidSat}${s.closeTxid ? ` close ${s.closeTxid}` : ''}`).join('; ') || 'no funded channel';
}

export async function runScenario(scenario: ScenarioName, log: (line: string) => void = () => undefined): Promise<ScenarioReport> {
  const t0 = performance.now();
  const steps: string[] = [];
  const step = (line: string) => {
    steps.push(line);
    log(`${scenario}: ${line}`);
  };
  const env = await startEnv(log);
  try {
    const result = await SCENARIO_RUNNERS[scenario](env, step);
    return { scenario, ...result, steps, durationSec: Math.round((performance.now() - t0) / 100) / 10 };
  } catch (err) {
    step(`error: ${err instanceof Error ? err.message : String(err)}`);
    return { scenario, ok: false, steps, durationSec: Math.round((performance.now() - t0) / 100) / 10 };
  } finally {
    await env.stop();
  }
}

type Runner = (env: Env, step: (line: string) => void) => Promise<{ ok: boolean; ackedLost?: number }>;

const SCENARIO_RUNNERS: Record<ScenarioName, Runner> = {
  async 'close-before-durable'({ node, payee, payeeDb, payer: { client, payerScript } }, step) {
    const channel = await client.open({ variant: 'spilman-v2', capacitySat: CAPACITY, expiryBlocks: 200 });
    const acked: bigint[] = [];
    for (let i = 0; i < 100; i++) acked.push(await client.pay(100n));
    step(`channel ${channel.id} open, ${acked.at(-1)} sat acknowledged`);
    // Another connection holds the write lock: the payee's next commit waits (as on a disk
    // whose fsync takes long), while its event loop is blocked in that commit.
    const lock = new Database(payeeDb);
    lock.exec('BEGIN IMMEDIATE');
    try {
      client.requestClose();
      // What counts is the node having the close (the funding spent in its mempool).
      const closeTxid = await pollFor(async () => {
        const s = await node.backend.getOutpointStatus(channel.funding, 0);
        return s.state === 'spent' ? s.spendingTxid : null;
      }, 3_000);
      step(closeTxid ? `the node has the close ${closeTxid} while the payee's commit of Closing waits` : 'no close reached the node while the commit waited (the close waits for durability)');
      await payee.kill();
    } finally {
      lock.exec('ROLLBACK');
      lock.close();
    }
    step(`payee SIGKILLed; its store: ${storeLine(payeeDb)}`);
    await payee.start();
    await sleep(500);
    step(`payee restarted; payer state ${client.state?.type}`);
    if (client.state?.type === 'Open') {
      for (let i = 0; i < 50; i++) {
        const total = await within(client.pay(100n), 10_000, null).catch(() => null);
        if (total === null) break;
        acked.push(total);
      }
      step(`payer paid on: ${acked.at(-1)} sat acknowledged`);
    }
    // Close (again, if the payer is still open) and see what the chain pays.
    const deadline = performance.now() + 30_000;
    while (client.state?.type === 'Open' && performance.now() < deadline) {
      client.requestClose();
      await sleep(2_000);
    }
    const spender = await pollFor(async () => {
      const s = await node.backend.getOutpointStatus(channel.funding, 0);
      return s.state === 'spent' && s.confirmations > 0 ? s.spendingTxid : null;
    }, Math.max(1_000, deadline - performance.now()));
    if (!spender) {
      step('the funding is not spent by a confirmed close after 30 s');
      return { ok: false };
    }
    const tx = Transaction.fromHex((await node.backend.getTransaction(spender))!.hex);
    const change = tx.outs.filter((o) => Buffer.from(o.script).equals(Buffer.from(payerScript))).reduce((s, o) => s + o.value, 0n);
    const paid = CAPACITY - change;
    const lastAcked = acked.at(-1) ?? 0n;
    const ackedLost = acked.filter((t) => t > paid).length;
    step(`the close on chain ${spender} pays ${paid} sat; ${lastAcked} were acknowledged: ${ackedLost} acknowledged payments lost; payee store: ${storeLine(payeeDb)}`);
    return { ok: ackedLost === 0, ackedLost };
  },

  async 'funding-broadcast-crash'({ proxy, payee, payeeDb, payer: { client } }, step) {
    proxy.hold('sendrawtransaction');
    const held = proxy.nextCall('sendrawtransaction');
    const opening = client.open({ variant: 'spilman-v1', capacitySat: CAPACITY, expiryBlocks: 200 });
    opening.catch(() => undefined);
    await within(held, 30_000, null);
    step(`the payee's funding broadcast is held; its store: ${storeLine(payeeDb)}`);
    await payee.kill();
    proxy.drop('sendrawtransaction');
    step('payee SIGKILLed before the node got the funding');
    await payee.start();
    const opened = await within(opening.then((c: Channel) => c.id), 20_000, null).catch((err: unknown) => `failed: ${String(err)}`);
    step(opened ? `channel ${opened} open after the restart` : `not open 20 s after the restart: payer ${client.state?.type}, payee store: ${storeLine(payeeDb)}`);
    return { ok: opened !== null && !opened.startsWith('failed') };
  },

  async 'handshake-crash'({ proxy, payee, payer: { client } }, step) {
    // The payee asks the node for the tip when a hello arrives: hold that, and kill it there.
    proxy.hold('getbestblock');
    const held = proxy.nextCall('getbestblock');
    await sleep(300); // the payee's own tip polls are held too; the next one after hello is ours
    const opening = client.open({ variant: 'spilman-v1', capacitySat: CAPACITY, expiryBlocks: 200 });
    opening.catch(() => undefined);
    await within(held, 5_000, null);
    await sleep(300);
    await payee.kill();
    proxy.drop('getbestblock');
    step(`payee SIGKILLed while answering hello; payer state ${client.state?.type}`);
    await payee.start();
    const opened = await within(opening.then((c: Channel) => c.id), 20_000, null).catch((err: unknown) => `failed: ${String(err)}`);
    step(opened ? `channel ${opened} open after the restart` : `not open 20 s after the restart: payer ${client.state?.type}`);
    return { ok: opened !== null && !opened.startsWith('failed') };
  },
};
