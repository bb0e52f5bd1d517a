/**
 * The page side of the browser link's test (test/e2e/browser-link.test.ts): a BrowserPeerLink
 * the Node side drives through `paychanLinkTest`, recording what the link does.
 */
import { msg } from '../../src/protocol/messages.js';
import { connectPayeeFromBrowser, type BrowserPeerLink } from '../../src/transport/browser-link.js';

const events: string[] = [];
let link: BrowserPeerLink | null = null;

const api = {
  events,
  connect(url: string): void {
    link = connectPayeeFromBrowser(url, {
      onMessage: (text) => events.push(`message ${text}`),
      // What a payer does on (re)connection: resume, i.e. send something after the queue.
      onOpen: () => {
        events.push('open');
        link!.send(msg('error', { code: 'INTERNAL_ERROR', message: 'resumed', action: 'reject' }));
      },
      onClose: (e) => events.push(`close ${e.code}`),
      reconnect: { minDelayMs: 20, maxDelayMs: 200 },
    });
  },
  send(n: number): void {
    link!.send(msg('error', { code: 'INTERNAL_ERROR', message: `m${n}`, action: 'reject' }));
  },
  state: () => ({ connected: link?.connected ?? false, queued: link?.queuedMessages ?? 0 }),
  close: () => link?.close(),
};
(globalThis as unknown as { paychanLinkTest: typeof api }).paychanLinkTest = api;
