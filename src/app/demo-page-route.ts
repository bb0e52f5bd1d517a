/**
 * `GET /demo` — the payer's demo page, served by `paychan payee serve`: a plain HTML page and one
 * script (src/web/demo-page.ts, bundled by `npm run build` into dist/web/demo-page.bundle.js with
 * esbuild; 80-odd kB gzipped). It funds a channel (BIP21 + QR code, or a PSBT), pays per request
 * and per second of a metered stream, and shows capacity, paid total and state live. Same origin
 * as the payee: no CORS needed.
 */
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { NetworkName } from '../protocol/network.js';
import { pathOf } from '../transport/http-routes.js';

export const DEMO_ROUTE = '/demo';
const SCRIPT_ROUTE = '/demo/demo-page.js';

/**
 * The page keeps channel keys in this origin's IndexedDB: no script but its own, no framing (the
 * style is the page's one inline block), and the network requests only to this origin (the
 * payee) or an Esplora endpoint over https for the refund.
 */
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss: https:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-cache',
} as const;

/** The routes, for the payee's route list and its OpenAPI document. */
export const DEMO_ROUTES = [
  { method: 'GET', path: DEMO_ROUTE },
  { method: 'GET', path: SCRIPT_ROUTE },
] as const;
/** The bundle, beside this module's folder once built (dist/app → dist/web). */
// Next to this module in dist/; from src/ (tests, tsx) the build's copy in dist/.
const BUNDLES = [new URL('../web/demo-page.bundle.js', import.meta.url), new URL('../../dist/web/demo-page.bundle.js', import.meta.url)].map((u) => fileURLToPath(u));

function page(network: NetworkName): string {
  return `<!doctype html>
<html lang="en" data-network="${network}">
<meta charset="utf-8">
<meta name="viewport" content="width=device-width">
<title>paychan: a page that pays</title>
<style>
body{font:16px/1.4 system-ui,sans-serif;max-width:44em;margin:2em auto;padding:0 1em}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}dt{font-weight:600}
button{font:inherit;margin:.2em .4em .2em 0}textarea{width:100%;font:12px monospace}
#qr svg{width:14em;height:14em}code{word-break:break-all}.hidden{display:none}
</style>
<h1>A page that pays</h1>
<p>A payment channel from this page to the payee (${network}): fund it once from any wallet, then
pay per request and per second, with no on-chain transaction until the close.</p>
<dl>
  <dt>State</dt><dd id="state">…</dd>
  <dt>Capacity</dt><dd id="capacity">–</dd>
  <dt>Paid</dt><dd id="paid">0 sat</dd>
  <dt>Requests</dt><dd id="requests">0</dd>
  <dt>Stream</dt><dd id="stream">stopped</dd>
</dl>
<section id="fund" class="hidden">
  <p>Capacity <input id="capacity-input" value="100000" size="10"> sat,
  change and refund to <input id="refund-address" size="44" placeholder="your ${network} address">
  <button id="open">Open a channel</button></p>
</section>
<p id="kit-line" class="hidden">Until the channel closes, only this browser holds the key to your refund:
<button id="kit">Export the refund kit</button> (key, script and expiry height <b id="expiry"></b>; keep it safe).</p>
<section id="funding" class="hidden">
  <p>Pay <b id="amount"></b> to the channel address from any wallet (the page sees it once it confirms):</p>
  <div id="qr"></div><p><code id="bip21"></code></p>
  <p>Or have a wallet fund and sign this PSBT, and paste the result:</p>
  <textarea id="psbt" rows="4" readonly></textarea>
  <textarea id="signed" rows="4" placeholder="signed PSBT (base64) or transaction (hex)"></textarea>
  <button id="submit-signed">Use the signed PSBT</button>
</section>
<section id="pay" class="hidden">
  <button id="request">Paid request</button>
  <button id="stream-toggle">Start the stream</button>
  <button id="close">Close the channel</button>
  <pre id="answer"></pre>
</section>
<p id="error"></p>
<script type="module" src="${SCRIPT_ROUTE}"></script>
</html>
`;
}

/** @returns a route answering GET /demo and its script; false for other requests. */
export function demoPageRoute(opts: { network: NetworkName }): (req: IncomingMessage, res: ServerResponse) => boolean {
  const html = page(opts.network);
  let script: string | null = null;
  return (req, res) => {
    const path = pathOf(req); // /demo?stream=… and /demo?esplora=… are the page too
    if (req.method !== 'GET' || (path !== DEMO_ROUTE && path !== `${DEMO_ROUTE}/` && path !== SCRIPT_ROUTE)) return false;
    if (path === SCRIPT_ROUTE) {
      try {
        script ??= fs.readFileSync(BUNDLES.find((f) => fs.existsSync(f)) ?? BUNDLES[0]!, 'utf8');
      } catch {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('the demo page script is not built: npm run build');
        return true;
      }
      res.writeHead(200, { ...PAGE_HEADERS, 'content-type': 'text/javascript; charset=utf-8' }).end(script);
      return true;
    }
    res.writeHead(200, { ...PAGE_HEADERS, 'content-type': 'text/html; charset=utf-8' }).end(html);
    return true;
  };
}
