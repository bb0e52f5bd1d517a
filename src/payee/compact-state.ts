/**
 * A compact in-memory form of an idle open payee channel: ~250 bytes in one string instead of a
 * graph of objects and nine Uint8Arrays (~2 KB). A payee holding 100,000 idle channels keeps
 * them packed and unpacks a channel when it is used (see channel-entry.ts).
 */
import { fromHex, toHex } from '../protocol/bytes.js';
import { makeChannel, type ChannelTerms } from '../protocol/channel.js';
import { NETWORK_NAMES } from '../protocol/network.js';
import type { PayeeState } from '../protocol/payee-machine.js';
import { VARIANT_NAMES } from '../protocol/variants/index.js';

const FORMAT = 2;
const TYPES = ['Open', 'Suspended'] as const;
type Packable = Extract<PayeeState, { type: (typeof TYPES)[number] }>;

/** @returns the packed form, or null for a state this form does not cover (it stays unpacked). */
export function packState(state: PayeeState): string | null {
  if (state.type !== 'Open' && state.type !== 'Suspended') return null;
  const c = state.channel;
  if (!/^[0-9a-f]{32}$/.test(state.tempId) || c.payerScript.length > 255 || c.payerPubkey.length !== 33 || c.payeePubkey.length !== 33) return null;
  const size = 1 + 1 + 1 + 1 + 16 + 8 + 33 + 33 + 8 + 4 + 1 + c.payerScript.length + 32 + 4 + 8 + 1 + (state.signature ? 64 : 0);
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  let o = 0;
  b[o++] = FORMAT;
  b[o++] = TYPES.indexOf(state.type);
  b[o++] = VARIANT_NAMES.indexOf(c.variant);
  b[o++] = NETWORK_NAMES.indexOf(c.network);
  b.set(fromHex(state.tempId), o);
  o += 16;
  // A float64 holds every key index exactly (opening keys go up to 2^53, see opening-cookie.ts).
  v.setFloat64(o, state.keyIndex);
  o += 8;
  b.set(c.payerPubkey, o);
  o += 33;
  b.set(c.payeePubkey, o);
  o += 33;
  v.setBigUint64(o, c.capacitySat);
  o += 8;
  v.setUint32(o, c.expiryHeight);
  o += 4;
  b[o++] = c.payerScript.length;
  b.set(c.payerScript, o);
  o += c.payerScript.length;
  b.set(fromHex(c.funding.txid), o);
  o += 32;
  v.setUint32(o, c.funding.vout);
  o += 4;
  v.setBigUint64(o, state.paidSat);
  o += 8;
  b[o++] = state.signature ? 1 : 0;
  if (state.signature) b.set(state.signature, o);
  // One byte per char, built in one call: a flat one-byte string (appending char by char would
  // leave a rope of ~170 nodes, several times larger than the channel it packs).
  return String.fromCharCode(...b);
}

/** @throws Error if `packed` is not a form {@link packState} made. */
export function unpackState(packed: string): PayeeState {
  const b = new Uint8Array(packed.length);
  for (let i = 0; i < packed.length; i++) b[i] = packed.charCodeAt(i);
  const v = new DataView(b.buffer);
  let o = 0;
  if (b[o++] !== FORMAT) throw new Error('unknown packed channel format');
  const type = TYPES[b[o++]!]!;
  const variant = VARIANT_NAMES[b[o++]!]!;
  const network = NETWORK_NAMES[b[o++]!]!;
  const tempId = toHex(b.subarray(o, o + 16));
  o += 16;
  const keyIndex = v.getFloat64(o);
  o += 8;
  const payerPubkey = b.slice(o, o + 33);
  o += 33;
  const payeePubkey = b.slice(o, o + 33);
  o += 33;
  const capacitySat = v.getBigUint64(o);
  o += 8;
  const expiryHeight = v.getUint32(o);
  o += 4;
  const scriptLength = b[o++]!;
  const payerScript = b.slice(o, o + scriptLength);
  o += scriptLength;
  const txid = toHex(b.subarray(o, o + 32));
  o += 32;
  const vout = v.getUint32(o);
  o += 4;
  const paidSat = v.getBigUint64(o);
  o += 8;
  const signature = b[o++] === 1 ? b.slice(o, o + 64) : null;
  const terms: ChannelTerms = { variant, network, payerPubkey, payeePubkey, capacitySat, expiryHeight, payerScript };
  const state: Packable = { tempId, terms, keyIndex, type, channel: makeChannel(terms, { txid, vout }), paidSat, signature };
  return state;
}
