/**
 * Payee and payer as separate processes on regtest, each killed with SIGKILL in the middle of a
 * payment stream and restarted: the channel resumes with no payment lost or counted twice, and
 * the close on chain pays exactly the final total.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Transaction } from 'bitcoinjs-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateSeed } from '../../src/app/files.js';
import { startRegtestNode, type RegtestNode } from '../../src/chain/regtest/index.js';
import { RpcClient } from '../../src/chain/rpc-client.js';
import { WalletKeys } from '../../src/wallet/keys.js';
import { freePort, runCli, startCli, stopCli } from '../helpers/cli.js';
import { waitUntil } from '../helpers/local-pair.js';

const CAPACITY = 1_000_000;
let dir: string;
let node: RegtestNode;
let rpc: RpcClient;
let port: number;
let rpcArgs: string[];
let mining = true;
let miner: Promise<void>;
let payee: Awaited<ReturnType<typeof startCli>> | undefined;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-restart-'));
  const payerAddress = WalletKeys.fromSeed(loadOrCreateSeed(path.join(dir, 'payer', 'seed')), 'regtest').address('receive', 0).address;
  node = await startRegtestNode({ miningAddress: payerAddress });
  await node.mine(101);
  rpc = new RpcClient({ url: node.rpcUrl, user: node.rpcUser, pass: node.rpcPass });
  rpcArgs = ['--rpc-url', node.rpcUrl, '--rpc-user', node.rpcUser, '--rpc-pass', node.rpcPass];
  port = await freePort();
  // A miner: a block whenever a transaction waits in the mempool.
  miner = (async () => {
    while (mining) {
      const mempool = (await rpc.call('getrawmempool').catch(() => [])) as string[];
      if (mempool.length > 0) await node.mine(1).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
});

afterAll(async () => {
  mining = false;
  await miner;
  if (payee) await stopCli(payee.child, 'SIGKILL');
  rpc?.close();
  await node?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const startPayee = () => startCli(['payee', 'serve', ...rpcArgs, '--data-dir', path.join(dir, 'payee'), '--listen', `127.0.0.1:${port}`], process.env, /payee listening/);
const payer = (args: string[]) => ['payer', ...args, ...rpcArgs, '--data-dir', path.join(dir, 'payer'), '--json'];

async function payeePaid(channelId: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/channels/${channelId}`).catch(() => null);
  if (!res?.ok) return -1;
  return Number(((await res.json()) as { paidSat: string }).paidSat);
}


describe('restarts mid-stream', () => {
  it('10,000 payments survive a payee SIGKILL and a payer SIGKILL', async () => {
    payee = await startPayee();
    const opened = await runCli(payer(['open', `ws://127.0.0.1:${port}/v1/ws`, '--capacity', String(CAPACITY)]), process.env);
    expect(opened.code, opened.stderr).toBe(0);
    const channelId = String(opened.json!.channelId);

    // 1. The payee dies while 6,000 payments stream in; it restarts on the same store and port.
    const stream = runCli(payer(['pay', '1', '--count', '6000']), process.env);
    await waitUntil(async () => (await payeePaid(channelId)) >= 1500, 'the first payments', 60_000);
    await stopCli(payee.child, 'SIGKILL');
    payee = await startPayee();
    const first = await stream;
    expect(first.code, first.stderr).toBe(0);
    expect(first.json!.ackedSat).toBe(6000);
    expect(await payeePaid(channelId)).toBe(6000);

    // 2. The payer dies while 4,000 more stream; it signed and stored some of them.
    let victim: ChildProcess | undefined;
    const interrupted = runCli(payer(['pay', '1', '--count', '4000']), process.env, 120_000, (c) => (victim = c));
    await waitUntil(async () => (await payeePaid(channelId)) >= 6200, 'more payments', 60_000);
    victim!.kill('SIGKILL');
    expect((await interrupted).code).not.toBe(0);
    const status = await runCli(payer(['status']), process.env);
    const signedBeforeRestart = Number(status.json!.signedSat);
    const payeeSawBeforeRestart = await payeePaid(channelId);
    // Never acknowledged more than the payer stored; what it stored but the payee lacks is resent.
    expect(payeeSawBeforeRestart).toBeLessThanOrEqual(signedBeforeRestart);
    const rest = 10_000 - signedBeforeRestart;
    expect(rest).toBeGreaterThan(0);
    const resumed = await runCli(payer(['pay', '1', '--count', String(rest)]), process.env);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.json!.ackedSat).toBe(10_000);
    expect(await payeePaid(channelId)).toBe(10_000);

    // 3. Close: the chain pays exactly the final total.
    const closed = await runCli(payer(['close']), process.env);
    expect(closed.code, closed.stderr).toBe(0);
    const close = await node.backend.getTransaction(String(closed.json!.closeTxid));
    const tx = Transaction.fromHex(close!.hex);
    const outputs = tx.outs.reduce((s, o) => s + o.value, 0n);
    const fee = BigInt(CAPACITY) - outputs;
    expect(tx.outs[0]!.value).toBe(BigInt(CAPACITY - 10_000)); // the payer's change
    expect(tx.outs[1]!.value).toBe(10_000n - fee); // the payee's share, minus the fee it pays
    expect(close!.confirmations).toBeGreaterThanOrEqual(1);
  });
});
