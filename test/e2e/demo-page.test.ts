/**
 * The demo page served by `paychan payee serve` (GET /demo), in headless Chromium, against the
 * CLI's own regtest node, all as a user runs them: the page opens a channel, `paychan regtest
 * fund` pays its BIP21 address, the page learns the funding from the payee and opens; a paid
 * request and a metered stream pay; a reload continues from IndexedDB with what it had; the page
 * closes the channel and the payee's close is at the very total the page shows.
 * Needs dist/ (bin/paychan.js runs it) with its demo bundle: npm run build.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, runCli, startCli, tearDownCliHome } from '../helpers/cli.js';
import { artifactPath, launchChromium } from '../helpers/chromium.js';
import { waitUntil } from '../helpers/wait.js';

let home: string;
let env: NodeJS.ProcessEnv;
let payee: Awaited<ReturnType<typeof startCli>> | undefined;
let browser: Browser | undefined;

async function cli(...args: string[]): Promise<string> {
  const r = await runCli(args, env);
  if (r.code !== 0) throw new Error(`paychan ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  if (!fs.existsSync('dist/web/demo-page.bundle.js')) throw new Error('dist/ is not built: npm run build first');
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-demo-page-'));
  env = { ...process.env, PAYCHAN_HOME: home };
  await cli('regtest', 'start');
});
afterAll(async () => {
  await browser?.close();
  await tearDownCliHome(home, env, payee);
});

describe('the demo page of paychan payee serve', () => {
  it('funds through its address, pays per request and per second, survives a reload, and the payee closes at the page total', async () => {
    const port = await freePort();
    payee = await startCli(['payee', 'serve', '--listen', `127.0.0.1:${port}`, '--price-sat', '10'], env, /payee listening/);
    // The page's change and refund go to a wallet of the user's: here, the CLI payer's.
    const refundAddress = (await cli('payer', 'address')).trim().split('\n')[0]!;
    browser = await launchChromium();
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(err.message));
    await page.goto(`http://127.0.0.1:${port}/demo?stream=1000`);
    await page.waitForSelector('#fund:not(.hidden)');
    await page.fill('#capacity-input', '100000');
    await page.fill('#refund-address', refundAddress);
    await page.click('#open');
    await page.waitForSelector('#funding:not(.hidden)');
    const bip21 = (await page.textContent('#bip21'))!;
    expect(await page.locator('#qr svg').count()).toBe(1);
    const address = /^bitcoin:([a-z0-9]+)\?amount=0\.001(&|$)/.exec(bip21)![1]!;
    await cli('regtest', 'fund', address, '100000');
    // Blocks keep coming: the payee counts the funding's confirmations at the next one.
    await waitUntil(async () => (await page.isVisible('#pay')) || (await cli('regtest', 'mine', '1'), false), 'the page to open its channel', 60_000);
    expect(await page.textContent('#state')).toBe('Open');

    await page.click('#request');
    await page.waitForFunction(() => document.getElementById('requests')!.textContent === '1');
    expect(await page.textContent('#answer')).toMatch(/^200 .*"priceSat":10/);
    await page.click('#stream-toggle');
    const paid = async (): Promise<number> => Number((await page.textContent('#paid'))!.split(' ')[0]);
    // Enough paid that the payee's close pays for itself (its fee comes from the payee's share).
    await waitUntil(async () => (await paid()) >= 2010, 'two seconds of the stream paid');
    await page.click('#stream-toggle');
    await page.screenshot({ path: artifactPath('demo-page.png') });
    const before = await paid();

    await page.reload();
    await page.waitForSelector('#pay:not(.hidden)');
    await waitUntil(async () => (await paid()) >= before, 'the restored channel to be re-acknowledged');
    const total = await paid();
    expect(await page.textContent('#error')).toBe('');
    expect(problems).toEqual([]);

    await page.click('#close');
    await waitUntil(async () => (await page.textContent('#state')) === 'Closed', 'the payee to close', 60_000);
    expect(await page.textContent('#error')).toBe('');
    const channels = JSON.parse(await cli('payee', 'channels', '--listen', `127.0.0.1:${port}`, '--json')) as { channels: { paidSat: number; state: string }[] };
    expect(channels.channels.map((c) => [c.state, c.paidSat])).toEqual([['Closing', Number(total)]]);
  });
});
