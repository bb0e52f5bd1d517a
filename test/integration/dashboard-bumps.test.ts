/**
 * The dashboard's record of a close's fee bumps, against btcd: a payee closes a paid channel at
 * 2 sat/vB, then replaces the close at 5 sat/vB (BIP125, the node takes the replacement);
 * GET /v1/admin/dashboard shows the close waiting with both versions, then, once a block
 * confirms it, the channel Closed with the replacement's txid and no close waiting.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DashboardSnapshot } from '../../src/app/dashboard/dashboard-snapshot.js';
import { adminTokenFile } from '../../src/app/files.js';
import { createPayee, createPayer, type Payee } from '../../src/index.js';
import { WalletKeys } from '../../src/wallet/keys.js';
import { withMining } from '../helpers/cli.js';
import { startFundedEnv, type RegtestEnv } from '../helpers/regtest-env.js';
import { waitUntil } from '../helpers/wait.js';

let env: RegtestEnv;
let dir: string;
let payee: Payee;
const payoutAddress = WalletKeys.fromSeed(new Uint8Array(32).fill(9), 'regtest').address('receive', 0).address;

beforeAll(async () => {
  env = await startFundedEnv();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-dashboard-bumps-'));
  payee = await createPayee({ dataDir: path.join(dir, 'payee'), node: env.backend, listen: '127.0.0.1:0', payoutAddress });
});

afterAll(async () => {
  await payee?.close();
  await env?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function snapshot(token: string): Promise<DashboardSnapshot> {
  const res = await fetch(`${payee.url}/v1/admin/dashboard`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as DashboardSnapshot;
}

/** Polls the dashboard (it rebuilds at most once a second) until `check` holds; returns that snapshot. */
async function dashboardUntil(token: string, what: string, check: (s: DashboardSnapshot) => boolean): Promise<DashboardSnapshot> {
  let last: DashboardSnapshot | undefined;
  await waitUntil(async () => check((last = await snapshot(token))), `the dashboard to show ${what}`);
  return last!;
}

describe('the dashboard on a fee-bumped close', () => {
  it('shows both versions while the close waits, then the confirmed one', async () => {
    const payerDir = path.join(dir, 'payer');
    const funded = await createPayer({ dataDir: payerDir, node: env.backend });
    try {
      await env.wallet.send(funded.address(), 200_000n, 2);
      await env.node.mine(1);
    } finally {
      await funded.close();
    }
    // Opened again, as a new run would: its wallet syncs the coin on start.
    const payer = await createPayer({ dataDir: payerDir, node: env.backend, capacitySat: 60_000 });
    let channelId: string;
    try {
      const client = await withMining(payer.channelFor(payee.wsUrl), () => env.node.mine(1));
      channelId = client.channel.id;
      for (let i = 0; i < 10; i++) await client.pay(2_000n);
    } finally {
      await payer.close();
    }
    const token = fs.readFileSync(adminTokenFile(path.join(dir, 'payee')), 'utf8').trim();
    expect((await dashboardUntil(token, 'the channel', (s) => s.channels.some((c) => c.channelId === channelId))).channels[0]).toMatchObject({ channelId, variant: 'spilman-v1', state: 'Open', capacitySat: 60_000, paidSat: 20_000 });

    const first = await payee.app.service.close(channelId, 2);
    const waiting = await dashboardUntil(token, 'the close waiting', (s) => s.closes.length === 1);
    expect(waiting.closes[0]).toMatchObject({ txid: first.txid, channelIds: [channelId], feeRateSatPerVb: 2, bumps: 0 });

    const bumped = await payee.app.service.close(channelId, 5);
    expect(bumped.txid).not.toBe(first.txid);
    const after = await dashboardUntil(token, 'the replacement', (s) => s.closes[0]?.txid === bumped.txid);
    expect(after.closes).toEqual([
      expect.objectContaining({
        txid: bumped.txid,
        feeRateSatPerVb: 5,
        feeSat: Number(bumped.feeSat),
        bumps: 1,
        versions: [expect.objectContaining({ txid: first.txid, feeRateSatPerVb: 2, feeSat: Number(first.feeSat) }), expect.objectContaining({ txid: bumped.txid, feeRateSatPerVb: 5 })],
      }),
    ]);
    expect(after.totals.closesWaiting).toBe(1);
    expect(after.channels.find((c) => c.channelId === channelId)).toMatchObject({ state: 'Closing', closeTxid: bumped.txid });

    await env.node.mine(1);
    const done = await dashboardUntil(token, 'the channel closed', (s) => s.channels.find((c) => c.channelId === channelId)?.state === 'Closed');
    expect(done.closes).toEqual([]);
    expect(done.channels.find((c) => c.channelId === channelId)?.closeTxid).toBe(bumped.txid);
  });
});
