/**
 * SHA-256 over fixed, small inputs without allocating: the payment sighash hashes a few dozen
 * bytes four or five times per payment, where a general-purpose hasher spends more time on
 * objects than on rounds. Constants are derived exactly (integer roots), not copied.
 */

function firstPrimes(n: number): number[] {
  const out: number[] = [];
  for (let c = 2; out.length < n; c++) if (out.every((p) => c % p !== 0)) out.push(c);
  return out;
}

/** floor(x^(1/k)) for a non-negative BigInt. */
function iroot(x: bigint, k: bigint): bigint {
  let r = BigInt(Math.floor(Number(x) ** (1 / Number(k)))) + 2n;
  for (;;) {
    const next = ((k - 1n) * r + x / r ** (k - 1n)) / k;
    if (next >= r) break;
    r = next;
  }
  while (r ** k > x) r--;
  while ((r + 1n) ** k <= x) r++;
  return r;
}

const MASK32 = (1n << 32n) - 1n;
/** Round constants: fractional parts of the cube roots of the first 64 primes. */
const K = Uint32Array.from(firstPrimes(64).map((p) => Number(iroot(BigInt(p) << 96n, 3n) & MASK32)));
/** Initial state: fractional parts of the square roots of the first 8 primes. */
export const SHA256_IV = Uint32Array.from(firstPrimes(8).map((p) => Number(iroot(BigInt(p) << 64n, 2n) & MASK32)));

const W = new Uint32Array(64);

/** Runs one 64-byte block at `offset` of `data` into `state`. */
export function compressBlock(state: Uint32Array, data: Uint8Array, offset: number): void {
  for (let i = 0; i < 16; i++) {
    const j = offset + 4 * i;
    W[i] = (data[j]! << 24) | (data[j + 1]! << 16) | (data[j + 2]! << 8) | data[j + 3]!;
  }
  for (let i = 16; i < 64; i++) {
    const a = W[i - 15]!;
    const b = W[i - 2]!;
    const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
    const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
    W[i] = (W[i - 16]! + s0 + W[i - 7]! + s1) | 0;
  }
  let a = state[0]!,
    b = state[1]!,
    c = state[2]!,
    d = state[3]!,
    e = state[4]!,
    f = state[5]!,
    g = state[6]!,
    h = state[7]!;
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i]! + W[i]!) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
  state[5] = (state[5]! + f) | 0;
  state[6] = (state[6]! + g) | 0;
  state[7] = (state[7]! + h) | 0;
}

const PAD = new Uint8Array(128);

/**
 * Finishes a hash: `state` has absorbed `absorbedBytes` (a multiple of 64), `tail` holds the
 * remaining bytes (< 64 + 64 is allowed); writes the digest into `out` at `outOffset`.
 */
export function finish(state: Uint32Array, absorbedBytes: number, tail: Uint8Array, tailLength: number, out: Uint8Array, outOffset: number): void {
  let n = tailLength;
  let off = 0;
  while (n >= 64) {
    compressBlock(state, tail, off);
    off += 64;
    n -= 64;
  }
  PAD.fill(0);
  // Byte by byte rather than PAD.set(tail.subarray(…)): a subarray is a new object, and this runs
  // three times a payment on each side.
  for (let i = 0; i < n; i++) PAD[i] = tail[off + i]!;
  PAD[n] = 0x80;
  const blocks = n + 9 <= 64 ? 1 : 2;
  const bits = (absorbedBytes + tailLength) * 8;
  const end = blocks * 64;
  PAD[end - 4] = bits >>> 24;
  PAD[end - 3] = bits >>> 16;
  PAD[end - 2] = bits >>> 8;
  PAD[end - 1] = bits;
  PAD[end - 5] = Math.floor(bits / 2 ** 32);
  compressBlock(state, PAD, 0);
  if (blocks === 2) compressBlock(state, PAD, 64);
  for (let i = 0; i < 8; i++) {
    const v = state[i]!;
    out[outOffset + 4 * i] = v >>> 24;
    out[outOffset + 4 * i + 1] = v >>> 16;
    out[outOffset + 4 * i + 2] = v >>> 8;
    out[outOffset + 4 * i + 3] = v;
  }
}
