/**
 * The payer in a page: `payerBundleGzipBytes` (src/payer.ts bundled by esbuild for the browser,
 * minified, gzip -9; the secp256k1 is pure JS, so no WASM to add), the signing speed of the two
 * browser-capable secp256k1 implementations (one ECDSA signature per payment is the payer's CPU
 * cost): @noble/curves with its 8-bit fixed-base table (the browser default) and tiny-secp256k1's
 * WASM (1.2 MB), each for `--seconds` in this process; and `browserPaymentsPerSec`: payments from
 * a page in headless Chromium (BrowserPayer: noble, IndexedDB with strict durability, browser
 * WebSocket) to a local PayeeService with SQLite on btcd, `--payments` in flight at once, each
 * acknowledged only once durable on both sides (test/helpers/browser-payer-env.ts, as the e2e test).
 *
 * Prints one JSON line (last on stdout). Run through bench/run.ts.
 */
import { nobleSecp256k1 } from '../src/crypto/noble.js';
import type { Secp256k1 } from '../src/crypto/secp256k1.js';
import { wasmSecp256k1 } from '../src/crypto/wasm.js';
import { toHex } from '../src/protocol/bytes.js';
import { bundleForBrowser } from '../test/helpers/browser-bundle.js';
import { startBrowserPayerEnv } from '../test/helpers/browser-payer-env.js';
import { waitUntil } from '../test/helpers/wait.js';
import { emitResult, intArg, parseArgs } from './lib/args.js';

const args = parseArgs(process.argv.slice(2));
const SECONDS = intArg(args, 'seconds', 3);
const PAYMENTS = intArg(args, 'payments', 5000);
const RUNS = intArg(args, 'runs', 3);

function signsPerSec(secp: Secp256k1): number {
  const key = new Uint8Array(32).fill(7);
  const digest = new Uint8Array(32).fill(9);
  secp.ecdsaSign(digest, key); // builds noble's table outside the timing
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < SECONDS * 1000) {
    digest[0] = n & 0xff;
    digest[1] = (n >> 8) & 0xff;
    secp.ecdsaSign(digest, key);
    n++;
  }
  return Math.round(n / ((performance.now() - start) / 1000));
}

type PageApi = {
  open(wsUrl: string, payoutScriptHex: string): Promise<string | null>;
  requestFunding(capacitySat: bigint, expiryBlocks: number): Promise<{ psbt: string }>;
  fundWithSigned(signed: string): Promise<string>;
  payMany(count: number, amountSat: bigint): Promise<{ totalSat: bigint; ms: number }>;
};

/** Payments per second from the page, one figure per run of `PAYMENTS` payments. */
async function browserPayments(): Promise<number[]> {
  const b = await startBrowserPayerEnv();
  try {
    const inPage = <A, R>(fn: (api: PageApi, arg: A) => Promise<R>, arg?: A): Promise<R> =>
      b.page.evaluate(([f, a]) => new Function('api', 'arg', `return (${f})(api, arg)`)((globalThis as unknown as { paychanPage: PageApi }).paychanPage, a) as Promise<R>, [fn.toString(), arg] as const);
    await b.page.goto(b.pageUrl);
    await b.page.waitForFunction(() => 'paychanPage' in globalThis);
    await inPage((api, a: [string, string]) => api.open(a[0], a[1]), [b.server.wsUrl, toHex(b.signer.script)]);
    const request = await inPage((api) => api.requestFunding(10_000_000n, 100));
    const utxo = await b.fundExternalWallet(20_000_000n);
    const signed = b.signer.fundAndSign(request.psbt, utxo, 1_000n);
    const opened = inPage((api, s: string) => api.fundWithSigned(s), signed.toBase64());
    const fundingTxid = signed.extractTransaction(true).getId();
    await waitUntil(async () => (await b.env.backend.getTransaction(fundingTxid)) !== null, 'the payee to broadcast the funding');
    await b.env.mine(1);
    await opened;
    await inPage((api) => api.payMany(500, 1n)); // warm-up: JIT, noble's table
    const rates: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const run = await inPage((api, n: number) => api.payMany(n, 1n), PAYMENTS);
      rates.push(Math.round(PAYMENTS / (run.ms / 1000)));
    }
    return rates;
  } finally {
    await b.stop();
  }
}

const bundle = await bundleForBrowser('src/payer.ts');
const signPerSec = { noble: signsPerSec(nobleSecp256k1), wasm: signsPerSec(wasmSecp256k1) };
const runs = await browserPayments();
emitResult({
  payerBundleGzipBytes: bundle.gzipBytes,
  payerBundleBytes: bundle.bytes,
  signPerSec,
  browserPaymentsPerSec: [...runs].sort((a, b) => a - b)[Math.floor(runs.length / 2)],
  browserPaymentsRuns: runs,
});
