/**
 * The payment path's wire form in bytes: payments and acknowledgements written straight into a
 * caller's buffer, and read straight from a frame's bytes.
 *
 * Why: these two messages are what a channel carries thousands of times a second, and their
 * string forms (a template string, its UTF-8 copy for the socket; on the way in the frame's text,
 * a regex match and its substrings) were about a fifth of what a payment allocated on each side
 * (docs/design.md, "Garbage per payment"). The bytes are exactly what {@link encodeMessage} writes
 * and what {@link decodeMessage} accepts on its hot path: the same field order, lowercase hex,
 * canonical amounts (test/unit/wire-bytes.test.ts holds them equal); any other spelling, and every
 * other message, takes the general (schema) path. A channel id read from bytes is interned by a
 * {@link WireIds} (one per connection), so a payment does not allocate its channel's id again.
 */
import { decodeMessage, MAX_MESSAGE_BYTES, MAX_MONEY_SAT, PROTOCOL_VERSION, type Message } from './messages.js';
import { ProtocolError } from './errors.js';

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const PAYMENT_HEAD = ascii('{"v":1,"type":"payment","channelId":"');
const ACK_HEAD = ascii('{"v":1,"type":"payment-ack","channelId":"');
const TOTAL_KEY = ascii('","totalSat":"');
const SIGNATURE_KEY = ascii('","signature":"');
const END = ascii('"}');
const HEX = ascii('0123456789abcdef');
/** Longest hot-path frame: a payment with a 5-digit vout and a 16-digit total (255 bytes). */
export const MAX_HOT_FRAME_BYTES = PAYMENT_HEAD.length + 64 + 1 + 5 + TOTAL_KEY.length + 16 + SIGNATURE_KEY.length + 128 + END.length;
const MAX_MONEY = Number(MAX_MONEY_SAT); // < 2^53: every amount on the wire is an exact Number
// ignoreBOM keeps a leading byte-order mark in the text, as Buffer's toString does: JSON.parse
// then refuses it, as the text path always has.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Writes the wire form of a `payment` or `payment-ack` into `out` at `at`.
 * @returns the number of bytes written, or -1 when `message` is another type, does not fit, or
 *   has a field the hot path does not write (the caller then sends {@link encodeMessage}'s text).
 */
export function encodeHotPathInto(message: Message, out: Uint8Array, at: number): number {
  const payment = message.type === 'payment';
  if (!payment && message.type !== 'payment-ack') return -1;
  if (out.length - at < MAX_HOT_FRAME_BYTES || message.v !== PROTOCOL_VERSION) return -1;
  const id = message.channelId;
  const total = message.totalSat;
  if (!isWireChannelId(id) || total < 0n || total > MAX_MONEY_SAT) return -1;
  if (payment && message.signature.length !== 64) return -1;
  let p = put(out, at, payment ? PAYMENT_HEAD : ACK_HEAD);
  for (let i = 0; i < id.length; i++) out[p++] = id.charCodeAt(i);
  p = put(out, p, TOTAL_KEY);
  p = putDecimal(out, p, Number(total));
  if (payment) {
    p = put(out, p, SIGNATURE_KEY);
    const sig = message.signature;
    for (let i = 0; i < 64; i++) {
      out[p++] = HEX[sig[i]! >> 4]!;
      out[p++] = HEX[sig[i]! & 15]!;
    }
  }
  return put(out, p, END) - at;
}

/**
 * Interns channel ids read from frames: a payer's frames name the same few channels again and
 * again, so each id string is made once and found again by a compare of its bytes. Bounded:
 * past `maxIds` it starts over.
 */
export class WireIds {
  private readonly byKey = new Map<number, string>();

  constructor(private readonly maxIds = 4096) {}

  /** The id spelled by `bytes[start, end)` (ASCII, checked by the caller). */
  intern(bytes: Uint8Array, start: number, end: number): string {
    // A key from the txid's first 7 hex digits (28 bits: a small integer) and the vout's digits.
    let key = 0;
    for (let i = start; i < start + 7; i++) key = key * 16 + hexValue(bytes[i]!);
    for (let i = start + 65; i < end; i++) key = (key * 31 + bytes[i]!) & 0x0fffffff;
    const known = this.byKey.get(key);
    if (known !== undefined && sameAscii(known, bytes, start, end)) return known;
    const id = latin1(bytes, start, end);
    if (this.byKey.size >= this.maxIds) this.byKey.clear();
    this.byKey.set(key, id);
    return id;
  }
}

/**
 * Parses and validates one wire message from its UTF-8 bytes: payments and acks in the form
 * {@link encodeHotPathInto} writes are read from the bytes, anything else goes through
 * {@link decodeMessage} (the same checks, the same errors).
 * @param ids where channel ids are interned (one per connection); none: a fresh string each time.
 * @throws ProtocolError as {@link decodeMessage}; MALFORMED_MESSAGE for bytes that are not UTF-8.
 */
export function decodeMessageBytes(bytes: Uint8Array, ids?: WireIds): Message {
  if (bytes.length > MAX_MESSAGE_BYTES) throw new ProtocolError('MESSAGE_TOO_LARGE', `${bytes.length} > ${MAX_MESSAGE_BYTES} bytes`);
  const fast = bytes.length <= MAX_HOT_FRAME_BYTES ? decodeHotPathBytes(bytes, ids) : null;
  if (fast) return fast;
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new ProtocolError('MALFORMED_MESSAGE', 'not UTF-8');
  }
  return decodeMessage(text);
}

