/**
 * The payer in a page, end to end: headless Chromium runs paychan/payer's BrowserPayer (noble
 * secp256k1, IndexedDB store, browser WebSocket link) against `paychan payee serve` (a process of
 * its own, SQLite store) on a private btcd. The page asks for funding (BIP21 + QR code + unsigned PSBT); the node's coins
 * pay the channel address and the page learns the funding from the payee (GET /v1/funding/:script);
 * the channel opens; the page makes 1,000 payments, is reloaded
 * mid-stream and continues from IndexedDB with no acknowledged payment lost, makes 50 paid
 * requests to the payee's paywall on another origin (CORS); then the payee
 * closes and the node's close transaction pays the page's change exactly: capacity minus what the
 * page recorded as acknowledged. A screenshot of the page is kept (test-artifacts/). A second
 * channel is funded the other way: an external wallet signs the page's PSBT.
 * Needs dist/ (bin/paychan.js runs it): npm run build.
 */
import { address as baddress, Transaction } from 'bitcoinjs-lib';
import { bitcoinjsNetwork } from '../../src/protocol/network.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { equalBytes, toHex } from '../../src/protocol/bytes.js';
import { PAID_PREFIX, PRICE_SAT, startBrowserPayerEnv, type BrowserPayerEnv } from '../helpers/browser-payer-env.js';
import { artifactPath } from '../helpers/chromium.js';
import { waitUntil } from '../helpers/wait.js';

const CAPACITY = 1_000_000n;
const PAYMENTS = 1000;

type PageApi = {
  open(wsUrl: string, payoutScriptHex: string, storeName?: string): Promise<string | null>;
  close(): Promise<void>;
  requestFunding(capacitySat: bigint, expiryBlocks: number): Promise<{ bip21: string; address: string; amountSat: bigint; psbt: string; qrSvg: string }>;
  fundWithSigned(signed: string): Promise<string>;
  fundFromAddress(): Promise<string>;
  waitUntilOpen(): Promise<void>;
  payMany(count: number, amountSat: bigint): Promise<{ totalSat: bigint; ms: number }>;
  startPaying(count: number, amountSat: bigint): void;
  acked(): bigint;
  fetchPaid(url: string, count: number): Promise<number[]>;
  state(): { type: string | null; paidSat: bigint };
  requestClose(): void;
  refundKit(): { privateKey: string; witnessScript: string; expiryHeight: number; fundingOutpoint: string | null };
};
let b: BrowserPayerEnv;
/** Runs `fn(api, arg)` in the page. */
const inPage = <A, R>(fn: (api: PageApi, arg: A) => R | Promise<R>, arg?: A, page = b.page): Promise<R> =>
  page.evaluate(([f, a]) => new Function('api', 'arg', `return (${f})(api, arg)`)((globalThis as unknown as { paychanPage: PageApi }).paychanPage, a) as Promise<R>, [fn.toString(), arg] as const);

beforeAll(async () => {
  b = await startBrowserPayerEnv();
});
afterAll(() => b?.stop());

