/**
 * `paychan regtest ...` as a user runs it, with its own PAYCHAN_HOME: mining limits and progress,
 * a chain that survives `regtest stop` / `regtest start`, and the demo pointed at that node.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

let home: string;
let env: NodeJS.ProcessEnv;

/** Runs `paychan ...args` and expects exit code 0. */
async function ok(args: string[], timeoutMs?: number): Promise<Awaited<ReturnType<typeof runCli>>> {
  const result = await runCli(args, env, timeoutMs);
  if (result.code !== 0) throw new Error(`paychan ${args.join(' ')} exited ${result.code}\n${result.stdout}\n${result.stderr}`);
  return result;
}

async function height(): Promise<number> {
  return (await ok(['regtest', 'mine', '1', '--json'])).json!.height as number;
}

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-regtest-cli-'));
  env = { ...process.env, PAYCHAN_HOME: home };
  await ok(['regtest', 'start']);
});

afterAll(async () => {
  await runCli(['regtest', 'stop'], env);
  fs.rmSync(home, { recursive: true, force: true });
});

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

  it('stops mining when the command is stopped: the node mines no block after it exits', async () => {
    const before = await height();
    const stopped = await runCli(['regtest', 'mine', '5000'], env, 120_000, (child) => {
      // Stop it once the first batch is reported.
      child.stderr!.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('mined 50/5000')) child.kill('SIGTERM');
      });
    });
    expect(stopped.code).toBe(143);
    const match = /stopped by SIGTERM after (\d+) of 5000 block\(s\); height (\d+)/.exec(stopped.stderr);
    expect(match, stopped.stderr).not.toBeNull();
    expect(Number(match![2])).toBe(before + Number(match![1]));
    expect(await height()).toBe(before + Number(match![1]) + 1); // nothing mined since, but height()'s own block
  });
});
