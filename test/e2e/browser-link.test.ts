/**
 * The payer's browser link (src/transport/browser-link.ts) in headless Chromium against a real
 * WebSocket server on 127.0.0.1: messages sent before the first connection and while down are
 * queued and delivered in order, before what onOpen sends (where the payer resumes); a dropped
 * connection is reopened by itself; close() stops it for good.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page, Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { bundleForBrowser } from '../helpers/browser-bundle.js';
import { launchChromium } from '../helpers/chromium.js';
import { waitUntil } from '../helpers/wait.js';

let browser: Browser;
let page: Page;
let server: http.Server;
let wss: WebSocketServer;
let url: string;
/** What the server received, per connection, as the `message` fields. */
const received: string[][] = [];
const sockets: WebSocket[] = [];
let refusing = false;

type Api = { events: string[]; connect(url: string): void; send(n: number): void; state(): { connected: boolean; queued: number }; close(): void };
const call = <R>(fn: (api: Api, arg: never) => R, arg?: unknown): Promise<R> =>
  page.evaluate(([f, a]) => new Function('api', 'arg', `return (${f})(api, arg)`)((globalThis as unknown as { paychanLinkTest: Api }).paychanLinkTest, a) as R, [fn.toString(), arg] as const);

beforeAll(async () => {
  // The page comes from the same loopback origin as the socket (Chromium refuses a public
  // origin's connections into the loopback: Local Network Access).
  const bundle = await bundleForBrowser('test/browser/link-page.ts', { minify: false });
  server = http.createServer((req, res) =>
    req.url === '/link-page.js'
      ? res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle.code)
      : res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><script type="module" src="/link-page.js"></script>'),
  );
  // While `refusing`, upgrades are answered 401: the page's attempts fail without opening.
  wss = new WebSocketServer({ server, verifyClient: () => !refusing });
  wss.on('connection', (ws) => {
    const mine: string[] = [];
    received.push(mine);
    sockets.push(ws);
    ws.on('message', (data) => mine.push((JSON.parse(String(data)) as { message: string }).message));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  url = `ws://127.0.0.1:${port}/v1/ws`;
  browser = await launchChromium();
  page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.waitForFunction(() => 'paychanLinkTest' in globalThis);
});

afterAll(async () => {
  await browser?.close();
  wss?.close();
  server?.close();
});

describe('the browser link', () => {
  it('queues until the first connection, then sends the queue in order before onOpen', async () => {
    // Sent in the same turn as the connect, before the handshake can have completed: queued.
    await call((api, u: string) => {
      api.connect(u);
      api.send(1);
      api.send(2);
    }, url);
    await waitUntil(() => received[0]?.length === 3, 'three messages on the first connection');
    expect(received[0]).toEqual(['m1', 'm2', 'resumed']);
    expect(await call((api) => api.events)).toEqual(['open']);
  });

  it('reconnects by itself after a drop, delivering what was sent while down first', async () => {
    refusing = true;
    sockets[0]!.terminate();
    await waitUntil(async () => (await call((api) => api.events)).includes('close 1006'), 'the page to see the drop');
    await call((api) => {
      api.send(3);
      api.send(4);
    });
    expect((await call((api) => api.state())).queued).toBe(2);
    refusing = false;
    await waitUntil(() => received[1]?.length === 3, 'the second connection and its three messages');
    expect(received[1]).toEqual(['m3', 'm4', 'resumed']);
    expect((await call((api) => api.events)).filter((e) => e === 'open')).toHaveLength(2);
    await call((api) => api.send(5));
    await waitUntil(() => received[1]?.length === 4, 'a message on the live connection');
    expect(received[1]![3]).toBe('m5');
  });

  it('stops for good on close(): no reconnection, sends dropped', async () => {
    await call((api) => api.close());
    await waitUntil(() => sockets[1]!.readyState === sockets[1]!.CLOSED, 'the server to see the close');
    await call((api) => api.send(6));
    expect(await call((api) => api.state())).toEqual({ connected: false, queued: 0 });
    expect(received).toHaveLength(2);
  });
});
