/**
 * The page of the browser payer's end-to-end test and bench (test/helpers/browser-payer-env.ts):
 * `paychan/payer`'s BrowserPayer, driven from Node through `paychanPage`. It shows the channel's
 * state, capacity and acknowledged total, and keeps the funding QR code on screen.
 */
import { fromHex } from '../../src/protocol/bytes.js';
import { openBrowserPayer, type BrowserPayer } from '../../src/web/browser-payer.js';
import { esploraChain } from '../../src/web/esplora-chain.js';

let payer: BrowserPayer | null = null;
/** Totals the payee acknowledged, as the page learnt them (the page's record). */
let ackedSat = 0n;
const show = (): void => {
  const s = payer?.state;
  const capacity = s && 'terms' in s ? s.terms.capacitySat : 0n;
  document.getElementById('state')!.textContent = s?.type ?? 'none';
  document.getElementById('capacity')!.textContent = `${capacity} sat`;
  document.getElementById('paid')!.textContent = `${ackedSat} sat`;
};

const api = {
  async open(wsUrl: string, payoutScriptHex: string, storeName = 'e2e'): Promise<string | null> {
    payer = await openBrowserPayer({ wsUrl, network: 'regtest', chain: esploraChain(`${location.origin}/esplora`), payoutScript: fromHex(payoutScriptHex), storeName });
    ackedSat = payer.paidSat;
    show();
    return payer.state?.type ?? null;
  },
  /** Closes the payer (its store and tab lock); the channel stays for the next open. */
  async close(): Promise<void> {
    await payer?.close();
    payer = null;
  },
  async requestFunding(capacitySat: bigint, expiryBlocks: number) {
    const request = await payer!.requestFunding({ capacitySat, expiryBlocks });
    document.getElementById('qr')!.innerHTML = request.qrSvg;
    document.getElementById('bip21')!.textContent = request.bip21;
    show();
    return request;
  },
  async fundWithSigned(signed: string): Promise<string> {
    const channel = await payer!.fundWithSigned(signed);
    show();
    return channel.id;
  },
  async fundFromAddress(): Promise<string> {
    const channel = await payer!.fundFromAddress({ pollMs: 100 });
    show();
    return channel.id;
  },
  async waitUntilOpen(): Promise<void> {
    await payer!.waitUntilOpen();
    ackedSat = payer!.paidSat;
    show();
  },
  /** `count` payments of `amountSat`, all in flight at once; resolves when all are acknowledged. */
  async payMany(count: number, amountSat: bigint): Promise<{ totalSat: bigint; ms: number }> {
    const start = performance.now();
    const paying: Promise<bigint>[] = [];
    for (let i = 0; i < count; i++) paying.push(payer!.pay(amountSat).then((total) => ((ackedSat = total > ackedSat ? total : ackedSat), show(), total)));
    const totals = await Promise.all(paying);
    return { totalSat: totals[totals.length - 1]!, ms: performance.now() - start };
  },
  /** Starts `count` payments and returns at once (the test reloads the page under them). */
  startPaying(count: number, amountSat: bigint): void {
    void api.payMany(count, amountSat).catch(() => undefined);
  },
  /** `count` paid GETs of `url`, one after the other (the paying fetch pays one at a time). */
  async fetchPaid(url: string, count: number): Promise<number[]> {
    const paying = payer!.payingFetch(100n);
    const statuses: number[] = [];
    for (let i = 0; i < count; i++) {
      const res = await paying(`${url}${i}`);
      await res.text();
      statuses.push(res.status);
    }
    ackedSat = payer!.paidSat > ackedSat ? payer!.paidSat : ackedSat;
    show();
    return statuses;
  },
  acked: (): bigint => ackedSat,
  state: () => ({ type: payer?.state?.type ?? null, paidSat: payer?.paidSat ?? 0n }),
  requestClose: (): void => payer!.requestClose(),
  refundKit: () => payer!.refundKit(),
};
(globalThis as unknown as { paychanPage: typeof api }).paychanPage = api;
