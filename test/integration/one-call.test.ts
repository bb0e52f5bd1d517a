/**
 * createPayee and createPayer, as an application uses them: a payee from a node URL with its
 * credentials and a payout address string, an Express route priced in one line, a paying
 * client whose second run (a new process's worth: the data dir closed and opened again) pays
 * on the channel the first run opened instead of funding another on chain.
 */
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayee, createPayer, type Payee } from '../../src/index.js';
import { WalletKeys } from '../../src/wallet/keys.js';
import { withMining } from '../helpers/cli.js';
import { startFundedEnv, type RegtestEnv } from '../helpers/regtest-env.js';

let env: RegtestEnv;
let dir: string;
let nodeUrl: string;
let payee: Payee;
let server: Server;
let joke: string;
const payoutAddress = WalletKeys.fromSeed(new Uint8Array(32).fill(7), 'regtest').address('receive', 0).address;

beforeAll(async () => {
  env = await startFundedEnv();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-one-call-'));
  const url = new URL(env.node.rpcUrl);
  url.username = env.node.rpcUser;
  url.password = env.node.rpcPass;
  nodeUrl = url.toString();
  payee = await createPayee({ dataDir: path.join(dir, 'payee'), node: nodeUrl, listen: '127.0.0.1:0', payoutAddress });
  const app = express();
  app.get('/joke', payee.paywall(7), (_req, res) => {
    res.json({ joke: 'a satoshi walks into a bar' });
  });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  joke = `http://127.0.0.1:${(server.address() as AddressInfo).port}/joke`;
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await payee?.close();
  await env?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const paidSat = () => payee.channels().reduce((sum, c) => sum + c.paidSat, 0n);

describe('createPayee / createPayer', () => {
  it('pays out to the address string given', () => {
    expect(payee.payoutAddress).toBe(payoutAddress);
    expect(payee.wsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/v1\/ws$/);
  });

  it("serves no example priced route of its own (the CLI's /v1/paid/*): the application prices its routes", async () => {
    expect((await fetch(`${payee.url}/v1/paid/hello`)).status).toBe(404);
  });

  it('refuses a payout address of another network, and a price below 1 sat', async () => {
    await expect(createPayee({ dataDir: path.join(dir, 'other'), node: env.backend, listen: '127.0.0.1:0', payoutAddress: 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq' })).rejects.toThrow(TypeError);
    expect(() => payee.paywall(0)).toThrow(RangeError);
  });

  it('a paying fetch opens one channel; a second run reuses it, with no new funding on chain', async () => {
    const payerDir = path.join(dir, 'payer');
    const first = await createPayer({ dataDir: payerDir, node: nodeUrl, capacitySat: 50_000 });
    try {
      await env.wallet.send(first.address(), 200_000n, 2);
      await env.node.mine(1);
    } finally {
      await first.close();
    }

    const run = await createPayer({ dataDir: payerDir, node: nodeUrl, capacitySat: 50_000 });
    try {
      const res = await withMining(run.fetch(joke), () => env.node.mine(1));
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ joke: 'a satoshi walks into a bar' });
      for (let i = 0; i < 2; i++) expect((await run.fetch(joke)).status).toBe(200);
    } finally {
      await run.close();
    }
    expect(payee.channels()).toHaveLength(1);
    expect(paidSat()).toBe(21n);
    const balance = (await openBalance(payerDir)).confirmedSat;

    // No mining now: a run that opened a channel would wait for its funding to confirm.
    const again = await createPayer({ dataDir: payerDir, node: nodeUrl });
    try {
      for (let i = 0; i < 3; i++) expect((await again.fetch(joke)).status).toBe(200);
      expect(again.wallet.balance().confirmedSat).toBe(balance);
      const client = await again.channelFor(payee.wsUrl);
      expect(client.channel.id).toBe(payee.channels()[0]!.channelId);
    } finally {
      await again.close();
    }
    expect(payee.channels()).toHaveLength(1);
    expect(paidSat()).toBe(42n);
  });
});

async function openBalance(dataDir: string) {
  const p = await createPayer({ dataDir, node: env.backend });
  try {
    return p.wallet.balance();
  } finally {
    await p.close();
  }
}
