/**
 * `paychan demo --browser` as a user runs it: it starts its node and the payee and prints the
 * demo page's URL; the page (headless Chromium) asks for funding; its bitcoin: URI pasted on the
 * demo's stdin is paid from the demo's faucet; the page's channel opens. Closing stdin ends the
 * demo, which stops the payee and the node.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Browser } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, freePort } from '../helpers/cli.js';
import { launchChromium } from '../helpers/chromium.js';
import { waitUntil } from '../helpers/wait.js';

let demo: ChildProcess | undefined;
let browser: Browser | undefined;
afterAll(async () => {
  await browser?.close();
  if (demo && demo.exitCode === null) {
    const exited = new Promise((resolve) => demo!.once('exit', resolve));
    demo.kill('SIGINT');
    await exited;
  }
});

describe('paychan demo --browser', () => {
  it('prints the page, pays its funding URI from stdin, the page opens; stdin closed ends it', async () => {
    const port = await freePort();
    demo = spawn(process.execPath, [BIN, 'demo', '--browser', '--listen', `127.0.0.1:${port}`], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    demo.stdout!.on('data', (d: Buffer) => (output += String(d)));
    demo.stderr!.on('data', (d: Buffer) => (output += String(d)));
    await waitUntil(() => output.includes('paste the page'), 'the demo to be ready', 180_000);
    expect(output).toContain(`open http://127.0.0.1:${port}/demo in a browser`);

    browser = await launchChromium();
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/demo`);
    await page.waitForSelector('#fund:not(.hidden)');
    await page.fill('#refund-address', 'bcrt1qpqyxar9tp0kcdjehzmq3sm099cawuwhmjauqjk');
    await page.click('#open');
    await page.waitForSelector('#funding:not(.hidden)');
    demo.stdin!.write(`${await page.textContent('#bip21')}\n`);
    await page.waitForSelector('#pay:not(.hidden)', { timeout: 60_000 });
    expect(await page.textContent('#state')).toBe('Open');
    expect(output).toMatch(/paid 100000 sat to bcrt1/);

    const exited = new Promise<number | null>((resolve) => demo!.once('exit', resolve));
    demo.stdin!.end();
    expect(await exited).toBe(0);
  }, 300_000);
});
