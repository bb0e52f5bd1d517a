/**
 * Picks the {@link Secp256k1} for this process: native when it loads, else WASM with a loud
 * warning on stderr (never the package's silent pure-JS fallback). Set `PAYCHAN_REQUIRE_NATIVE=1`
 * to refuse to start without the native addon instead (what a busy payee wants).
 */
import { loadNativeSecp256k1 } from './native.js';
import type { Secp256k1 } from './secp256k1.js';
import { wasmSecp256k1 } from './wasm.js';

export type { Secp256k1 } from './secp256k1.js';
export { wasmSecp256k1 } from './wasm.js';
export { loadNativeSecp256k1 } from './native.js';

let chosen: Secp256k1 | undefined;

/**
 * @returns the process-wide secp256k1 implementation.
 * @throws Error if `PAYCHAN_REQUIRE_NATIVE=1` and the native addon cannot be loaded.
 */
export function secp256k1(): Secp256k1 {
  if (chosen) return chosen;
  try {
    chosen = loadNativeSecp256k1();
  } catch (err) {
    if (process.env.PAYCHAN_REQUIRE_NATIVE === '1') throw err;
    process.stderr.write(
      `paychan: WARNING: ${(err as Error).message}\n` +
        'paychan: WARNING: falling back to WASM secp256k1 (about 3x slower verification).\n',
    );
    chosen = wasmSecp256k1;
  }
  return chosen;
}
