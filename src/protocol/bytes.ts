/** Byte helpers for the protocol core (hex, concatenation, little-endian integers). */

const HEX_RE = /^(?:[0-9a-f]{2})*$/;

/** Value of a lowercase hex digit by char code, -1 for anything else. */
const NIBBLE = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) NIBBLE['0123456789abcdef'.charCodeAt(i)] = i;

/** @throws TypeError if `hex` is not lowercase even-length hex. */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0) throw new TypeError('expected lowercase even-length hex');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = NIBBLE[hex.charCodeAt(2 * i)] ?? -1;
    const lo = NIBBLE[hex.charCodeAt(2 * i + 1)] ?? -1;
    if (hi < 0 || lo < 0) throw new TypeError('expected lowercase even-length hex');
    out[i] = (hi << 4) | lo;
  }
  return out;
}

const HEX_DIGITS = new TextEncoder().encode('0123456789abcdef');
const ASCII = new TextDecoder();

/**
 * Lowercase hex, written as ASCII bytes and decoded into one flat string: concatenating two
 * characters at a time left ~2 KB of intermediate strings per 64-byte signature, on every
 * payment. (TextDecoder, not Node's Buffer: this module runs anywhere.)
 */
export function toHex(bytes: Uint8Array): string {
  const out = new Uint8Array(bytes.length * 2);
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    out[2 * i] = HEX_DIGITS[b >> 4]!;
    out[2 * i + 1] = HEX_DIGITS[b & 15]!;
  }
  return ASCII.decode(out);
}

export function isHex(value: unknown, byteLength?: number): value is string {
  return typeof value === 'string' && HEX_RE.test(value) && (byteLength === undefined || value.length === byteLength * 2);
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function u32le(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value >>> 0, true);
  return out;
}

export function u64le(value: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, value, true);
  return out;
}

/** Bitcoin CompactSize length prefix. */
export function varint(n: number): Uint8Array {
  if (n < 0xfd) return Uint8Array.of(n);
  if (n <= 0xffff) return Uint8Array.of(0xfd, n & 0xff, n >>> 8);
  const out = new Uint8Array(5);
  out[0] = 0xfe;
  new DataView(out.buffer).setUint32(1, n, true);
  return out;
}

/** Script bytes with their CompactSize length prefix, as they appear in a serialized tx. */
export function varSlice(bytes: Uint8Array): Uint8Array {
  return concatBytes(varint(bytes.length), bytes);
}

/** Transaction ids are shown byte-reversed; this turns a txid string into hash bytes. */
export function txidToHash(txid: string): Uint8Array {
  return fromHex(txid).reverse();
}

/** The inverse of {@link txidToHash}: an input's `hash` (as bitcoinjs keeps it) as a txid. */
export function hashToTxid(hash: Uint8Array): string {
  return toHex(Uint8Array.from(hash).reverse());
}
