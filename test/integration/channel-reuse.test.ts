/**
 * createPayer's channel reuse, across runs (a data dir closed and opened again), on btcd: a
 * stored channel is reused only if it can pay the next price and is not within the payer's
 * expiry margin, else a new one is opened; a stored channel whose funding has not confirmed
 * (its opener was killed) is waited for with a bound and a clear error, then reused once it
 * confirms. And the library's PSBT opening (what `payer open --psbt/--signed-psbt` does), with
 * a separate signer holding keys paychan never sees, after which the paying fetch pays on it.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Transaction } from 'bitcoinjs-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayee, createPayer, type Payee, type Payer } from '../../src/index.js';
import { payerPolicy } from '../../src/protocol/policy.js';
import { equalBytes } from '../../src/protocol/bytes.js';
import { startCli, withMining } from '../helpers/cli.js';
import { ExternalSigner } from '../helpers/external-signer.js';
import { waitUntil } from '../helpers/wait.js';
import { startFundedEnv, type RegtestEnv } from '../helpers/regtest-env.js';

const PRICE = 1_000;
let env: RegtestEnv;
let dir: string;
let payee: Payee;
let server: http.Server;
let route: string;

beforeAll(async () => {
  env = await startFundedEnv();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-reuse-'));
  payee = await createPayee({ dataDir: path.join(dir, 'payee'), node: env.backend, listen: '127.0.0.1:0' });
  const priced = payee.paywall(PRICE);
  server = http.createServer((req, res) => priced(req, res, () => res.end('paid')));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  route = `http://127.0.0.1:${(server.address() as AddressInfo).port}/thing`;
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await payee?.close();
  await env?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** One run of a paying program: a payer on `name`'s data dir, closed afterwards. */
async function run<T>(name: string, options: Parameters<typeof createPayer>[0], body: (payer: Payer) => Promise<T>): Promise<T> {
  const payer = await createPayer({ dataDir: path.join(dir, name), node: env.backend, ...options });
  try {
    return await body(payer);
  } finally {
    await payer.close();
  }
}

async function fund(name: string, sat: bigint): Promise<void> {
  const address = await run(name, {}, async (p) => p.address());
  await env.wallet.send(address, sat, 2);
  await env.mine(1);
}

const mining = <T>(p: Promise<T>) => withMining(p, () => env.node.mine(1));
const channelIds = () => payee.channels().map((c) => c.channelId);

describe('channelFor and the paying fetch reuse a stored channel only when it can still pay', () => {
  it('passes over a channel too used up for the next price and opens another', async () => {
    await fund('used-up', 100_000n);
    const first = await run('used-up', { capacitySat: 10_000 }, async (p) => {
      const client = await mining(p.channelFor(payee.wsUrl));
      await client.pay(9_500n); // 500 sat left: not enough for one request at 1,000
      return client.channel.id;
    });
    // A new run that can pay 500 reuses it; the fetch, due 1,000, cannot and opens another.
    const second = await run('used-up', { capacitySat: 10_000 }, async (p) => {
      expect((await p.channelFor(payee.wsUrl, 500)).channel.id).toBe(first);
      const res = await mining(p.fetch(route));
      expect(res.status).toBe(200);
      return (await p.channelFor(payee.wsUrl, PRICE)).channel.id;
    });
    expect(second).not.toBe(first);
    expect(payee.channels().find((c) => c.channelId === second)?.paidSat).toBe(BigInt(PRICE));
    // And the next run pays on the new one, opening nothing.
    const before = channelIds().length;
    await run('used-up', {}, async (p) => expect((await p.fetch(route)).status).toBe(200));
    expect(channelIds()).toHaveLength(before);
    expect(payee.channels().find((c) => c.channelId === second)?.paidSat).toBe(BigInt(2 * PRICE));
  });

  it("passes over a channel within the payer's expiry margin (the payee closes by then) and opens another", async () => {
    await fund('expiring', 100_000n);
    const short = await run('expiring', { capacitySat: 20_000, expiryBlocks: 12 }, async (p) => (await mining(p.channelFor(payee.wsUrl))).channel);
    const margin = payerPolicy({ network: 'regtest' }).expiryMarginBlocks;
    // One block before the margin: still reused.
    await env.mineTo(short.expiryHeight - margin - 1);
    expect(await run('expiring', {}, async (p) => (await p.channelFor(payee.wsUrl)).channel.id)).toBe(short.id);
    await env.mineTo(short.expiryHeight - margin);
    const next = await run('expiring', { capacitySat: 20_000 }, async (p) => (await mining(p.channelFor(payee.wsUrl))).channel.id);
    expect(next).not.toBe(short.id);
  });

  it('waits a bounded time for a stored channel whose funding has not confirmed, says why, and reuses it once it has', async () => {
    await fund('unconfirmed', 100_000n);
    // A run that opened a channel and was killed once its funding was out, before it confirmed.
    const node = env.node;
    const opener = await startCli(
      ['payer', 'open', payee.wsUrl, '--capacity', '20000', '--data-dir', path.join(dir, 'unconfirmed'), '--rpc-url', node.rpcUrl, '--rpc-user', node.rpcUser, '--rpc-pass', node.rpcPass],
      { ...process.env, PAYCHAN_HOME: path.join(dir, 'home') },
      /funding ([0-9a-f]{64}) broadcast by the payee/,
    );
    const fundingTxid = /funding ([0-9a-f]{64}) broadcast/.exec(opener.output())![1]!;
    const exited = new Promise((r) => opener.child.once('exit', r));
    opener.child.kill('SIGKILL');
    await exited;
    await waitUntil(async () => (await env.backend.getTransaction(fundingTxid)) !== null, 'the funding in the mempool');

    const started = Date.now();
    const refused = await run('unconfirmed', { awaitOpenTimeoutMs: 1_500 }, (p) => p.channelFor(payee.wsUrl).then(
      () => null,
      (err: unknown) => err as Error & { code?: string },
    ));
    expect(refused?.code).toBe('CHANNEL_NOT_READY');
    expect(refused?.message).toMatch(new RegExp(`^the channel ${fundingTxid}:\\d+ to ${payee.wsUrl} still waits for its funding to confirm after 1.5 s`));
    expect(Date.now() - started).toBeLessThan(60_000); // bounded: it did not wait for a block
    const opened = channelIds().length;

    await env.mine(1);
    const reused = await run('unconfirmed', {}, async (p) => (await p.channelFor(payee.wsUrl)).channel.id);
    expect(reused.split(':')[0]).toBe(fundingTxid);
    expect(channelIds()).toHaveLength(opened);
  });
});

