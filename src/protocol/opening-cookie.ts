/**
 * Opening cookies: how a payee opens Spilman channels without holding anything for a stranger.
 *
 * In the spirit of TCP SYN cookies, the payee answers a `hello` with a cookie instead of storing
 * the proposal: `issuedHeight (4 bytes) || HMAC-SHA256(secret, canonical proposal)[0..16]`. The
 * payer echoes the proposal and the cookie in its later opening messages (`refund-request`,
 * `funding`); the payee checks the MAC (constant time) before any other work, and so knows it
 * accepted exactly these terms at that height. The payee's channel key is derived from the MAC
 * (see {@link openingKeyIndex}), so the v1 refund signature needs no stored key either. Nothing
 * is stored until a funding the node accepts arrives: a stranger's hellos fill no table, and no
 * cap on unfunded proposals is needed (docs/design.md, "Openings without state").
 *
 * The MAC covers every field the payee later trusts: the payer's tempId (its random nonce: two
 * proposals with the same terms get different cookies, keys and channels), network, variant,
 * payer key, capacity, expiry, payer script, and the issue height (cookies expire).
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { fromHex } from './bytes.js';
import { ProtocolError } from './errors.js';
import type { Hello } from './messages.js';

/** A cookie's length on the wire: 4 bytes of issue height, 16 bytes of MAC. */
export const COOKIE_BYTES = 20;
const MAC_BYTES = 16;
const TAG = new TextEncoder().encode('paychan/opening-cookie/1');

/**
 * Key indices from here on name opening keys: `OPENING_KEY_INDEX_BASE + n`, n a 52-bit number
 * taken from the cookie's MAC. Smaller indices are the counter-allocated keys of channels opened
 * before cookies (still found in older stores). 2^31 + 2^52 < 2^53: an exact JS number.
 */
export const OPENING_KEY_INDEX_BASE = 2 ** 31;

/** The proposal a cookie vouches for: a hello's fields. */
export type ProposalFields = Pick<Hello, 'tempId' | 'network' | 'variant' | 'payerPubkey' | 'capacitySat' | 'expiryHeight' | 'payerScript'>;

/** The canonical bytes the MAC covers (length-prefixed where the length varies). */
function canonical(p: ProposalFields, issuedHeight: number): Uint8Array {
  const enc = new TextEncoder();
  const network = enc.encode(p.network);
  const variant = enc.encode(p.variant);
  const size = TAG.length + 1 + network.length + 1 + variant.length + 16 + p.payerPubkey.length + 8 + 4 + 1 + p.payerScript.length + 4;
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  let o = 0;
  const put = (bytes: Uint8Array, prefixed: boolean) => {
    if (prefixed) b[o++] = bytes.length;
    b.set(bytes, o);
    o += bytes.length;
  };
  put(TAG, false);
  put(network, true);
  put(variant, true);
  put(fromHex(p.tempId), false);
  put(p.payerPubkey, false);
  v.setBigUint64(o, p.capacitySat);
  o += 8;
  v.setUint32(o, p.expiryHeight);
  o += 4;
  put(p.payerScript, true);
  v.setUint32(o, issuedHeight);
  return b;
}

function macOf(secret: Uint8Array, p: ProposalFields, issuedHeight: number): Uint8Array {
  return hmac(sha256, secret, canonical(p, issuedHeight)).subarray(0, MAC_BYTES);
}

/** @returns the cookie for proposal `p`, issued at `issuedHeight` (the payee's tip). */
export function openingCookie(secret: Uint8Array, p: ProposalFields, issuedHeight: number): Uint8Array {
  const cookie = new Uint8Array(COOKIE_BYTES);
  new DataView(cookie.buffer).setUint32(0, issuedHeight);
  cookie.set(macOf(secret, p, issuedHeight), 4);
  return cookie;
}

/** Compares two byte strings in time that depends only on their length. */
function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * Checks that `cookie` was issued by this payee (`secret`) for exactly proposal `p`. Does not
 * check its age (see {@link checkCookieAge}): a repeat of a funding already taken is answered
 * however old its cookie.
 * @returns the height it was issued at.
 * @throws ProtocolError INVALID_COOKIE.
 */
export function verifyOpeningCookie(secret: Uint8Array, p: ProposalFields, cookie: Uint8Array): number {
  if (cookie.length !== COOKIE_BYTES) throw new ProtocolError('INVALID_COOKIE', `a cookie is ${COOKIE_BYTES} bytes`);
  const issuedHeight = new DataView(cookie.buffer, cookie.byteOffset, cookie.byteLength).getUint32(0);
  if (!constantTimeEqual(macOf(secret, p, issuedHeight), cookie.subarray(4))) {
    throw new ProtocolError('INVALID_COOKIE', 'the cookie does not match the proposal; send hello again');
  }
  return issuedHeight;
}

/**
 * A cookie is good for `lifetimeBlocks` blocks after it was issued (and, after a reorg to a
 * shorter chain, as many before).
 * @throws ProtocolError COOKIE_EXPIRED.
 */
export function checkCookieAge(issuedHeight: number, tipHeight: number, lifetimeBlocks: number): void {
  const age = tipHeight - issuedHeight;
  if (age > lifetimeBlocks || age < -lifetimeBlocks) {
    throw new ProtocolError('COOKIE_EXPIRED', `issued at height ${issuedHeight}, the tip is ${tipHeight}: good for ${lifetimeBlocks} blocks; send hello again`);
  }
}

/** @returns the payee's key index for the channel of `cookie`: {@link OPENING_KEY_INDEX_BASE} + 52 bits of its MAC. */
export function openingKeyIndex(cookie: Uint8Array): number {
  const v = new DataView(cookie.buffer, cookie.byteOffset, cookie.byteLength);
  return OPENING_KEY_INDEX_BASE + v.getUint32(4) * 2 ** 20 + (v.getUint32(8) >>> 12);
}
