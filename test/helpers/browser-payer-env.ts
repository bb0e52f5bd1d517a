/**
 * A browser payer against a real payee on btcd, for the end-to-end test and the bench: a private
 * regtest node, a PayeeService with a SQLite store behind its WebSocket server, headless Chromium
 * on the page of test/browser/payer-page.ts (bundled by esbuild), and a small Esplora-style
 * endpoint (tip, broadcast) over the node, the page's "configured endpoint" for its refund. The
 * page is served from 127.0.0.1 like the payee: Chromium refuses a public origin's connections
 * into the loopback. An external wallet (ExternalSigner) funds the page's PSBT.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Transaction } from 'bitcoinjs-lib';
import type { Browser, Page } from 'playwright-core';
import type { PayeeService } from '../../src/payee/payee-service.js';
import { equalBytes } from '../../src/protocol/bytes.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { corsPolicy } from '../../src/transport/cors.js';
import { FundingFinder } from '../../src/payee/funding-finder.js';
import { fundingRoute } from '../../src/transport/funding-route.js';
import { startPayeeServer, type PayeeServer } from '../../src/transport/payee-server.js';
import { Paywall } from '../../src/transport/paywall.js';
import { paywallMiddleware } from '../../src/transport/paywall-http.js';
import { bundleForBrowser, ROOT } from './browser-bundle.js';
import { launchChromium } from './chromium.js';
import { ExternalSigner, type Utxo } from './external-signer.js';
import { startFundedEnv, type RegtestEnv } from './regtest-env.js';
import { regtestPayee } from './regtest-peers.js';

const FEE_RATE = 2;
/** The payee's priced route, and its price per request. */
export const PAID_PREFIX = '/v1/paid/';
export const PRICE_SAT = 10n;

export interface BrowserPayerEnv {
  readonly env: RegtestEnv;
  readonly service: PayeeService;
  readonly server: PayeeServer;
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
    const store = openSqliteStore(path.join(dir, 'payee.db'));
    stops.push(() => store.close());
    const service = await regtestPayee(env, { store, fallbackFeeRateSatPerVb: FEE_RATE });
    service.start();
    stops.push(() => service.stop());
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
    const late: { paywall?: Paywall } = {};
    const paid = (req: http.IncomingMessage, res: http.ServerResponse): boolean => {
      if (!req.url?.startsWith(PAID_PREFIX) || !late.paywall) return false;
      paywallMiddleware(late.paywall, { priceSat: () => PRICE_SAT })(req, res, () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ path: req.url })));
      return true;
    };
    const funding = fundingRoute(new FundingFinder(env.backend));
    const server = await startPayeeServer({ service, host: '127.0.0.1', port: 0, cors: corsPolicy([pageUrl.slice(0, -1)]), extraRoutes: async (req, res) => paid(req, res) || (await funding(req, res)) });
    stops.push(() => server.close());
    late.paywall = new Paywall({ payee: service, channelUrl: server.wsUrl, network: 'regtest' });

    const browser: Browser = await launchChromium();
    stops.push(() => browser.close());
    const page = await browser.newPage();
    const signer = new ExternalSigner('paychan browser e2e wallet');
    return {
      env,
      service,
      server,
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