describe('createPayer funds a channel from an external wallet (PSBT)', () => {
  it.each(['spilman-v1', 'spilman-v2'] as const)('%s: proposes, takes the signed PSBT back, opens, and the paying fetch pays on it', async (variant) => {
    const signer = new ExternalSigner(`paychan createPayer psbt ${variant}`);
    const { txHex, txid } = await env.wallet.fund([{ script: signer.script, valueSat: 500_000n }], 2);
    await env.backend.broadcast(txHex);
    await env.mine(1);
    const utxo = { txid, vout: Transaction.fromHex(txHex).outs.findIndex((o) => equalBytes(o.script, signer.script)), valueSat: 500_000n };
    const name = `psbt-${variant}`;
    // Step 1 in one run; the wallet signs (paychan never sees its key); step 2 in the next run.
    const request = await run(name, {}, (p) => p.proposeExternalFunding(payee.wsUrl, { capacitySat: 40_000, variant }));
    expect(request).toMatchObject({ variant, amountSat: 40_000n });
    let signed = signer.fundAndSign(request.psbt, utxo, 1_000n);
    if (variant === 'spilman-v1') {
      // The safest order: the payee's refund for the funded PSBT before the wallet signs it.
      const unsigned = signer.fundAndSign(request.psbt, utxo, 1_000n, { sign: false });
      const fundingTxid = await run(name, {}, (p) => p.refundBeforeSigning(unsigned.toBase64()));
      signed = signer.fundAndSign(request.psbt, utxo, 1_000n);
      expect(signed.extractTransaction(true).getId()).toBe(fundingTxid);
    }
    const before = channelIds().length;
    await run(name, {}, async (p) => {
      const client = await mining(p.finishExternalFunding(signed.toBase64()));
      expect(client.channel.funding.txid).toBe(signed.extractTransaction(true).getId());
      expect((await p.fetch(route)).status).toBe(200);
    });
    expect(channelIds()).toHaveLength(before + 1);
    // A later run pays on the same channel: it was stored like any other.
    await run(name, {}, async (p) => expect((await p.fetch(route)).status).toBe(200));
    expect(channelIds()).toHaveLength(before + 1);
    const row = payee.channels().find((c) => c.channelId.startsWith(signed.extractTransaction(true).getId()));
    expect(row).toMatchObject({ variant, capacitySat: 40_000n, paidSat: BigInt(2 * PRICE) });
  });
});
