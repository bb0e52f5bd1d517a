/**
 * The operator's dashboard in headless Chromium, against a real `paychan payee serve` on btcd
 * with channels of all three variants (spilman-v1, spilman-v2, duplex) opened and paid by payer
 * processes, as a user runs them: the page refuses a missing or wrong token, shows every channel
 * once logged in, updates its paid totals while payments are made (no reload), shows a close
 * waiting for confirmation, and keeps screenshots (desktop and phone) in test-artifacts/.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artifactPath, launchChromium } from '../helpers/chromium.js';
import { freePort, runCli, startCli, tearDownCliHome, withMining, type CliResult } from '../helpers/cli.js';

let home: string;
let env: NodeJS.ProcessEnv;
let base: string;
let payee: Awaited<ReturnType<typeof startCli>> | undefined;
let browser: Browser | undefined;

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-dashboard-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  env = { ...process.env, PAYCHAN_HOME: home, PAYCHAN_LISTEN: `127.0.0.1:${port}` };
  expect((await runCli(['regtest', 'start'], env)).code).toBe(0);
  payee = await startCli(['payee', 'serve'], env, /payee listening/);
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await tearDownCliHome(home, env, payee);
});

async function ok(args: string[]): Promise<CliResult> {
  const r = await runCli(args, env, 180_000);
  if (r.code !== 0) throw new Error(`paychan ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

const mineOne = () => ok(['regtest', 'mine', '1']);
const payerDir = (name: string) => ['--data-dir', path.join(home, name)];

/** A payer of its own (data dir), funded, with one open channel of `variant`. @returns its channel id. */
async function openChannel(name: string, variant: string, capacity: string): Promise<string> {
  const address = (await ok(['payer', 'address', ...payerDir(name)])).stdout.trim().split('\n')[0]!;
  await ok(['regtest', 'fund', address, '0.01btc']);
  const opened = await withMining(ok(['payer', 'open', `ws://${env.PAYCHAN_LISTEN}/v1/ws`, '--variant', variant, '--capacity', capacity, '--json', ...payerDir(name)]), mineOne);
  return opened.json!.channelId as string;
}

/** The satoshis the page shows as paid on the row of `channelId` (its data-sat). */
async function paidShown(page: Page, channelId: string): Promise<number> {
  return Number(await page.locator(`tr[data-channel-id="${channelId}"] td.paid`).getAttribute('data-sat'));
}

