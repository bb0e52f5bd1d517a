/**
 * `paychan regtest ...` as a user runs it, with its own PAYCHAN_HOME: mining limits and progress,
 * a chain that survives `regtest stop` / `regtest start`, and the demo pointed at that node.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { startBtcdRegtest } from '../../src/chain/regtest/btcd-node.js';
import { RpcClient } from '../../src/chain/rpc-client.js';
import { WalletKeys } from '../../src/wallet/keys.js';
import { freePort, runCli, startCli, withMining, tearDownCliHome } from '../helpers/cli.js';

let home: string;
let env: NodeJS.ProcessEnv;
let payee: Awaited<ReturnType<typeof startCli>> | undefined;

/** Runs `paychan ...args` and expects exit code 0. */
async function ok(args: string[], timeoutMs?: number): Promise<Awaited<ReturnType<typeof runCli>>> {
  const result = await runCli(args, env, timeoutMs);
  if (result.code !== 0) throw new Error(`paychan ${args.join(' ')} exited ${result.code}\n${result.stdout}\n${result.stderr}`);
  return result;
}

/** An RPC client to the node of node.json (its keys are those of `regtest start --json`). */
function nodeRpc(): RpcClient {
  const info = JSON.parse(fs.readFileSync(path.join(home, 'regtest', 'node.json'), 'utf8')) as { rpcUrl: string; rpcUser: string; rpcPass: string };
  return new RpcClient({ url: info.rpcUrl, user: info.rpcUser, pass: info.rpcPass });
}

/** The node's tip, read over RPC from what `regtest start` wrote (mines nothing). */
async function tip(): Promise<{ height: number; hash: string }> {
  const rpc = nodeRpc();
  try {
    const best = (await rpc.call('getbestblock')) as { height: number; hash: string };
    return { height: best.height, hash: best.hash };
  } finally {
    rpc.close();
  }
}

/** Polls `check` (bounded) until it holds. */
async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function height(): Promise<number> {
  return (await ok(['regtest', 'mine', '1', '--json'])).json!.height as number;
}

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-regtest-cli-'));
  env = { ...process.env, PAYCHAN_HOME: home };
  await ok(['regtest', 'start']);
});

afterAll(() => tearDownCliHome(home, env, payee));

describe('paychan regtest mine', () => {
  it('refuses an absurd count with a message saying the limit and why, mining nothing', async () => {
    const before = await height();
    const refused = await runCli(['regtest', 'mine', '20000'], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/at most 10000 blocks/);
    expect(refused.stderr).toMatch(/ahead of the clock/);
    expect(await height()).toBe(before + 1); // only height()'s own block
  });

  it('mines in batches, with progress on stderr, up to the height asked for', async () => {
    const before = await height();
    const mined = await ok(['regtest', 'mine', '120', '--json']);
    expect(mined.json).toMatchObject({ mined: 120, height: before + 120 });
    expect(mined.stderr).toMatch(/mined 50\/120 blocks/);
    expect(mined.stderr).toMatch(/mined 120\/120 blocks/);
  });

  it('stops mining when the command is stopped: the node mines no block after it exits; --json still says what was mined', async () => {
    const before = await height();
    const stopped = await runCli(['regtest', 'mine', '5000', '--json'], env, 120_000, (child) => {
      // Stop it once the first batch is reported.
      child.stderr!.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('mined 50/5000')) child.kill('SIGTERM');
      });
    });
    expect(stopped.code).toBe(143);
    const match = /stopped by SIGTERM after (\d+) of 5000 block\(s\); height (\d+)/.exec(stopped.stderr);
    expect(match, stopped.stderr).not.toBeNull();
    expect(Number(match![2])).toBe(before + Number(match![1]));
    expect(stopped.json, stopped.stdout).toEqual({ mined: Number(match![1]), height: Number(match![2]), requestedBlocks: 5000, stopped: 'SIGTERM', error: { code: 'INTERRUPTED', message: 'interrupted (SIGTERM)' } });
    expect(await height()).toBe(before + Number(match![1]) + 1); // nothing mined since, but height()'s own block
  });
});

