/**
 * The payer in a page: `payerBundleGzipBytes` (src/payer.ts bundled by esbuild for the browser,
 * minified, gzip -9; the secp256k1 is pure JS, so no WASM to add) and the signing speed of the
 * two browser-capable secp256k1 implementations (one ECDSA signature per payment is the payer's
 * CPU cost): @noble/curves with its 8-bit fixed-base table (the browser default) and
 * tiny-secp256k1's WASM (1.2 MB), each for `--seconds` in this process.
 *
 * Prints one JSON line (last on stdout). Run through bench/run.ts.
 */
import { nobleSecp256k1 } from '../src/crypto/noble.js';
import type { Secp256k1 } from '../src/crypto/secp256k1.js';
import { wasmSecp256k1 } from '../src/crypto/wasm.js';
import { bundleForBrowser } from '../test/helpers/browser-bundle.js';
import { emitResult, intArg, parseArgs } from './lib/args.js';

const args = parseArgs(process.argv.slice(2));
const SECONDS = intArg(args, 'seconds', 3);

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

const bundle = await bundleForBrowser('src/payer.ts');
emitResult({
  payerBundleGzipBytes: bundle.gzipBytes,
  payerBundleBytes: bundle.bytes,
  signPerSec: { noble: signsPerSec(nobleSecp256k1), wasm: signsPerSec(wasmSecp256k1) },
});
