/**
 * examples/page-that-pays.js (the README's "A page that pays"), run as written in headless
 * Chromium: bundled by esbuild with `paychan/payer` resolved to this checkout's src/payer.ts,
 * served from its own loopback origin, against `paychan payee serve --cors-origin <that origin>`
 * on the CLI's regtest node (the port 8420 swapped for a free one). `paychan regtest fund` pays
 * the address the page shows; the page learns its funding from the payee, opens, and pays for a
 * request across origins.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/browser-bundle.js';
import { launchChromium } from '../helpers/chromium.js';
import { freePort, runCli, startCli, tearDownCliHome } from '../helpers/cli.js';
import { waitUntil } from '../helpers/wait.js';

const EXAMPLE = fs.readFileSync(path.join(ROOT, 'examples/page-that-pays.js'), 'utf8');
let home: string;
let env: NodeJS.ProcessEnv;
let payee: Awaited<ReturnType<typeof startCli>> | undefined;
let browser: Browser | undefined;
let pageServer: http.Server | undefined;

async function cli(...args: string[]): Promise<string> {
  const r = await runCli(args, env);
  if (r.code !== 0) throw new Error(`paychan ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-page-example-'));
  env = { ...process.env, PAYCHAN_HOME: home };
  await cli('regtest', 'start');
});
afterAll(async () => {
  await browser?.close();
  pageServer?.close();
  await tearDownCliHome(home, env, payee);
});

describe('README: a page that pays', () => {
  it('examples/page-that-pays.js funds through its address and pays a request across origins', async () => {
    expect(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')).toContain(EXAMPLE);
    const payeePort = await freePort();
    const source = EXAMPLE.replace(/8420/g, String(payeePort));
    const bundle = await build({
      stdin: { contents: source, resolveDir: ROOT, loader: 'js', sourcefile: 'page-that-pays.js' },
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      write: false,
      alias: { 'paychan/payer': path.join(ROOT, 'src/payer.ts') },
      logLevel: 'silent',
    });
    const code = bundle.outputFiles[0]!.text;
    pageServer = http.createServer((req, res) =>
      req.url === '/page.js' ? res.writeHead(200, { 'content-type': 'text/javascript' }).end(code) : res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><body>…</body><script type="module" src="/page.js"></script>'),
    );
    await new Promise<void>((resolve) => pageServer!.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}`;
    payee = await startCli(['payee', 'serve', '--listen', `127.0.0.1:${payeePort}`, '--price-sat', '10', '--cors-origin', origin], env, /payee listening/);

    browser = await launchChromium();
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(err.message));
    await page.goto(`${origin}/`);
    await page.waitForSelector('#uri', { timeout: 30_000 });
    const address = /^bitcoin:([a-z0-9]+)\?/.exec((await page.textContent('#uri'))!)![1]!;
    await cli('regtest', 'fund', address, '100000');
    const body = async (): Promise<string> => (await page.textContent('body')) ?? '';
    // Blocks keep coming: the payee counts the funding's confirmations at the next one.
    await waitUntil(async () => (await body()).startsWith('200 ') || problems.length > 0 || (await cli('regtest', 'mine', '1'), false), 'the page to pay its request', 90_000);
    expect(problems).toEqual([]);
    expect(await body()).toMatch(/^200 \{"ok":true,"path":"\/v1\/paid\/hello","priceSat":10,"served":1\} \(paid 10 sat in all\)$/);
  });
});
