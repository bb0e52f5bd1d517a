/**
 * `paychan payer open --psbt` then `--signed-psbt FILE`, as a user runs them: separate processes
 * (so the second finishes an opening the first left pending on disk), a payee process, and an
 * external wallet (bitcoinjs-lib with its own key) funding and signing the printed PSBT.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Transaction } from 'bitcoinjs-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChainBackend } from '../../src/chain/backend.js';
import { connectBackend } from '../../src/chain/connect.js';
import { equalBytes } from '../../src/protocol/bytes.js';
import { freePort, runCli, startCli, tearDownCliHome, withMining, type CliResult } from '../helpers/cli.js';
import { ExternalSigner, type Utxo } from '../helpers/external-signer.js';

let home: string;
let env: NodeJS.ProcessEnv;
let port: number;
let backend: ChainBackend | undefined;
let payee: Awaited<ReturnType<typeof startCli>> | undefined;
const signer = new ExternalSigner('paychan psbt cli test wallet');

async function ok(args: string[]): Promise<CliResult> {
  const r = await runCli(args, env);
  if (r.code !== 0) throw new Error(`paychan ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-psbt-cli-'));
  env = { ...process.env, PAYCHAN_HOME: home };
  port = await freePort();
  const node = (await ok(['regtest', 'start', '--json'])).json as { rpcUrl: string; rpcUser: string; rpcPass: string };
  backend = await connectBackend(node.rpcUrl, { user: node.rpcUser, pass: node.rpcPass, network: 'regtest' });
  payee = await startCli(['payee', 'serve', '--listen', `127.0.0.1:${port}`], env, /payee listening/);
});

afterAll(async () => {
  await backend?.close();
  await tearDownCliHome(home, env, payee);
});

/** A confirmed coin for the external wallet, from the regtest faucet. */
async function walletCoin(): Promise<Utxo> {
  const funded = (await ok(['regtest', 'fund', signer.address, '0.002btc', '--json'])).json as { txid: string };
  const fundTx = Transaction.fromHex((await backend!.getTransaction(funded.txid))!.hex);
  const vout = fundTx.outs.findIndex((o) => equalBytes(o.script, signer.script));
  return { txid: funded.txid, vout, valueSat: fundTx.outs[vout]!.value };
}

describe('paychan payer open --psbt / --signed-psbt', () => {
  it('spilman-v1: prints the PSBT, refuses an unsigned one, gets the refund for the funded one, opens with it signed, pays', async () => {
    const utxo = await walletCoin();
    const url = `ws://127.0.0.1:${port}/v1/ws`;
    const proposed = (await ok(['payer', 'open', url, '--capacity', '100000', '--variant', 'spilman-v1', '--psbt', '--json'])).json!;
    expect(proposed).toMatchObject({ amountSat: 100000, variant: 'spilman-v1', state: 'Funding', bip21: null, next: 'paychan payer open --signed-psbt FILE' });
    expect(proposed.channelAddress).toMatch(/^bcrt1q/);

    // The wallet funded it but did not sign: refused, and the opening stays pending.
    const unsignedFile = path.join(home, 'unsigned.psbt');
    const funded = signer.fundAndSign(String(proposed.psbt), utxo, 500n, { sign: false });
    fs.writeFileSync(unsignedFile, funded.toBase64());
    const refused = await runCli(['payer', 'open', '--signed-psbt', unsignedFile], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/PSBT_NOT_SIGNED: input 0 of the PSBT is not signed.*still pending/);

    // v1's safest order: the payee signs the refund for this funding before the wallet signs it.
    const refundFirst = await ok(['payer', 'open', '--funded-psbt', unsignedFile, '--json']);
    expect(refundFirst.json).toMatchObject({ state: 'AwaitingFundingSignature', next: 'paychan payer open --signed-psbt FILE' });

    const signed = funded.signAllInputs(signer.signer).finalizeAllInputs();
    expect(refundFirst.json!.fundingTxid).toBe(signed.extractTransaction(true).getId());
    const signedFile = path.join(home, 'signed.psbt');
    fs.writeFileSync(signedFile, signed.toBuffer()); // the binary form, as wallets save .psbt files
    const opened = await withMining(ok(['payer', 'open', '--signed-psbt', signedFile, '--json']), () => ok(['regtest', 'mine', '1']));
    expect(opened.json).toMatchObject({ state: 'Open', capacitySat: 100000, fundingTxid: signed.extractTransaction(true).getId() });

    const paid = await ok(['payer', 'pay', '10', '--count', '5']);
    expect(paid.stdout).toMatch(/50 sat acknowledged in total/);
    // Nothing is pending any more.
    const again = await runCli(['payer', 'open', '--signed-psbt', signedFile], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no channel waits for an external funding/);
  });

  it('spilman-v2: --psbt then --signed-psbt, in text mode: the PSBT alone on stdout', async () => {
    const utxo = await walletCoin();
    const url = `ws://127.0.0.1:${port}/v1/ws`;
    const proposed = await ok(['payer', 'open', url, '--capacity', '50000', '--variant', 'spilman-v2', '--psbt']);
    const psbt = proposed.stdout.trim();
    expect(psbt).toMatch(/^cHNidP8B[A-Za-z0-9+/=]+$/); // base64 of "psbt\xff", one line
    expect(proposed.stderr).toMatch(/pay exactly 50000 sat to bcrt1q/);
    expect(proposed.stderr).toMatch(/Or pay bitcoin:bcrt1q\w+\?amount=0\.0005&label=/);
    const signedFile = path.join(home, 'signed-v2.psbt');
    fs.writeFileSync(signedFile, signer.fundAndSign(psbt, utxo, 500n).toBase64());
    const opened = await withMining(ok(['payer', 'open', '--signed-psbt', signedFile]), () => ok(['regtest', 'mine', '1']));
    expect(opened.stdout).toMatch(/channel [0-9a-f]{64}:\d+ is open/);
    expect((await ok(['payer', 'pay', '7'])).stdout).toMatch(/7 sat acknowledged in total/);
  });

  it.each([
    [['payer', 'open', '--psbt', '--signed-psbt', 'x.psbt'], /one at a time/],
    [['payer', 'open', 'ws://127.0.0.1:1/v1/ws', '--psbt'], /usage: paychan payer open URL --capacity SAT --psbt/],
    [['payer', 'open', 'ws://127.0.0.1:1/v1/ws', '--capacity', '1000', '--signed-psbt', 'x.psbt'], /usage: paychan payer open --signed-psbt FILE/],
    [['payer', 'open', 'ws://127.0.0.1:1/v1/ws', '--capacity', '1000', '--variant', 'duplex', '--psbt'], /a duplex channel is funded by both sides/],
    [['payer', 'open', '--signed-psbt', '/nonexistent/signed.psbt'], /--signed-psbt \/nonexistent\/signed\.psbt: ENOENT/],
  ])('bad input %j: exit 2, nothing touched', async (args, expected) => {
    const r = await runCli(args, { ...process.env, PAYCHAN_HOME: '/nonexistent-paychan-home' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(expected);
  });

  it('explains itself: open --psbt --help', async () => {
    const r = await runCli(['payer', 'open', '--psbt', '--help'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/adds its own inputs and change output/);
    expect(r.stdout).toMatch(/Do not broadcast it/);
    expect(r.stdout).toMatch(/--funded-psbt FILE/);
    expect(r.stdout).toMatch(/paychan payer open --signed-psbt signed\.psbt/);
  });
});