function decodeHotPathBytes(b: Uint8Array, ids: WireIds | undefined): Message | null {
  const payment = startsWith(b, 0, PAYMENT_HEAD);
  if (!payment && !startsWith(b, 0, ACK_HEAD)) return null;
  const idStart = payment ? PAYMENT_HEAD.length : ACK_HEAD.length;
  // txid: 64 lowercase hex digits, ':', vout: 0 or 1–5 digits without a leading zero, ≤ 0xffff.
  for (let i = idStart; i < idStart + 64; i++) if (hexValue(b[i] ?? 0) < 0) return null;
  if (b[idStart + 64] !== 0x3a) return null;
  const voutEnd = digitsEnd(b, idStart + 65, 5);
  if (voutEnd < 0 || readNumber(b, idStart + 65, voutEnd) > 0xffff) return null;
  if (!startsWith(b, voutEnd, TOTAL_KEY)) return null;
  const totalStart = voutEnd + TOTAL_KEY.length;
  const totalEnd = digitsEnd(b, totalStart, 16);
  if (totalEnd < 0) return null;
  const total = readNumber(b, totalStart, totalEnd);
  if (total > MAX_MONEY) return null;
  let signature: Uint8Array | null = null;
  let end = totalEnd;
  if (payment) {
    if (!startsWith(b, end, SIGNATURE_KEY)) return null;
    const sigStart = end + SIGNATURE_KEY.length;
    signature = new Uint8Array(64);
    for (let i = 0; i < 64; i++) {
      const hi = hexValue(b[sigStart + 2 * i] ?? 0);
      const lo = hexValue(b[sigStart + 2 * i + 1] ?? 0);
      if (hi < 0 || lo < 0) return null;
      signature[i] = (hi << 4) | lo;
    }
    end = sigStart + 128;
  }
  if (end + END.length !== b.length || !startsWith(b, end, END)) return null;
  const channelId = ids ? ids.intern(b, idStart, voutEnd) : latin1(b, idStart, voutEnd);
  const totalSat = BigInt(total);
  if (signature) return { v: PROTOCOL_VERSION, type: 'payment', channelId, totalSat, signature };
  return { v: PROTOCOL_VERSION, type: 'payment-ack', channelId, totalSat };
}

/** Whether `id` is `txid:vout` as the schema takes it (64 lowercase hex, a canonical vout ≤ 0xffff). */
function isWireChannelId(id: string): boolean {
  if (id.length < 66 || id.length > 70 || id.charCodeAt(64) !== 0x3a) return false;
  for (let i = 0; i < 64; i++) if (hexValue(id.charCodeAt(i)) < 0) return false;
  let vout = 0;
  for (let i = 65; i < id.length; i++) {
    const d = id.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9 || (i === 65 && d === 0 && id.length > 66)) return false;
    vout = vout * 10 + d;
  }
  return vout <= 0xffff;
}

/** 0–15 for a lowercase hex digit, else -1. */
function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** End of a canonical decimal (0, or 1–`max` digits without a leading zero) at `start`, or -1. */
function digitsEnd(b: Uint8Array, start: number, max: number): number {
  let i = start;
  while (i < b.length && i - start < max + 1 && b[i]! >= 0x30 && b[i]! <= 0x39) i++;
  const n = i - start;
  if (n === 0 || n > max || (n > 1 && b[start] === 0x30)) return -1;
  return i;
}

function readNumber(b: Uint8Array, start: number, end: number): number {
  let n = 0;
  for (let i = start; i < end; i++) n = n * 10 + (b[i]! - 0x30);
  return n;
}

function startsWith(b: Uint8Array, at: number, prefix: Uint8Array): boolean {
  if (b.length - at < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (b[at + i] !== prefix[i]) return false;
  return true;
}

function sameAscii(s: string, b: Uint8Array, start: number, end: number): boolean {
  if (s.length !== end - start) return false;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) !== b[start + i]) return false;
  return true;
}

/** The ASCII text of `b[start, end)`. */
function latin1(b: Uint8Array, start: number, end: number): string {
  return utf8.decode(b.subarray(start, end));
}

function put(out: Uint8Array, at: number, bytes: Uint8Array): number {
  out.set(bytes, at);
  return at + bytes.length;
}

/** Writes `n` (a non-negative integer below 2^53) in decimal. */
function putDecimal(out: Uint8Array, at: number, n: number): number {
  let digits = 1;
  for (let m = n; m >= 10; m = Math.floor(m / 10)) digits++;
  for (let i = at + digits - 1, m = n; i >= at; i--, m = Math.floor(m / 10)) out[i] = 0x30 + (m % 10);
  return at + digits;
}