describe('the payee dashboard in a browser', () => {
  it('refuses a wrong token, shows all three variants live, and a close waiting for confirmation', async () => {
    const ids = {
      'spilman-v1': await openChannel('payer-v1', 'spilman-v1', '100000'),
      'spilman-v2': await openChannel('payer-v2', 'spilman-v2', '70000'),
      duplex: await openChannel('payer-duplex', 'duplex', '60000'),
    };
    await ok(['payer', 'pay', '10', '--count', '20', ...payerDir('payer-v1')]);
    await ok(['payer', 'pay', '2500', '--count', '4', ...payerDir('payer-v2')]); // well above a close's fee: the payee closes it
    await ok(['payer', 'pay', '1000', '--count', '3', ...payerDir('payer-duplex')]);
    const token = fs.readFileSync(path.join(home, 'payee', 'admin-token'), 'utf8').trim();

    // The JSON wants the token; the page itself holds none.
    expect((await fetch(`${base}/v1/admin/dashboard`)).status).toBe(401);
    const html = await (await fetch(`${base}/dashboard`)).text();
    expect(html).not.toContain(token);

    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => (m.type() === 'error' && !/401|Unauthorized/.test(m.text()) ? pageErrors.push(m.text()) : undefined));
    await page.goto(`${base}/dashboard`);
    await page.locator('#login').waitFor({ state: 'visible' });
    expect(await page.locator('#board').isVisible()).toBe(false);

    // A wrong token is refused and shows nothing.
    await page.fill('#token', 'ab'.repeat(24));
    await page.click('#login button[type=submit]');
    await page.locator('#login-error').waitFor({ state: 'visible' });
    expect(await page.locator('#login-error').textContent()).toMatch(/refused/);
    expect(await page.locator('#board').isVisible()).toBe(false);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);

    // The token in the fragment: taken, kept in the tab, and gone from the URL.
    await page.goto(`${base}/dashboard#token=${token}`);
    await page.locator('#board').waitFor({ state: 'visible' });
    expect(page.url()).toBe(`${base}/dashboard`);
    for (const [variant, id] of Object.entries(ids)) {
      await page.locator(`tr[data-channel-id="${id}"][data-variant="${variant}"]`).waitFor();
    }
    expect(await paidShown(page, ids['spilman-v1'])).toBe(200);
    expect(await paidShown(page, ids['spilman-v2'])).toBe(10_000);
    expect(await paidShown(page, ids.duplex)).toBe(3000);
    const v1Row = page.locator(`tr[data-channel-id="${ids['spilman-v1']}"]`);
    expect(await v1Row.locator('td[data-label=Capacity]').textContent()).toBe('100,000 sat');
    expect(await v1Row.locator('td[data-label=State]').textContent()).toBe('Open');

    // Payments while the page is open: the totals grow without a reload.
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    const paying = Promise.all([ok(['payer', 'pay', '10', '--count', '300', ...payerDir('payer-v1')]), ok(['payer', 'pay', '500', '--count', '4', ...payerDir('payer-duplex')])]);
    await page.waitForFunction((id) => Number(document.querySelector(`tr[data-channel-id="${id}"] td.paid`)?.getAttribute('data-sat')) > 200, ids['spilman-v1'], { timeout: 60_000 });
    // The channel's rate (payments in the last 10 s) shows while they are made.
    await page.waitForFunction((id) => Number(document.querySelector(`tr[data-channel-id="${id}"] td[data-label="Payments/s"]`)?.textContent) > 0, ids['spilman-v1'], { timeout: 30_000 });
    expect(Number(await page.locator('#rate').textContent())).toBeGreaterThan(0);
    await paying;
    await page.waitForFunction((id) => Number(document.querySelector(`tr[data-channel-id="${id}"] td.paid`)?.getAttribute('data-sat')) === 3200, ids['spilman-v1'], { timeout: 30_000 });
    await page.waitForFunction((id) => Number(document.querySelector(`tr[data-channel-id="${id}"] td.paid`)?.getAttribute('data-sat')) === 5000, ids.duplex, { timeout: 30_000 });
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    expect(await page.locator('#paid-total').textContent()).toBe(`${(3200 + 10_000 + 5000).toLocaleString('en-US')} sat`);

    // The v2 payer asks for the close: the payee broadcasts it, and it waits for a block.
    const closing = runCli(['payer', 'close', ...payerDir('payer-v2')], env, 180_000);
    const closeRow = page.locator('#closes tbody tr');
    await closeRow.first().waitFor({ timeout: 60_000 });
    expect(await closeRow.count()).toBe(1);
    expect(await closeRow.locator('td[data-label=Channels]').textContent()).toContain(ids['spilman-v2'].slice(0, 10));
    expect(await closeRow.locator('td[data-label="Fee bumps"]').textContent()).toBe('none');
    expect(await page.locator(`tr[data-channel-id="${ids['spilman-v2']}"] td[data-label=State]`).textContent()).toBe('Closing');
    await page.screenshot({ path: artifactPath('dashboard.png'), fullPage: true });

    // A phone: the same page, readable at 390 px (rows as cards).
    const phone = await browser!.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    await phone.goto(`${base}/dashboard#token=${token}`);
    await phone.locator(`tr[data-channel-id="${ids.duplex}"]`).waitFor();
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await phone.screenshot({ path: artifactPath('dashboard-phone.png'), fullPage: true });
    await phone.close();

    // A block confirms the close: it leaves the waiting list, its txid stays on the channel.
    await mineOne();
    const closed = await withMining(closing, mineOne);
    expect(closed.code, closed.stderr).toBe(0);
    await page.locator('#no-closes').waitFor({ state: 'visible', timeout: 30_000 });
    const v2Row = page.locator(`tr[data-channel-id="${ids['spilman-v2']}"]`);
    await page.waitForFunction((id) => document.querySelector(`tr[data-channel-id="${id}"] td[data-label=State]`)?.textContent === 'Closed', ids['spilman-v2'], { timeout: 30_000 });
    expect(await v2Row.locator('td[data-label="Close txid"]').getAttribute('title')).toMatch(/^[0-9a-f]{64}$/);

    // Logging out forgets the token.
    await page.click('#logout');
    await page.locator('#login').waitFor({ state: 'visible' });
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(pageErrors).toEqual([]);
    await page.close();
  });
});