describe('regtest stop / regtest start', () => {
  it('keeps the chain: height, tip, the wallets, the channel, and the payee that was running', async () => {
    const port = await freePort();
    payee = await startCli(['payee', 'serve', '--listen', `127.0.0.1:${port}`], env, /payee listening/);
    const address = (await ok(['payer', 'address'])).stdout.trim().split('\n')[0]!;
    await ok(['regtest', 'fund', address, '0.01btc']);
    const mineOne = () => ok(['regtest', 'mine', '1']);
    await withMining(ok(['payer', 'open', `ws://127.0.0.1:${port}/v1/ws`, '--capacity', '100000']), mineOne);
    await ok(['payer', 'pay', '10', '--count', '10']);
    await ok(['regtest', 'mine', '5']);
    const balance = async () => {
      const { confirmedSat, unconfirmedSat, immatureSat } = (await ok(['payer', 'address', '--json'])).json!;
      return { confirmedSat, unconfirmedSat, immatureSat };
    };
    const before = { tip: await tip(), wallet: await balance(), status: (await ok(['payer', 'status', '--json'])).json };
    expect(before.wallet.confirmedSat as number).toBeGreaterThan(800_000);
    expect(before.status).toMatchObject({ state: 'Open', ackedSat: 100 });
    expect(before.status!.fundingConfirmations as number).toBeGreaterThanOrEqual(6);
    const started = (await ok(['regtest', 'start', '--json'])).json!;

    await ok(['regtest', 'stop']);
    const restarted = (await ok(['regtest', 'start', '--json'])).json!;
    expect(restarted.alreadyRunning).toBe(false);
    expect(restarted.rpcUrl).toBe(started.rpcUrl); // same port and password: running clients reconnect
    expect(await tip()).toEqual(before.tip);
    expect(await balance()).toEqual(before.wallet);
    expect((await ok(['payer', 'status', '--json'])).json).toEqual(before.status);

    // The payee started before the restart still serves the channel on the restored chain.
    await eventually(async () => (await runCli(['payer', 'pay', '10'], env)).code === 0, 'a payment after the restart');
    expect((await ok(['payer', 'status', '--json'])).json).toMatchObject({ state: 'Open', ackedSat: 110 });
    const mined = (await ok(['regtest', 'mine', '1', '--json'])).json!;
    expect(mined.height).toBe(before.tip.height + 1);

    // A node that lost the funding's block: the payer's status says so, not just "Open".
    const rpc = nodeRpc();
    try {
      const fundingBlock = ((await rpc.call('getrawtransaction', [before.status!.fundingTxid, 1])) as { blockhash: string }).blockhash;
      await rpc.call('invalidateblock', [fundingBlock]);
      const lost = await ok(['payer', 'status']);
      expect(lost.stdout).toMatch(/fundingConfirmations +0/);
      expect(lost.stderr).toMatch(/warning: the node has the funding unconfirmed [0-9a-f]{64}; the payee takes no payments until it confirms/);
      await rpc.call('reconsiderblock', [fundingBlock]);
      expect((await ok(['payer', 'status', '--json'])).json!.fundingConfirmations as number).toBeGreaterThanOrEqual(6);
    } finally {
      rpc.close();
    }
  });
});

describe('a regtest node killed with SIGKILL', () => {
  it('loses no block it had saved: the supervisor goes too, and regtest start restores the chain', async () => {
    await ok(['regtest', 'start']);
    await ok(['regtest', 'mine', '3']);
    const before = await tip();
    const archive = path.join(home, 'regtest', 'btcd', 'chain.blocks');
    const saved = () => fs.readFileSync(archive, 'utf8').split('\n').filter((l) => l.length > 0).length;
    await eventually(async () => saved() === before.height, 'the blocks to be saved');
    const info = JSON.parse(fs.readFileSync(path.join(home, 'regtest', 'node.json'), 'utf8')) as { pid: number; supervisorPid: number };
    process.kill(info.pid, 'SIGKILL');
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await eventually(async () => !alive(info.supervisorPid), 'the supervisor to exit');
    const restarted = (await ok(['regtest', 'start', '--json'])).json!;
    expect(restarted.alreadyRunning).toBe(false);
    expect(await tip()).toEqual(before);
  });
});

describe('paychan demo --rpc-url', () => {
  it('runs against the node of paychan regtest start, given by URL and credentials', async () => {
    const node = (await ok(['regtest', 'start', '--json'])).json!;
    const args = ['demo', '--json', '--rpc-url', String(node.rpcUrl), '--rpc-user', String(node.rpcUser), '--rpc-pass', String(node.rpcPass)];
    const r = (await ok(args, 300_000)).json!;
    expect(r).toMatchObject({ variant: 'spilman-v1', network: 'regtest', node: 'btcd', payments: 1000, paidRequests: 20 });
    expect(r.closeConfirmations as number).toBeGreaterThanOrEqual(1);
    expect((r.payeeReceivedSat as number) + (r.payerReceivedSat as number) + (r.closeFeeSat as number)).toBe(r.capacitySat);
    expect(r.payerReceivedSat).toBe((r.capacitySat as number) - (r.paidSat as number));
    expect(r.payeeReceivedSat).toBe((r.paidSat as number) - (r.closeFeeSat as number));
  });

  it('says in one line what it needs from a btcd that mines to a key paychan does not hold', async () => {
    const stranger = WalletKeys.fromSeed(randomBytes(32), 'regtest').address('receive', 0).address;
    const other = await startBtcdRegtest({ miningAddress: stranger });
    try {
      const refused = await runCli(['demo', '--json', '--rpc-url', other.rpcUrl, '--rpc-user', other.rpcUser, '--rpc-pass', other.rpcPass], env, 120_000);
      expect(refused.code).toBe(1);
      const last = refused.stderr.trim().split('\n').pop()!;
      expect(last).toMatch(/^paychan: the btcd at http:\/\/127\.0\.0\.1:\d+ mines to bcrt1\w+ \(its --miningaddr\), whose key paychan does not hold/);
      expect(last).toContain(stranger);
      expect(last).toMatch(/the node of 'paychan regtest start'.*or a bitcoind -regtest -txindex=1/);
    } finally {
      await other.stop();
    }
  });
});