describe('a page that pays', () => {
  it('funds a channel through its address, pays 1,000 times across a reload and 50 paid requests, and the close matches', async () => {
    const { page, env, signer } = b;
    await page.goto(b.pageUrl);
    await page.waitForFunction(() => 'paychanPage' in globalThis);
    expect(await inPage((api, a: [string, string]) => api.open(a[0], a[1]), [b.server.wsUrl, toHex(signer.script)])).toBeNull();

    // Funding: the page shows the BIP21 URI and its QR code; the user's wallet (here the node's
    // coins) pays the address and broadcasts; the page learns the funding from the payee.
    const request = await inPage((api) => api.requestFunding(1_000_000n, 30));
    expect(request.amountSat).toBe(CAPACITY);
    expect(request.bip21.startsWith(`bitcoin:${request.address}?amount=0.01`)).toBe(true);
    expect(request.qrSvg).toMatch(/^<svg/);
    const paying = await env.wallet.fund([{ script: baddress.toOutputScript(request.address, bitcoinjsNetwork('regtest')), valueSat: CAPACITY }], 2);
    await env.backend.broadcast(paying.txHex);
    const fundingTxid = paying.txid;
    await env.mine(1);
    const open: { id: string | null } = { id: null };
    const opened = inPage((api) => api.fundFromAddress()).then((id) => (open.id = id));
    // Blocks keep coming, as on a real chain: the payee's watcher counts the funding's
    // confirmations at the next one. A few blocks at most, well before the expiry.
    let mined = 0;
    await waitUntil(async () => open.id !== null || (mined < 5 && (await env.mine(1), mined++), false), 'the page to learn the funding and open', 60_000);
    const channelId = await opened;
    expect(channelId.startsWith(fundingTxid)).toBe(true);
    const kit = await inPage((api) => api.refundKit());
    expect(kit.fundingOutpoint).toBe(channelId);
    expect(kit.privateKey).toMatch(/^[0-9a-f]{64}$/);

    // 400 payments, all acknowledged.
    const first = await inPage((api) => api.payMany(400, 1n));
    expect(first.totalSat).toBe(400n);
    // 400 more, and a reload while they are in flight: what the page saw acknowledged must hold.
    await inPage((api) => api.startPaying(400, 1n));
    await waitUntil(async () => (await inPage((api) => api.acked())) >= 500n, 'payments in flight to be acknowledged');
    const ackedBeforeReload = await inPage((api) => api.acked());
    await page.reload();
    await page.waitForFunction(() => 'paychanPage' in globalThis);
    expect(await inPage((api, a: [string, string]) => api.open(a[0], a[1]), [b.server.wsUrl, toHex(signer.script)])).toBe('Open');
    // The restored channel resumes on connection: the payee re-acknowledges its newest total.
    await waitUntil(async () => (await inPage((api) => api.state())).paidSat >= ackedBeforeReload, 'the resumed channel to be re-acknowledged');
    const resumed = (await inPage((api) => api.state())).paidSat;
    expect(resumed).toBeGreaterThanOrEqual(ackedBeforeReload);
    const payee = (await b.payeeChannels()).find((c) => c.channelId === channelId);
    expect(payee?.state).toBe('Open');
    expect(BigInt(payee!.paidSat)).toBe(resumed);
    // The rest, to 1,000 satoshis in 1-sat payments (1,000 payments acknowledged in all, and those
    // lost with the reload were never acknowledged, so never counted).
    const rest = await inPage((api, n: number) => api.payMany(n, 1n), PAYMENTS - Number(resumed));
    expect(rest.totalSat).toBe(BigInt(PAYMENTS));
    // 50 paid requests to the payee's paywall, on another origin (its CORS lets the page pay and
    // read the acknowledgement), on the same channel.
    const statuses = await inPage((api, url: string) => api.fetchPaid(url, 50), `${b.server.url}${PAID_PREFIX}item-`);
    expect(statuses).toEqual(Array(50).fill(200));
    const paidTotal = BigInt(PAYMENTS) + 50n * PRICE_SAT;
    expect(await inPage((api) => api.acked())).toBe(paidTotal);
    await page.screenshot({ path: artifactPath('browser-payer.png') });

    // Close: the node's close pays the page's change exactly.
    await inPage((api) => api.requestClose());
    let closeTxid = '';
    await waitUntil(async () => {
      closeTxid = (await b.payeeChannels()).find((c) => c.channelId === channelId)?.closeTxid ?? '';
      return closeTxid !== '';
    }, 'the payee to close');
    const close = await env.backend.getTransaction(closeTxid);
    expect(close).not.toBeNull();
    const tx = Transaction.fromHex(close!.hex);
    expect(tx.ins.some((i) => Buffer.from(i.hash).reverse().toString('hex') === fundingTxid)).toBe(true);
    const change = tx.outs.find((o) => equalBytes(o.script, signer.script));
    expect(change?.value).toBe(CAPACITY - (await inPage((api) => api.acked())));
    expect(change?.value).toBe(CAPACITY - paidTotal);
    // And the payee's output is what the page paid less the close's fee, at the payee's rate.
    const payeeOuts = tx.outs.filter((o) => !equalBytes(o.script, signer.script));
    const fee = CAPACITY - tx.outs.reduce((sum, o) => sum + BigInt(o.value), 0n);
    expect(payeeOuts.map((o) => BigInt(o.value))).toEqual([paidTotal - fee]);
    expect(Number(fee) / tx.virtualSize()).toBeGreaterThanOrEqual(2);
    expect(Number(fee) / tx.virtualSize()).toBeLessThan(2.1);
  });

  it('funds a channel through an unsigned PSBT an external wallet signs, and pays on it', async () => {
    const { env, signer } = b;
    expect(await inPage((api, a: [string, string]) => api.open(a[0], a[1], 'psbt'), [b.server.wsUrl, toHex(signer.script)])).toBeNull();
    const request = await inPage((api) => api.requestFunding(500_000n, 30));
    const utxo = await b.fundExternalWallet(1_000_000n);
    const signed = signer.fundAndSign(request.psbt, utxo, 1_000n);
    const fundingTxid = signed.extractTransaction(true).getId();
    const opened = inPage((api, s: string) => api.fundWithSigned(s), signed.toBase64());
    await waitUntil(async () => (await env.backend.getTransaction(fundingTxid)) !== null, 'the payee to broadcast the funding');
    await env.mine(1);
    expect((await opened).startsWith(fundingTxid)).toBe(true);
    expect((await inPage((api) => api.payMany(20, 5n))).totalSat).toBe(100n);
  });

  it('pays from one tab at a time: a second tab of the same store is refused until the first closes it', async () => {
    const { signer } = b;
    const second = await b.page.context().newPage();
    try {
      await second.goto(b.pageUrl);
      await second.waitForFunction(() => 'paychanPage' in globalThis);
      const open = (): Promise<string | null> => inPage((api, a: [string, string]) => api.open(a[0], a[1], 'psbt'), [b.server.wsUrl, toHex(signer.script)], second);
      // The first tab holds the 'psbt' store (the test above): its channel must not be paid twice.
      await expect(open()).rejects.toThrow(/in use by another tab/);
      await inPage((api) => api.close());
      // Released: the second tab restores the channel from the shared IndexedDB and pays on it.
      expect(await open()).toBe('Open');
      expect((await inPage((api) => api.payMany(5, 5n), undefined, second)).totalSat).toBe(125n);
    } finally {
      await second.close();
    }
  });
});
