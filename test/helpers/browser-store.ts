/**
 * The IndexedDB store, in headless Chromium, behind a Node-side {@link Store} proxy: each call is
 * one `page.evaluate` on the page of test/browser/store-page.ts, so the very contract suite the
 * Node adapters pass (test/integration/store.test.ts) runs against the browser's IndexedDB.
 * playwright carries bigint, Uint8Array and cyclic values across; Maps go as entries. The page's
 * origin is served by playwright's routing (no server): IndexedDB needs a real http origin.
 */
import type { Browser, Page } from 'playwright-core';
import type { Store } from '../../src/store/store.js';
import { bundleForBrowser } from './browser-bundle.js';
import { launchChromium } from './chromium.js';

const ORIGIN = 'http://paychan-store.test';

type Outcome = { ok: true; value: unknown } | { ok: false; name: string; message: string };

export interface BrowserStores {
  /** Opens (a proxy to) the store of database `name` in the page. */
  open(name: string): Promise<Store>;
  close(): Promise<void>;
}

/** Launches Chromium and loads the store page. */
export async function startBrowserStores(): Promise<BrowserStores> {
  const bundle = await bundleForBrowser('test/browser/store-page.ts', { minify: false });
  const browser: Browser = await launchChromium();
  const page: Page = await browser.newPage();
  await page.route(`${ORIGIN}/**`, (route) => {
    const url = new URL(route.request().url());
    if (url.pathname === '/store-page.js') return route.fulfill({ contentType: 'text/javascript', body: bundle.code });
    return route.fulfill({ contentType: 'text/html', body: '<!doctype html><script type="module" src="/store-page.js"></script>' });
  });
  await page.goto(`${ORIGIN}/`);
  await page.waitForFunction(() => 'paychanStoreTest' in globalThis);
  const unwrap = (o: Outcome): unknown => {
    if (o.ok) return o.value;
    const err = o.name === 'TypeError' ? new TypeError(o.message) : new Error(o.message);
    err.name = o.name;
    throw err;
  };
  type Api = { open(name: string): Promise<Outcome>; call(handle: number, method: string, args: unknown[]): Promise<Outcome> };
  return {
    async open(name) {
      const handle = unwrap(await page.evaluate((n) => (globalThis as unknown as { paychanStoreTest: Api }).paychanStoreTest.open(n), name)) as number;
      const call = async (method: string, args: unknown[]): Promise<unknown> =>
        unwrap(await page.evaluate(([h, m, a]) => (globalThis as unknown as { paychanStoreTest: Api }).paychanStoreTest.call(h, m, a), [handle, method, args.map((x) => (x instanceof Map ? [...x] : x))] as const));
      // Not a thenable: awaiting the proxy must give the proxy.
      // Nor does it have the port's optional methods the browser's store leaves out.
      const absent = new Set(['then', 'hasPayeeChannel', 'loadPayeeChannel', 'leases']);
      return new Proxy({} as Store, { get: (_t, method: string) => (absent.has(method) ? undefined : (...args: unknown[]) => call(method, args)) });
    },
    close: () => browser.close(),
  };
}
