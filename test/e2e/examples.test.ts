/**
 * The programs in examples/ run as a user runs them: `node examples/<file>.js`, importing
 * `paychan` by its name (the package's self-reference resolves it to the built dist/, as an
 * installed copy would), against the regtest node of `paychan regtest start`, with nothing but
 * the CLI's environment (PAYCHAN_HOME, PAYCHAN_LISTEN, PORT). Each seller in turn sells to the
 * paying client; the payee's books (`paychan payee channels`) show every paid call, all on the
 * one channel the first run of the client opened (later runs reuse it: no new funding).
 * The README shows these files verbatim.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RpcClient } from '../../src/chain/rpc-client.js';
import { runExample } from '../helpers/examples.js';
import { freePort, runCli, stopCli, tearDownCliHome, withMining, type CliResult } from '../helpers/cli.js';

const README = fs.readFileSync('README.md', 'utf8');
const SELLERS = ['express-seller.js', 'hono-seller.js', 'http-seller.js'];
const CALLS = 5; // what examples/paying-client.js makes
const PRICE = 10;

let home: string;
let env: NodeJS.ProcessEnv;
let listen: string;

async function ok(args: string[]): Promise<CliResult> {
  const r = await runCli(args, env);
  if (r.code !== 0) throw new Error(`paychan ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-examples-'));
  listen = `127.0.0.1:${await freePort()}`;
  env = { ...process.env, PAYCHAN_HOME: home, PAYCHAN_LISTEN: listen, PORT: String(await freePort()) };
  await ok(['regtest', 'start']);
  const address = (await ok(['payer', 'address'])).stdout.trim().split('\n')[0]!;
  await ok(['regtest', 'fund', address, '0.01btc']);
});

afterAll(() => tearDownCliHome(home, env));

describe('examples/', () => {
  it.each(SELLERS.map((s, i) => [s, i] as const))('%s sells to examples/paying-client.js', async (seller, runsBefore) => {
    const served = await runExample(seller, [], env, /selling jokes on port \d+/);
    try {
      const client = await withMining(runExample('paying-client.js', [`http://127.0.0.1:${env.PORT}/joke`], env), () => ok(['regtest', 'mine', '1']));
      expect(client.code, client.output).toBe(0);
      const answers = client.output.trim().split('\n');
      expect(answers).toHaveLength(CALLS);
      for (const line of answers) expect(JSON.parse(line.replace(/^200 /, ''))).toEqual({ joke: 'A satoshi walks into a bar.' });
      const books = (await ok(['payee', 'channels', '--json', '--listen', listen, '--data-dir', path.join(home, 'payee')])).json!;
      const channels = books.channels as { paidSat: number | string }[];
      expect(channels).toHaveLength(1); // the first run's channel, reused by every later run
      expect(Number(channels[0]!.paidSat)).toBe(PRICE * CALLS * (runsBefore + 1));
    } finally {
      await stopCli(served.child);
    }
  });

  it('x402-seller.js sells to x402-buyer.js (the official x402 SDK), on the same channel', async () => {
    const served = await runExample('x402-seller.js', [], env, /selling weather on port \d+/);
    try {
      const buyer = await withMining(runExample('x402-buyer.js', [`http://127.0.0.1:${env.PORT}/weather`], env), () => ok(['regtest', 'mine', '1']));
      expect(buyer.code, buyer.output).toBe(0);
      expect(buyer.output.trim().split('\n')).toEqual(Array(CALLS).fill('200 {"weather":"sunny"}'));
      const books = (await ok(['payee', 'channels', '--json', '--listen', listen, '--data-dir', path.join(home, 'payee')])).json!;
      const channels = books.channels as { paidSat: number | string }[];
      expect(channels).toHaveLength(1);
      expect(Number(channels[0]!.paidSat)).toBe(PRICE * CALLS * SELLERS.length + 7 * CALLS);
    } finally {
      await stopCli(served.child);
    }
  });

  it('duplex-pair.js: both sides put coins in, pay each other, and close on chain', async () => {
    const payeeAddress = (await ok(['payee', 'address', '--json'])).json!.address as string;
    await ok(['regtest', 'fund', payeeAddress, '0.001btc']);
    const pair = await withMining(runExample('duplex-pair.js', [], env), () => ok(['regtest', 'mine', '1']));
    expect(pair.code, pair.output).toBe(0);
    const [balances, closed] = pair.output.trim().split('\n');
    expect(balances).toBe('payer 59300 sat, payee 40700 sat'); // 60,000 − 1,000 + 300 and 40,000 + 1,000 − 300
    const closeTxid = /^closed by ([0-9a-f]{64})$/.exec(closed ?? '')?.[1];
    expect(closeTxid, pair.output).toBeDefined();
    // The close is on the node's chain, confirmed, and pays both sides what the balances said, less its fee.
    const node = JSON.parse(fs.readFileSync(path.join(home, 'regtest', 'node.json'), 'utf8')) as { rpcUrl: string; rpcUser: string; rpcPass: string };
    const rpc = new RpcClient({ url: node.rpcUrl, user: node.rpcUser, pass: node.rpcPass });
    try {
      const tx = (await rpc.call('getrawtransaction', [closeTxid, 1])) as { confirmations?: number; vout: { value: number }[] };
      expect(tx.confirmations).toBeGreaterThanOrEqual(1);
      const outSat = tx.vout.reduce((sum, o) => sum + Math.round(o.value * 1e8), 0);
      expect(outSat).toBeLessThan(100_000);
      expect(outSat).toBeGreaterThan(99_000);
    } finally {
      rpc.close();
    }
  });

  it('README shows every example verbatim', () => {
    for (const file of [...SELLERS, 'paying-client.js', 'x402-seller.js', 'x402-buyer.js', 'duplex-pair.js']) {
      if (file === 'http-seller.js') continue; // run by the package test; the README names it
      expect(README, file).toContain(fs.readFileSync(path.join('examples', file), 'utf8'));
    }
  });
});
