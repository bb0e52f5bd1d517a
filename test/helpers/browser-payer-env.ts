/**
 * A browser payer against a real payee on btcd, for the end-to-end test and the bench: a private
 * regtest node, `paychan payee serve` on it as a process of its own (SQLite store, its priced
 * example route, `--cors-origin` for the page's origin), headless Chromium on the page of
 * test/browser/payer-page.ts (bundled by esbuild), and a small Esplora-style endpoint (tip,
 * broadcast) over the node, the page's "configured endpoint" for its refund. The page is served
 * from 127.0.0.1 like the payee: Chromium refuses a public origin's connections into the loopback.
 * An external wallet (ExternalSigner) funds the page's PSBT. Needs dist/ (npm run build).
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Transaction } from 'bitcoinjs-lib';
import type { Browser, Page } from 'playwright-core';
import type { DashboardChannel } from '../../src/app/dashboard/dashboard-snapshot.js';
import { equalBytes } from '../../src/protocol/bytes.js';
import { bundleForBrowser, ROOT } from './browser-bundle.js';
import { launchChromium } from './chromium.js';
import { freePort, startCli, stopCli } from './cli.js';
import { ExternalSigner, type Utxo } from './external-signer.js';
import { startFundedEnv, type RegtestEnv } from './regtest-env.js';

const FEE_RATE = 2;
/** The payee's priced example route (every `paychan payee serve` has it), and its price per request. */
export const PAID_PREFIX = '/v1/paid/';
export const PRICE_SAT = 10n;

export interface BrowserPayerEnv {
  readonly env: RegtestEnv;
  /** `paychan payee serve`'s HTTP base and channel WebSocket. */
  readonly server: { readonly url: string; readonly wsUrl: string };
  /** The payee's channels as its operator sees them (GET /v1/admin/dashboard with its token). */
  payeeChannels(): Promise<DashboardChannel[]>;
  readonly page: Page;
  readonly pageUrl: string;
  readonly signer: ExternalSigner;
  /** Gives the external wallet one confirmed coin. */
  fundExternalWallet(valueSat: bigint): Promise<Utxo>;
  stop(): Promise<void>;
}

export async function startBrowserPayerEnv(): Promise<BrowserPayerEnv> {
  const stops: (() => Promise<unknown> | unknown)[] = [];
  const stop = async (): Promise<void> => {
    for (const s of stops.reverse()) await Promise.resolve(s()).catch(() => undefined);
  };
  try {
    const env = await startFundedEnv();
    stops.push(() => env.stop());
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-browser-'));
    stops.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const bundle = await bundleForBrowser('test/browser/payer-page.ts');
    const html = fs.readFileSync(path.join(ROOT, 'test/browser/payer-page.html'), 'utf8');
    const pageServer = http.createServer((req, res) => {
      void serve(req, res).catch((err: unknown) => res.writeHead(500).end(String(err)));
    });
    const serve = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
      if (req.url === '/payer-page.js') return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle.code);
      if (req.url === '/esplora/blocks/tip/height') return void res.end(String((await env.backend.getTip()).height));
      if (req.url === '/esplora/blocks/tip/hash') return void res.end((await env.backend.getTip()).hash);
      if (req.url === '/esplora/tx' && req.method === 'POST') {
        let body = '';
        for await (const chunk of req) body += String(chunk);
        return void res.end(await env.backend.broadcast(body.trim()));
      }
      res.writeHead(200, { 'content-type': 'text/html' }).end(html);
    };
    await new Promise<void>((resolve) => pageServer.listen(0, '127.0.0.1', resolve));
    stops.push(() => new Promise((resolve) => pageServer.close(resolve)));
    const pageUrl = `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}/`;
    // The payee on another origin (another port): the page's paid requests need its CORS.
    const port = await freePort();
    const dataDir = path.join(dir, 'payee');
    const { node } = env;
    const payee = await startCli(
      ['payee', 'serve', '--rpc-url', node.rpcUrl, '--rpc-user', node.rpcUser, '--rpc-pass', node.rpcPass, '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`,
        '--price-sat', String(PRICE_SAT), '--fee-rate', String(FEE_RATE), '--cors-origin', pageUrl.slice(0, -1)],
      { ...process.env, PAYCHAN_HOME: dir },
      /payee listening/,
    );
    stops.push(() => stopCli(payee.child));
    const server = { url: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}/v1/ws` };
    const adminToken = fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();

    const browser: Browser = await launchChromium();
    stops.push(() => browser.close());
    // A context of its own, so a test can open a second tab on the same origin and storage.
    const page = await (await browser.newContext()).newPage();
    const signer = new ExternalSigner('paychan browser e2e wallet');
    return {
      env,
      server,
      async payeeChannels() {
        const res = await fetch(`${server.url}/v1/admin/dashboard`, { headers: { authorization: `Bearer ${adminToken}` } });
        if (!res.ok) throw new Error(`GET /v1/admin/dashboard: ${res.status} ${await res.text()}`);
        return ((await res.json()) as { channels: DashboardChannel[] }).channels;
      },
      page,
      pageUrl,
      signer,
      async fundExternalWallet(valueSat) {
        const { txHex, txid } = await env.wallet.fund([{ script: signer.script, valueSat }], FEE_RATE);
        await env.backend.broadcast(txHex);
        await env.mine(1);
        const vout = Transaction.fromHex(txHex).outs.findIndex((o) => equalBytes(o.script, signer.script) && o.value === valueSat);
        return { txid, vout, valueSat };
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
