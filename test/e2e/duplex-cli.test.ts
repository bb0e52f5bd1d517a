/**
 * A duplex channel through the CLI, closed unilaterally by the payee: `paychan payee
 * force-close` while the payer is away; the payee's service publishes the newest state when its
 * locktime passes, and `paychan payer watch` reports the settlement.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, runCli, startCli, stopCli, withMining } from '../helpers/cli.js';

let home: string;
let env: NodeJS.ProcessEnv;
let port: number;
let payee: Awaited<ReturnType<typeof startCli>> | undefined;

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-duplex-cli-'));
  port = await freePort();
  env = { ...process.env, PAYCHAN_HOME: home, PAYCHAN_LISTEN: `127.0.0.1:${port}` };
  expect((await runCli(['regtest', 'start'], env)).code).toBe(0);
  payee = await startCli(['payee', 'serve'], env, /payee listening/);
});

afterAll(async () => {
  if (payee) await stopCli(payee.child);
  await runCli(['regtest', 'stop'], env);
  fs.rmSync(home, { recursive: true, force: true });
});

async function ok(args: string[]) {
  const r = await runCli(args, env, 180_000);
  if (r.code !== 0) throw new Error(`paychan ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

const mineOne = () => ok(['regtest', 'mine', '1']);

describe('duplex through the CLI', () => {
  it('guards the admin routes with the data dir token', async () => {
    const url = `http://127.0.0.1:${port}/v1/duplex/pay-back`;
    const body = JSON.stringify({ channelId: `${'00'.repeat(32)}:0`, amountSat: 1 });
    const none = await fetch(url, { method: 'POST', body });
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ code: 'UNAUTHORIZED' });
    const wrong = await fetch(url, { method: 'POST', body, headers: { authorization: `Bearer ${'ab'.repeat(24)}` } });
    expect(wrong.status).toBe(401);
    const token = fs.readFileSync(path.join(home, 'payee', 'admin-token'), 'utf8').trim();
    expect(fs.statSync(path.join(home, 'payee', 'admin-token')).mode & 0o077).toBe(0);
    const authorization = `Bearer ${token}`;
    const bad = await fetch(url, { method: 'POST', body: '{"amountSat":"-1"}', headers: { authorization } });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: 'BAD_REQUEST' });
    const unknown = await fetch(url, { method: 'POST', body, headers: { authorization } });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ code: 'UNKNOWN_CHANNEL' });
  });

  it('is closed alone by the payee, and the payer watch sees the newest state settle', async () => {
    const address = (await ok(['payer', 'address'])).stdout.trim().split('\n')[0]!;
    await ok(['regtest', 'fund', address, '0.01btc']);
    const opened = await withMining(ok(['payer', 'open', `ws://127.0.0.1:${port}/v1/ws`, '--variant', 'duplex', '--capacity', '80000', '--json']), mineOne);
    const channelId = opened.json!.channelId as string;
    await ok(['payer', 'pay', '2000', '--count', '3']);

    // Payee-initiated unilateral close while the payer is away.
    const forced = await ok(['payee', 'force-close', channelId, '--json']);
    const minedFrom = forced.json!.minedFromHeight as number;
    const tip = (await ok(['regtest', 'mine', '1', '--json'])).json!.height as number;
    expect(minedFrom).toBeGreaterThan(tip + 100); // the newest state is far from final: no one can close alone yet
    // Up to the newest state's locktime in one go; the payee's service publishes it there.
    await ok(['regtest', 'mine', String(minedFrom - 1 - tip), '--json']);
    const watched = await withMining(ok(['payer', 'watch', '--json']), mineOne);
    expect(watched.json).toMatchObject({ channelId, phase: 'closed', settlement: { kind: 'unilateral', stateIndex: 3 } });
    const s = watched.json!.settlement as { valueASat: number; valueBSat: number; feeSat: number };
    expect(s.valueASat + s.valueBSat + s.feeSat).toBe(80_000);
    expect(s.valueBSat + Math.floor(s.feeSat / 2)).toBe(6_000);
    const payeeView = (await ok(['payee', 'channels', '--json'])).json!.channels as { channelId: string; phase: string }[];
    expect(payeeView.find((c) => c.channelId === channelId)?.phase).toBe('closed');
  });
});
