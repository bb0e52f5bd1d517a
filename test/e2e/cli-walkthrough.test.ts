/**
 * The README's five-minute walkthrough, run as written: every `npx paychan ...` line of the
 * README is executed here (the port 8420 is swapped for a free one), against a real regtest node
 * started by `paychan regtest start`, with a payee and payers in separate processes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argsOf, freePort, runCli, startCli, stopCli, withMining, type CliResult, tearDownCliHome } from '../helpers/cli.js';

const README = fs.readFileSync('README.md', 'utf8');
let home: string;
let port: number;
let env: NodeJS.ProcessEnv;
let payee: Awaited<ReturnType<typeof startCli>> | undefined;

/** Runs a README line (must appear in the README verbatim) and expects success. */
async function readme(line: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  expect(README).toContain(line);
  const args = argsOf(line.replace(/8420/g, String(port)));
  const result = await runCli(args, { ...env, ...extraEnv });
  if (result.code !== 0) throw new Error(`${line} exited ${result.code}\n${result.stdout}\n${result.stderr}`);
  return result;
}

/** The README's "in terminal 1: mine", for withMining. */
const mineOne = () => readme('npx paychan regtest mine 1');

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-walkthrough-'));
  port = await freePort();
  env = { ...process.env, PAYCHAN_HOME: home };
});

afterAll(() => tearDownCliHome(home, env, payee));

describe('README walkthrough', () => {
  it('node, payee and payer in three processes, as the README says', async () => {
    const started = await readme('npx paychan regtest start');
    expect(started.stdout).toMatch(/RPC URL: +http:\/\/127\.0\.0\.1:\d+/);

    expect(README).toContain('npx paychan payee serve');
    payee = await startCli(['payee', 'serve', '--listen', `127.0.0.1:${port}`], env, /payee listening/);

    const address = (await readme('npx paychan payer address')).stdout.trim().split('\n')[0]!;
    expect(address).toMatch(/^bcrt1q/);
    // The README writes ADDRESS for the address the line before printed.
    expect(README).toContain('npx paychan regtest fund ADDRESS 0.01btc');
    const funded = await runCli(['regtest', 'fund', address, '0.01btc'], env);
    expect(funded.code).toBe(0);

    const opened = await withMining(readme('npx paychan payer open ws://127.0.0.1:8420/v1/ws --capacity 100000'), mineOne);
    expect(opened.stdout).toMatch(/channel [0-9a-f]{64}:\d+ is open/);

    const paid = await readme('npx paychan payer pay 10 --count 100');
    expect(paid.stdout).toMatch(/1000 sat acknowledged in total/);

    const fetched = await readme('npx paychan payer fetch http://127.0.0.1:8420/v1/paid/hello --count 5');
    expect(fetched.stdout).toMatch(/5 paid request\(s\)/);

    const status = await readme('npx paychan payer status --json');
    expect(status.json).toMatchObject({ state: 'Open', ackedSat: 1050, signedSat: 1050 });

    const closed = await withMining(readme('npx paychan payer close'), mineOne);
    expect(closed.stdout).toMatch(/closed: [0-9a-f]{64} confirmed; 98950 sat back to the payer/);

    // The refund path: a second channel with a short expiry that the payee never closes.
    await withMining(readme('npx paychan payer open ws://127.0.0.1:8420/v1/ws --capacity 50000 --variant spilman-v2 --expiry-blocks 12'), mineOne);
    await readme('npx paychan regtest mine 12');
    const refund = await readme('npx paychan payer refund');
    expect(refund.stdout).toMatch(/refund [0-9a-f]{64} broadcast/);
    const watched = await withMining(readme('npx paychan payer watch'), mineOne);
    expect(watched.stdout).toMatch(/settled by refund [0-9a-f]{64}: \d+ sat to the payer/);

    // Duplex: the payee puts coins in, pays back while the payer is away, the payer syncs.
    const payeeAddress = (await readme('npx paychan payee address')).stdout.trim().split('\n')[0]!;
    expect(payeeAddress).toMatch(/^bcrt1q/);
    expect(README).toContain('npx paychan regtest fund PAYEE_ADDRESS 0.01btc');
    expect((await runCli(['regtest', 'fund', payeeAddress, '0.01btc'], env)).code).toBe(0);
    const duplex = await withMining(readme('npx paychan payer open ws://127.0.0.1:8420/v1/ws --variant duplex --capacity 60000 --payee-contribution 40000'), mineOne);
    const channel = /duplex channel ([0-9a-f]{64}:\d+) is open/.exec(duplex.stdout)?.[1];
    expect(channel, duplex.stdout).toBeDefined();
    await readme('npx paychan payer pay 1000 --count 5');
    const line = 'npx paychan payee pay-back CHANNEL 3000';
    expect(README).toContain(line);
    const paidBack = await runCli(argsOf(line.replace('CHANNEL', channel!)), { ...env, PAYCHAN_LISTEN: `127.0.0.1:${port}` });
    expect(paidBack.code, paidBack.stderr).toBe(0);
    expect(paidBack.stdout).toMatch(/queued 3000 sat/);
    await readme('npx paychan payer sync');
    const duplexClosed = await withMining(readme('npx paychan payer close'), mineOne);
    // 60,000 − 5,000 + 3,000 for the payer, 40,000 + 5,000 − 3,000 for the payee, less half the fee each.
    expect(duplexClosed.stdout).toMatch(/closed by cooperative [0-9a-f]{64}: A 5[0-9]{4} sat, B 4[0-9]{4} sat, fee \d+ sat/);
    const [, a, b, fee] = /A (\d+) sat, B (\d+) sat, fee (\d+) sat/.exec(duplexClosed.stdout)!;
    expect(Number(a) + Number(b) + Number(fee)).toBe(100_000);
    expect(Number(a) + Math.ceil(Number(fee) / 2)).toBe(58_000);

    await stopCli(payee.child);
    payee = undefined;
    const stopped = await readme('npx paychan regtest stop');
    expect(stopped.stdout).toMatch(/stopped/);
  });
});
