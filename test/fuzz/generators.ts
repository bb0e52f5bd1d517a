/**
 * Hostile frames for the payee: every generator draws from a seeded {@link Prng} and the real
 * channels and frames in {@link FuzzTargets}, so what it sends looks like the real protocol
 * until the one detail that is wrong.
 *
 * Kinds (the `byKind` keys of the report):
 * - `field-mutation`: a message of any type built from real values, then 1–3 field mutations
 *   (wrong JSON types, out-of-range numbers, non-canonical hex and amounts, huge strings,
 *   unknown fields, wrong versions, missing fields, another type) and sometimes a text-level
 *   one (duplicate keys, number spellings, control characters, BOM, deep nesting).
 * - `byte-mutation`: a real captured frame with bit flips, truncation, duplication, insertion,
 *   deletion, or spliced with another frame.
 * - `out-of-order`: schema-valid messages in the wrong state (funding before hello, a refund
 *   request on an open channel, a payment for a channel waiting for confirmations, the payee's
 *   own messages sent back to it, a hello reusing a channel's tempId).
 * - `replay`: real payments replayed as they were, on another channel, with another total, or
 *   with another payment's signature; real hellos, refund requests and fundings replayed.
 * - `hello`: channel proposals with exactly one policy defect, and valid ones (a flood of open
 *   attempts: each accepted one costs the payee a key index and a stored row).
 * - `random-json`: random JSON values and objects with protocol-like keys.
 * - `binary`: binary frames. `near-limit`: frames up to exactly the 256 KiB limit.
 *   `oversized`: frames above it (ws closes with 1009). `invalid-utf8`: text frames that are
 *   not UTF-8 (ws closes with 1007).
 *
 * A generator may state the exact error code the payee must answer with (`code`); the oracle
 * (./oracle.ts) works out the rest from the frame itself.
 */
import { Transaction } from 'bitcoinjs-lib';
import type { Secp256k1 } from '../../src/crypto/secp256k1.js';
import { fundingScriptOf, makeChannel } from '../../src/protocol/channel.js';
import { toHex } from '../../src/protocol/bytes.js';
import { outputScriptType } from '../../src/protocol/dust.js';
import { PROTOCOL_ERROR_CODES, ProtocolError, type ProtocolErrorCode } from '../../src/protocol/errors.js';
import { MAX_MESSAGE_BYTES, type MessageType } from '../../src/protocol/messages.js';
import { checkPaymentTotal } from '../../src/protocol/payment.js';
import { refundTemplateHex } from '../../src/protocol/refund.js';
import type { Prng } from './prng.js';
import { allTempIds, type FundedTarget, type FuzzTargets, type WireEcho } from './targets.js';

export const FRAME_KINDS = [
  'field-mutation',
  'byte-mutation',
  'out-of-order',
  'replay',
  'hello',
  'random-json',
  'binary',
  'near-limit',
  'oversized',
  'invalid-utf8',
] as const;
export type FrameKind = (typeof FRAME_KINDS)[number];

/** Relative frequencies of the kinds (percent, roughly). */
export const KIND_WEIGHTS: Readonly<Record<FrameKind, number>> = Object.freeze({
  'field-mutation': 30,
  'byte-mutation': 20,
  'out-of-order': 15,
  replay: 13,
  hello: 6,
  'random-json': 8,
  binary: 3,
  'near-limit': 0.4,
  oversized: 0.25,
  'invalid-utf8': 0.25,
});

export interface Frame {
  readonly kind: FrameKind;
  /** What exactly was done, for samples in the report. */
  readonly label: string;
  /** A string is sent as a text frame; a Buffer as a text frame of those raw bytes, or binary. */
  readonly data: string | Buffer;
  readonly binary: boolean;
  /** The exact code the payee must answer with, when the generator knows it. */
  readonly code?: ProtocolErrorCode;
}

const MESSAGE_TYPES: readonly MessageType[] = [
  'hello',
  'accept',
  'refund-request',
  'refund-signature',
  'funding',
  'channel-open',
  'payment',
  'payment-ack',
  'close-request',
  'channel-closed',
  'status-request',
  'channel-status',
  'duplex-open',
  'duplex-update',
  'duplex-pay-request',
  'duplex-close',
  'error',
];
const ERROR_CODES = Object.keys(PROTOCOL_ERROR_CODES) as ProtocolErrorCode[];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = Record<string, Json>;

export class FrameGenerator {
  /** Kinds still to be emitted once each before drawing by weight (so every kind is covered). */
  private readonly cover: FrameKind[];

  constructor(
    private readonly r: Prng,
    private readonly t: FuzzTargets,
    private readonly secp: Secp256k1,
  ) {
    this.cover = [...FRAME_KINDS];
    for (let i = this.cover.length - 1; i > 0; i--) {
      const j = r.int(i + 1);
      [this.cover[i], this.cover[j]] = [this.cover[j]!, this.cover[i]!];
    }
  }

  next(): Frame {
    const kind = this.cover.pop() ?? this.r.weighted(KIND_WEIGHTS);
    switch (kind) {
      case 'field-mutation':
        return this.fieldMutation();
      case 'byte-mutation':
        return this.byteMutation();
      case 'out-of-order':
        return this.outOfOrder();
      case 'replay':
        return this.replay();
      case 'hello':
        return this.hello();
      case 'random-json':
        return this.randomJson();
      case 'binary':
        return this.binaryFrame();
      case 'near-limit':
        return this.nearLimit();
      case 'oversized':
        return this.oversized();
      case 'invalid-utf8':
        return this.invalidUtf8();
    }
  }

  // ---------------------------------------------------------------- real-looking values

  private tempId(): string {
    const r = this.r;
    const useOwn = r.chance(0.15);
    const own = [...this.t.ownTempIds];
    if (useOwn && own.length > 0) return own[r.int(own.length)]!;
    return r.chance(0.7) ? r.pick(allTempIds(this.t)) : r.hex(16);
  }

  private funded(): FundedTarget {
    return this.r.pick(this.t.funded);
  }

  private channelId(): string {
    return this.r.chance(0.75) ? this.funded().channel.id : `${this.r.hex(32)}:${this.r.int(3)}`;
  }

  private pubkeyHex(): string {
    const f = this.funded();
    return toHex(this.r.pick([this.t.helloPubkey, f.channel.payerPubkey, f.channel.payeePubkey]));
  }

  private signatureHex(): string {
    const payments = this.t.captures.payments();
    return payments.length > 0 && this.r.chance(0.6) ? this.r.pick(payments).signature : this.r.hex(64);
  }

  private totalSat(): string {
    const r = this.r;
    const payments = this.t.captures.payments();
    if (payments.length > 0 && r.chance(0.5)) return r.pick(payments).totalSat;
    return String(r.pick([0, 1, 546, 10_000, 20_000, 499_999, 500_000, 999_999, 1_000_000, r.int(2_000_000)]));
  }

  private fundingTx(): string {
    return this.r.pick(this.t.fundingTxs);
  }

  /** What an opening message echoes: mostly a real proposal's terms and cookie, else made up. */
  private opening(): { proposal: WireEcho; cookie: string } {
    const r = this.r;
    if (r.chance(0.8)) {
      const p = r.pick(this.t.pending);
      return { proposal: p.echo, cookie: p.cookie };
    }
    const proposal = {
      network: 'regtest',
      variant: r.pick(['spilman-v1', 'spilman-v2']),
      payerPubkey: this.pubkeyHex(),
      capacitySat: String(r.pick([10_000, 200_000, 1_000_000])),
      expiryHeight: this.t.tipHeight + r.range(10, 4320),
      payerScript: toHex(this.t.helloScript),
    };
    return { proposal, cookie: r.hex(20) };
  }

  /** tempIds of channels the payee holds (a proposal has none). */
  private fundedTempIds(): string[] {
    return this.t.funded.map((f) => f.tempId);
  }

  /** A message of `type` (random if not given) with plausible, mostly real, field values. */
  private base(type: MessageType = this.r.pick(MESSAGE_TYPES)): Obj {
    const r = this.r;
    const t = this.t;
    switch (type) {
      case 'hello':
        return {
          v: 1,
          type,
          tempId: r.chance(0.5) ? r.hex(16) : this.tempId(),
          network: 'regtest',
          variant: r.pick(['spilman-v1', 'spilman-v2']),
          payerPubkey: this.pubkeyHex(),
          capacitySat: String(r.pick([10_000, 50_000, 500_000, 1_000_000])),
          expiryHeight: t.tipHeight + r.range(10, 4320),
          payerScript: toHex(t.helloScript),
        };
      case 'accept':
        return { v: 1, type, tempId: this.tempId(), payeePubkey: this.pubkeyHex(), minFundingConfirmations: r.int(4), cookie: r.hex(20) };
      case 'refund-request': {
        const f = this.funded();
        return { v: 1, type, tempId: this.tempId(), ...this.opening(), fundingTxid: f.channel.funding.txid, fundingVout: f.channel.funding.vout, refundTx: r.pick(t.refundTemplates) };
      }
      case 'refund-signature':
        return { v: 1, type, tempId: this.tempId(), signature: this.signatureHex() };
      case 'funding':
        return { v: 1, type, tempId: this.tempId(), ...this.opening(), fundingTx: this.fundingTx() };
      case 'channel-open':
        return { v: 1, type, tempId: this.tempId(), channelId: this.channelId() };
      case 'payment': {
        const payments = t.captures.payments();
        if (payments.length > 0 && r.chance(0.6)) {
          const p = r.pick(payments);
          return { v: 1, type, channelId: p.channelId, totalSat: p.totalSat, signature: p.signature };
        }
        return { v: 1, type, channelId: this.channelId(), totalSat: this.totalSat(), signature: this.signatureHex() };
      }
      case 'payment-ack':
        return { v: 1, type, channelId: this.channelId(), totalSat: this.totalSat() };
      case 'close-request':
        return { v: 1, type, channelId: this.channelId() };
      case 'channel-closed':
        return { v: 1, type, channelId: this.channelId(), closeTxid: r.hex(32) };
      case 'status-request':
        return { v: 1, type, channelId: this.channelId() };
      case 'channel-status':
        return { v: 1, type, channelId: this.channelId(), state: r.pick(['AwaitingConfirmation', 'Open', 'Closing', 'Closed']), paidSat: this.totalSat() };
      case 'error': {
        const m: Obj = { v: 1, type, code: r.pick(ERROR_CODES), message: 'fuzz', action: r.pick(['reject', 'close']) };
        if (r.chance(0.6)) m.ref = r.chance(0.5) ? this.tempId() : this.channelId();
        return m;
      }
      case 'duplex-open':
        return {
          v: 1,
          type,
          tempId: r.hex(16),
          network: 'regtest',
          keyA: this.pubkeyHex(),
          scriptA: toHex(t.helloScript),
          contributionASat: String(r.pick([0, 10_000, 500_000])),
          contributionBSat: String(r.pick([0, 10_000])),
          initialLocktime: t.tipHeight + r.range(0, 700),
          deltaBlocks: r.pick([1, 6, 144]),
          stateFeeRateSatPerVb: r.pick([1, 2, 1000]),
          fundingFeeRateSatPerVb: 2,
          // Coins that do not exist: B must refuse them before showing any of its own.
          inputs: r.chance(0.5) ? [] : [{ txid: r.hex(32), vout: r.int(3), valueSat: String(r.pick([10_000, 600_000])) }],
          outputs: [],
        };
      case 'duplex-update':
        return { v: 1, type, channelId: this.channelId(), index: r.int(5), balanceASat: this.totalSat(), balanceBSat: this.totalSat(), signature: this.signatureHex() };
      case 'duplex-pay-request':
        return { v: 1, type, channelId: this.channelId(), amountSat: this.totalSat(), requestId: r.hex(16) };
      case 'duplex-close':
        return { v: 1, type, channelId: this.channelId(), index: r.int(5), feeRateSatPerVb: r.pick([1, 2]), signature: this.signatureHex() };
      default:
        return { v: 1, type, tempId: this.tempId(), channelId: this.channelId() };
    }
  }

  // ---------------------------------------------------------------- field mutations

  private wrongValue(): Json {
    const r = this.r;
    return r.pick<Json>([
      0,
      -1,
      1.5,
      true,
      false,
      null,
      [],
      {},
      '',
      'x',
      [1, 2],
      { a: 1 },
      1e308,
      -1e308,
      2 ** 53 + 2,
      'NaN',
      '1',
      r.hex(r.int(40)),
      [r.hex(4)],
      { $n: '1' },
      { $b: 'ab' },
    ]);
  }

  private badAmount(): Json {
    const r = this.r;
    return r.pick<Json>([
      '-1',
      '01',
      '00',
      '+1',
      '1.0',
      '1e3',
      ' 1',
      '1 ',
      '0x10',
      '',
      '1_000',
      '2100000000000001',
      '9999999999999999',
      '99999999999999999',
      '18446744073709551616',
      '１２',
      '\u0661',
      1000,
      -5,
      '1'.repeat(r.range(17, 400)),
    ]);
  }

  private badNumber(field: string): Json {
    const r = this.r;
    const candidates: Json[] = [-1, 1.5, 2 ** 53, -(2 ** 31), 2 ** 32, 1e21, '3', null];
    if (field === 'fundingVout') candidates.push(65536, 0xffffffff);
    if (field === 'expiryHeight') candidates.push(500_000_000, this.t.tipHeight + 1, this.t.tipHeight - 1, 0);
    if (field === 'minFundingConfirmations') candidates.push(101, 1000);
    if (field === 'v') candidates.push(0, 2, 255);
    return r.pick(candidates);
  }

  private badHex(value: string, field: string): string {
    const r = this.r;
    if (field === 'channelId') {
      const [txid = r.hex(32), vout = '0'] = value.split(':');
      return r.pick([
        `${txid}:0${vout}`,
        `${txid}:-1`,
        `${txid}:100000`,
        `${txid.toUpperCase()}:${vout}`,
        txid,
        `:${vout}`,
        `${txid}:${vout}:0`,
        `${txid.slice(2)}:${vout}`,
        `${txid}0:${vout}`,
        `${txid}:${vout} `,
        `0x${txid}:${vout}`,
      ]);
    }
    const s = value.length > 0 ? value : r.hex(8);
    const at = r.int(s.length);
    return r.pick([
      s.toUpperCase(),
      s.slice(0, -1),
      s + 'a',
      s.slice(0, -2),
      s + '00',
      `0x${s}`,
      ` ${s}`,
      `${s}\n`,
      s.slice(0, at) + 'g' + s.slice(at + 1),
      s.slice(0, at) + 'G' + s.slice(at + 1),
      s.slice(0, at) + 'A' + s.slice(at + 1),
      s.slice(0, at) + '-' + s.slice(at + 1),
      '',
      s + s,
    ]);
  }

  private hugeString(): string {
    const r = this.r;
    const n = r.pick([1000, 5000, 65_536, 150_000, 240_000]);
    return r.chance(0.5) ? 'a'.repeat(n) : r.hex(Math.floor(n / 2));
  }

  private mutateField(m: Obj): string {
    const r = this.r;
    const keys = Object.keys(m);
    const op = r.pick(['wrongType', 'badNumber', 'badAmount', 'badHex', 'huge', 'unknownField', 'wrongVersion', 'delete', 'changeType', 'badEnum'] as const);
    const key = r.pick(keys.filter((k) => k !== 'v' && k !== 'type').concat(['v', 'type']));
    switch (op) {
      case 'wrongType':
        m[key] = this.wrongValue();
        return `wrong type for ${key}`;
      case 'badNumber': {
        const numeric = keys.filter((k) => typeof m[k] === 'number');
        const k = numeric.length > 0 ? r.pick(numeric) : key;
        m[k] = this.badNumber(k);
        return `bad number ${k}`;
      }
      case 'badAmount': {
        const amounts = keys.filter((k) => k === 'capacitySat' || k === 'totalSat' || k === 'paidSat');
        const k = amounts.length > 0 ? r.pick(amounts) : key;
        m[k] = this.badAmount();
        return `bad amount ${k}`;
      }
      case 'badHex': {
        const hexes = keys.filter((k) => typeof m[k] === 'string' && /^[0-9a-f:]+$/.test(m[k] as string) && k !== 'type');
        const k = hexes.length > 0 ? r.pick(hexes) : key;
        m[k] = this.badHex(typeof m[k] === 'string' ? (m[k] as string) : '', k);
        return `non-canonical hex ${k}`;
      }
      case 'huge':
        m[key] = this.hugeString();
        return `huge ${key}`;
      case 'unknownField': {
        const name = r.pick(['extra', '__proto__', 'constructor', 'V', 'Type', 'toString', 'prototype', `x${r.int(1000)}`, '']);
        // An own property even for '__proto__' (plain assignment would set the prototype, and
        // JSON.stringify would then send the message unchanged).
        Object.defineProperty(m, name, { value: this.wrongValue(), enumerable: true, writable: true, configurable: true });
        return `unknown field ${name}`;
      }
      case 'wrongVersion':
        if (r.chance(0.15)) delete m.v;
        else m.v = r.pick<Json>([0, 2, -1, 1.5, '1', null, true, [], [1], {}, { toString: 1 }, { valueOf: {} }, 'v'.repeat(r.pick([3, 2000]))]);
        return 'wrong version';
      case 'delete':
        delete m[key];
        return `missing ${key}`;
      case 'changeType':
        m.type = r.chance(0.7) ? r.pick(MESSAGE_TYPES) : r.pick(['Hello', 'PAYMENT', 'ping', '', 'payment ', '__proto__', 'constructor', 't'.repeat(r.pick([10, 3000]))]);
        return `type changed to ${String(m.type).slice(0, 20)}`;
      case 'badEnum': {
        const enums = keys.filter((k) => k === 'network' || k === 'variant' || k === 'state' || k === 'action' || k === 'code');
        const k = enums.length > 0 ? r.pick(enums) : key;
        m[k] = r.pick(['', 'REGTEST', 'bitcoin', 'spilman-v3', 'spilman-v1 ', 'Open ', 'ignore', 'NOT_A_CODE', 'x'.repeat(r.pick([10, 3000]))]);
        return `bad enum ${k}`;
      }
    }
  }

  /** Text-level mutations a JSON object cannot express. */
  private mutateText(text: string): { text: string; label: string } {
    const r = this.r;
    const op = r.int(10);
    switch (op) {
      case 0:
        return { text: text.replace(/}$/, ',}'), label: 'trailing comma' };
      case 1:
        return { text: `\ufeff${text}`, label: 'BOM' };
      case 2:
        return { text: text.replace('{', '{"v":1,'), label: 'duplicate key' };
      case 3:
        return { text: text.replace('"v":1', `"v":${r.pick(['1.0', '1e0', '01', '-0', '1e999', '0x1', '+1', 'Infinity', 'NaN'])}`), label: 'number spelling' };
      case 4: {
        const at = r.int(text.length);
        return { text: text.slice(0, at) + String.fromCharCode(r.int(32)) + text.slice(at), label: 'control character' };
      }
      case 5:
        return { text: text.replace(/"([0-9a-f]{4,})"/, (_m, h: string) => `"\\u00${h.slice(0, 2)}${h.slice(2)}"`), label: 'unicode escape' };
      case 6:
        return { text: text.replace('"v":1', `"v":${'['.repeat(r.pick([50, 20_000]))}`), label: 'unbalanced nesting' };
      case 7: {
        const depth = r.pick([100, 5_000, 20_000]);
        return { text: text.replace('"v":1', `"v":${'['.repeat(depth)}${']'.repeat(depth)}`), label: `deep nesting ${depth}` };
      }
      case 8:
        return { text: `${text}${r.pick([' ', '\n', 'x', '{}', text])}`, label: 'trailing data' };
      default:
        return { text: text.replace(/"([a-zA-Z]+)":/, '"$1\\ud800":'), label: 'lone surrogate in a key' };
    }
  }

  fieldMutation(): Frame {
    const r = this.r;
    const m = this.base();
    const original = JSON.stringify(m);
    const labels: string[] = [`${String(m.type)}:`];
    for (let i = r.range(1, 3); i > 0; i--) labels.push(this.mutateField(m));
    // Mutations can undo each other (a field added, then deleted): a frame must differ from the
    // valid message it came from, or the oracle would hold a legitimate answer against it.
    while (JSON.stringify(m) === original) labels.push(this.mutateField(m));
    let text = JSON.stringify(m);
    if (r.chance(0.15)) {
      const t = this.mutateText(text);
      text = t.text;
      labels.push(t.label);
    }
    return { kind: 'field-mutation', label: labels.join(' '), data: this.capSize(text), binary: false };
  }

  /** Keeps generated texts under the size limit (oversized frames are their own kind). */
  private capSize(text: string): string {
    return Buffer.byteLength(text) <= MAX_MESSAGE_BYTES ? text : text.slice(0, MAX_MESSAGE_BYTES - 4096);
  }

  // ---------------------------------------------------------------- byte mutations

  private captured(): Buffer {
    const frames = this.t.captures.frames();
    return Buffer.from(this.r.pick(frames), 'utf8');
  }

  private mutateBytes(input: Buffer): { bytes: Buffer; label: string } {
    const r = this.r;
    let b = Buffer.from(input);
    const labels: string[] = [];
    for (let i = r.range(1, 4); i > 0; i--) {
      const at = b.length === 0 ? 0 : r.int(b.length);
      switch (r.int(8)) {
        case 0:
          if (b.length > 0) b[at] = b[at]! ^ (1 << r.int(8));
          labels.push('bit flip');
          break;
        case 1:
          if (b.length > 0) b[at] = r.int(256);
          labels.push('byte set');
          break;
        case 2:
          b = b.subarray(0, at);
          labels.push('truncated');
          break;
        case 3: {
          const len = r.range(1, 64);
          b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + len), b.subarray(at)]);
          labels.push('duplicated slice');
          break;
        }
        case 4:
          b = Buffer.concat([b.subarray(0, at), Buffer.from(r.bytes(r.range(1, 16))), b.subarray(at)]);
          labels.push('inserted bytes');
          break;
        case 5:
          b = Buffer.concat([b.subarray(0, at), b.subarray(at + r.range(1, 32))]);
          labels.push('deleted slice');
          break;
        case 6: {
          const other = this.captured();
          b = Buffer.concat([b.subarray(0, at), other.subarray(r.int(other.length))]);
          labels.push('spliced');
          break;
        }
        default: {
          // Swap two digits of a hex run: keeps the frame well-formed, changes a value.
          const s = b.toString('latin1');
          const j = s.search(/[0-9a-f]{8}/);
          if (j >= 0) {
            const k = j + r.int(8);
            const chars = s.split('');
            chars[k] = r.pick([...'0123456789abcdef']);
            b = Buffer.from(chars.join(''), 'latin1');
          }
          labels.push('hex digit changed');
        }
      }
    }
    return { bytes: b, label: labels.join(', ') };
  }

  byteMutation(): Frame {
    const { bytes, label } = this.mutateBytes(this.captured());
    // Invalid UTF-8 closes the connection (its own kind); here the bytes are read as UTF-8.
    return { kind: 'byte-mutation', label, data: this.capSize(bytes.toString('utf8')), binary: false };
  }

  // ---------------------------------------------------------------- protocol order

  private pickFunded(states: FundedTarget['payeeState'][]): FundedTarget | undefined {
    const matching = this.t.funded.filter((f) => states.includes(f.payeeState));
    return matching.length > 0 ? this.r.pick(matching) : undefined;
  }

  outOfOrder(): Frame {
    const r = this.r;
    const t = this.t;
    const frame = (label: string, m: Obj, code?: ProtocolErrorCode): Frame => ({ kind: 'out-of-order', label, data: JSON.stringify(m), binary: false, code });
    /** Also what a case sends when the channel it needs is not there. */
    // A cookie vouches for its proposal's tempId too: under another tempId it is refused first.
    const fundingBeforeHello = () => frame('funding under another proposal’s cookie', { v: 1, type: 'funding', tempId: r.hex(16), ...this.opening(), fundingTx: this.fundingTx() }, 'INVALID_COOKIE');
    const pendingRefund = t.pending.find((p) => p.terms.variant === 'spilman-v1');
    switch (r.int(15)) {
      case 14: {
        // A funding that pays the v2 proposal exactly, with a signed-looking segwit input that
        // does not exist: it passes the payee's checks, the node refuses it, and the payee must
        // hold nothing afterwards.
        const waiting = t.pending.find((p) => p.terms.variant === 'spilman-v2');
        if (!waiting) return fundingBeforeHello();
        const tx = new Transaction();
        tx.version = 2;
        tx.addInput(r.bytes(32), r.int(4), 0xfffffffd);
        tx.setWitness(0, [r.bytes(72), Uint8Array.from([2, ...r.bytes(32)])]);
        tx.addOutput(fundingScriptOf(waiting.terms).fundingScript, waiting.terms.capacitySat);
        if (r.chance(0.5)) tx.addOutput(t.helloScript, BigInt(r.range(1_000, 100_000)));
        return frame('funding spending a coin that does not exist', { v: 1, type: 'funding', tempId: waiting.tempId, proposal: waiting.echo, cookie: waiting.cookie, fundingTx: tx.toHex() }, 'FUNDING_REJECTED');
      }
      case 0:
        return fundingBeforeHello();
      case 1: {
        // Another channel's funding under a proposal's real cookie: not this channel's funding.
        const p = r.pick(t.pending);
        return frame('another channel’s funding for a proposal', { v: 1, type: 'funding', tempId: p.tempId, proposal: p.echo, cookie: p.cookie, fundingTx: this.fundingTx() }, 'FUNDING_MISMATCH');
      }
      case 2: {
        // A funded channel's tempId under a proposal's cookie: the cookie covers the tempId.
        const f = this.funded();
        const p = r.pick(t.pending);
        return frame(
          'refund-request under another proposal’s cookie',
          { v: 1, type: 'refund-request', tempId: r.pick(this.fundedTempIds()), proposal: p.echo, cookie: p.cookie, fundingTxid: f.channel.funding.txid, fundingVout: f.channel.funding.vout, refundTx: refundTemplateHex(f.channel) },
          'INVALID_COOKIE',
        );
      }
      case 3: {
        const f = this.pickFunded(['AwaitingConfirmation', 'Closing', 'Closed']) ?? this.funded();
        const code = f.payeeState === 'Open' ? undefined : 'CHANNEL_NOT_OPEN';
        return frame(`payment for a ${f.payeeState} channel`, { v: 1, type: 'payment', channelId: f.channel.id, totalSat: this.totalSat(), signature: this.signatureHex() }, code);
      }
      case 4:
        return frame('payment for an unknown channel', { v: 1, type: 'payment', channelId: `${r.hex(32)}:${r.int(2)}`, totalSat: '20000', signature: this.signatureHex() }, 'UNKNOWN_CHANNEL');
      case 5: {
        const type = r.pick(['accept', 'refund-signature', 'channel-open'] as const);
        const known = r.chance(0.7);
        const m = this.base(type);
        m.tempId = known ? r.pick(this.fundedTempIds()) : r.hex(16);
        return frame(`${type} sent to the payee`, m, known ? 'UNEXPECTED_MESSAGE' : 'UNKNOWN_CHANNEL');
      }
      case 6: {
        const type = r.pick(['payment-ack', 'channel-closed', 'channel-status'] as const);
        const known = r.chance(0.7);
        const m = this.base(type);
        m.channelId = known ? this.funded().channel.id : `${r.hex(32)}:1`;
        return frame(`${type} sent to the payee`, m, known ? 'UNEXPECTED_MESSAGE' : 'UNKNOWN_CHANNEL');
      }
      case 7: {
        const f = this.pickFunded(['AwaitingConfirmation']);
        // Not this channel's authenticated connection: refused before its state is looked at.
        if (f) return frame('close-request before the channel is open', { v: 1, type: 'close-request', channelId: f.channel.id }, 'AUTH_REQUIRED');
        return frame('close-request for an unknown channel', { v: 1, type: 'close-request', channelId: `${r.hex(32)}:0` }, 'UNKNOWN_CHANNEL');
      }
      case 8:
        return frame('close-request for an unknown channel', { v: 1, type: 'close-request', channelId: `${r.hex(32)}:${r.int(5)}` }, 'UNKNOWN_CHANNEL');
      case 9: {
        const f = this.pickFunded(['Closing', 'Closed']);
        // Only the channel's authenticated connection may ask, whatever the state (issue 13).
        return frame('close-request on a closing channel', { v: 1, type: 'close-request', channelId: (f ?? this.funded()).channel.id }, 'AUTH_REQUIRED');
      }
      case 10: {
        const pick = r.int(4);
        if (pick === 0) return frame('status-request from a stranger', { v: 1, type: 'status-request', channelId: this.funded().channel.id }, 'AUTH_REQUIRED');
        // A signature that is not the payer's over this connection's challenge (a replayed auth
        // from another connection is the same to the payee).
        if (pick === 1) return frame('auth with a forged signature', { v: 1, type: 'auth', tempId: this.funded().tempId, signature: this.signatureHex() }, 'AUTH_INVALID');
        if (pick === 2) return frame('auth for an unknown channel', { v: 1, type: 'auth', tempId: r.hex(16), signature: this.signatureHex() }, 'UNKNOWN_CHANNEL');
        return frame('status-request for an unknown channel', { v: 1, type: 'status-request', channelId: `${r.hex(32)}:0` }, 'UNKNOWN_CHANNEL');
      }
      case 11: {
        const m = this.base('hello');
        m.tempId = r.pick(this.fundedTempIds());
        return frame('hello reusing a channel tempId', m, 'DUPLICATE_CHANNEL');
      }
      case 12: {
        // A v1 refund request for the proposal waiting for one, but for another locktime or outpoint.
        if (!pendingRefund) return fundingBeforeHello();
        const funding = { txid: r.hex(32), vout: r.int(3) };
        const tx = Transaction.fromHex(refundTemplateHex(makeChannel(pendingRefund.terms, funding)));
        const defect = r.int(4);
        let code: ProtocolErrorCode;
        if (defect === 0) {
          tx.locktime = pendingRefund.terms.expiryHeight + r.pick([-1, 1, -100]);
          code = 'REFUND_LOCKTIME_MISMATCH';
        } else if (defect === 1) {
          tx.ins[0]!.index += 1;
          code = 'REFUND_WRONG_OUTPOINT';
        } else if (defect === 2) {
          tx.ins[0]!.sequence = r.pick([0xffffffff, 0xfffffffe, 0]);
          code = 'REFUND_SEQUENCE_INVALID';
        } else {
          tx.version = r.pick([1, 3]);
          code = 'REFUND_VERSION_INVALID';
        }
        const request = { v: 1, type: 'refund-request', tempId: pendingRefund.tempId, proposal: pendingRefund.echo, cookie: pendingRefund.cookie };
        return frame('refund-request with a wrong template', { ...request, fundingTxid: funding.txid, fundingVout: funding.vout, refundTx: tx.toHex() }, code);
      }
      default: {
        const m = this.base('error');
        return frame('error sent to the payee', m);
      }
    }
  }

  // ---------------------------------------------------------------- replays

  /** The exact code for a payment on a channel whose paid total is fixed during the run. */
  private paymentCode(target: FundedTarget | undefined, totalSat: bigint, signature: string): ProtocolErrorCode | undefined {
    if (!target) return 'UNKNOWN_CHANNEL';
    if (target.payeeState !== 'Open') return 'CHANNEL_NOT_OPEN';
    if (target.paidSat === null) return undefined; // the honest channel moves during the run
    if (this.t.captures.isGenuinePayment(target.channel.id, totalSat, signature)) return undefined;
    if (totalSat === target.paidSat) return 'AMOUNT_NOT_INCREASING';
    try {
      checkPaymentTotal(target.channel, target.paidSat, totalSat);
    } catch (err) {
      return err instanceof ProtocolError ? err.code : undefined;
    }
    return 'INVALID_SIGNATURE';
  }

  replay(): Frame {
    const r = this.r;
    const t = this.t;
    const payments = t.captures.payments();
    const targetOf = (id: string) => t.funded.find((f) => f.channel.id === id);
    const frame = (label: string, m: Obj, code?: ProtocolErrorCode): Frame => ({ kind: 'replay', label, data: JSON.stringify(m), binary: false, code });
    const op = r.int(6);
    if (op <= 3 && payments.length > 0) {
      const p = r.pick(payments);
      let channelId = p.channelId;
      let total = BigInt(p.totalSat);
      let signature = p.signature;
      let label = 'payment replayed';
      if (op === 1) {
        channelId = r.chance(0.8) ? this.funded().channel.id : `${r.hex(32)}:0`;
        label = 'payment replayed on another channel';
      } else if (op === 2) {
        total = total + BigInt(r.pick([1, 2, 100, 10_000, -1, -1000]));
        if (total < 0n) total = 0n;
        label = 'payment replayed with another total';
      } else if (op === 3) {
        signature = r.pick(payments).signature;
        label = "payment replayed with another payment's signature";
      }
      const code = this.paymentCode(targetOf(channelId), total, signature);
      return frame(label, { v: 1, type: 'payment', channelId, totalSat: total.toString(), signature }, code);
    }
    // A real payer frame replayed as it was.
    const frames = t.captures.frames().filter((f) => /"type":"(hello|refund-request|funding|status-request)"/.test(f));
    if (frames.length === 0) return this.outOfOrder();
    const text = r.pick(frames);
    const type = /"type":"([a-z-]+)"/.exec(text)?.[1];
    // A repeat of a real step: the oracle knows what may answer it.
    return { kind: 'replay', label: `${type ?? '?'} replayed`, data: text, binary: false };
  }

  // ---------------------------------------------------------------- hellos

  hello(): Frame {
    const r = this.r;
    const t = this.t;
    const m: Obj = {
      v: 1,
      type: 'hello',
      tempId: r.hex(16),
      network: 'regtest',
      variant: r.pick(['spilman-v1', 'spilman-v2']),
      payerPubkey: toHex(t.helloPubkey),
      capacitySat: String(r.range(10_000, 100_000_000)),
      expiryHeight: t.tipHeight + r.range(10, 4320),
      payerScript: toHex(t.helloScript),
    };
    let code: ProtocolErrorCode | undefined;
    let label = 'valid hello (open attempt)';
    switch (r.int(14)) {
      case 0:
        m.network = r.pick(['testnet', 'signet', 'mainnet']);
        code = 'WRONG_NETWORK';
        label = 'hello on another network';
        break;
      case 1: {
        const key = Uint8Array.from([r.pick([2, 3, 4, 0, 5]), ...r.bytes(32)]);
        m.payerPubkey = toHex(key);
        code = this.secp.isPublicKey(key) ? undefined : 'INVALID_PUBKEY';
        label = code ? 'hello with an invalid pubkey' : 'valid hello (random pubkey)';
        break;
      }
      case 2: {
        const script = r.bytes(r.range(1, 42));
        if (r.chance(0.5)) script[0] = r.pick([0x00, 0x51, 0x76, 0xa9]);
        m.payerScript = toHex(script);
        const type = outputScriptType(script);
        code = type === null || type === 'p2a' ? 'INVALID_SCRIPT' : undefined;
        label = code ? 'hello with a non-standard payer script' : 'valid hello (random script)';
        break;
      }
      case 3:
        m.payerScript = '51024e73';
        code = 'INVALID_SCRIPT';
        label = 'hello paying to P2A';
        break;
      case 4:
        m.capacitySat = String(r.range(0, 9_999));
        code = 'CAPACITY_TOO_SMALL';
        label = 'hello below the minimum capacity';
        break;
      case 5:
        m.capacitySat = String(r.pick([100_000_001, 2_100_000_000_000_000, r.range(100_000_001, 2 ** 40)]));
        code = 'CAPACITY_TOO_LARGE';
        label = 'hello above the maximum capacity';
        break;
      case 6:
        m.expiryHeight = r.range(0, t.tipHeight + 9);
        code = 'EXPIRY_TOO_SOON';
        label = 'hello expiring too soon';
        break;
      case 7:
        m.expiryHeight = t.tipHeight + r.range(4321, 1_000_000);
        code = 'EXPIRY_TOO_LATE';
        label = 'hello expiring too late';
        break;
      default:
        break;
    }
    return { kind: 'hello', label, data: JSON.stringify(m), binary: false, code };
  }

  // ---------------------------------------------------------------- random JSON

  private randomValue(depth: number): Json {
    const r = this.r;
    const keys = ['v', 'type', 'tempId', 'channelId', 'totalSat', 'signature', 'fundingTx', 'network', 'code', 'a', '', '__proto__'];
    switch (depth <= 0 ? r.int(4) : r.int(7)) {
      case 0:
        return r.pick([null, true, false]);
      case 1:
        return r.pick([0, 1, -1, 1.5, 1e300, r.int(1e9)]);
      case 2:
        return r.pick(['', 'payment', 'hello', r.hex(r.int(40)), '\u0000', '\ud83d\ude00', 'x'.repeat(r.int(100))]);
      case 3:
        return r.chance(0.5) ? this.totalSat() : this.channelId();
      case 4:
      case 5: {
        const o: Obj = {};
        for (let i = r.int(6); i > 0; i--) o[r.pick(keys)] = this.randomValue(depth - 1);
        return o;
      }
      default:
        return Array.from({ length: r.int(5) }, () => this.randomValue(depth - 1));
    }
  }

  randomJson(): Frame {
    const r = this.r;
    let value: Json;
    if (r.chance(0.6)) {
      const o: Obj = { v: 1, type: r.pick(MESSAGE_TYPES) };
      for (let i = r.int(6); i > 0; i--) o[r.pick(['tempId', 'channelId', 'totalSat', 'signature', 'fundingTx', 'network', 'variant', 'code', 'message', 'action', 'ref', 'x'])] = this.randomValue(2);
      value = o;
    } else {
      value = this.randomValue(3);
    }
    return { kind: 'random-json', label: 'random JSON', data: JSON.stringify(value) ?? 'undefined', binary: false };
  }

  // ---------------------------------------------------------------- frames the socket layer refuses

  binaryFrame(): Frame {
    const r = this.r;
    const data = r.chance(0.5) ? this.captured() : Buffer.from(r.bytes(r.int(512)));
    return { kind: 'binary', label: 'binary frame', data, binary: true, code: 'MALFORMED_MESSAGE' };
  }

  nearLimit(): Frame {
    const r = this.r;
    const t = this.t;
    const op = r.int(3);
    if (op === 0) {
      // A schema-valid message padded with whitespace to exactly the limit: still a message.
      const m = JSON.stringify({ v: 1, type: 'status-request', channelId: this.funded().channel.id });
      return { kind: 'near-limit', label: 'valid message padded to exactly 256 KiB', data: m + ' '.repeat(MAX_MESSAGE_BYTES - m.length), binary: false };
    }
    if (op === 1) {
      // The largest funding the schema admits, full of garbage, for a proposal waiting for funding.
      const p = r.pick(t.pending);
      const fundingTx = r.hex(100_000);
      return { kind: 'near-limit', label: '100 kB garbage funding tx', data: JSON.stringify({ v: 1, type: 'funding', tempId: p.tempId, proposal: p.echo, cookie: p.cookie, fundingTx }), binary: false };
    }
    const size = r.range(200_000, MAX_MESSAGE_BYTES);
    const m = JSON.stringify({ v: 1, type: 'payment', channelId: this.funded().channel.id, totalSat: '1', signature: '' });
    const filler = 'f'.repeat(size - m.length);
    return { kind: 'near-limit', label: 'near-limit huge signature', data: m.replace('"signature":""', `"signature":"${filler}"`).slice(0, MAX_MESSAGE_BYTES), binary: false };
  }

  oversized(): Frame {
    const r = this.r;
    const over = r.pick([1, 2, 100, 65_536, 1_000_000]);
    const m = JSON.stringify({ v: 1, type: 'status-request', channelId: this.funded().channel.id });
    const binary = r.chance(0.2);
    const text = m + ' '.repeat(MAX_MESSAGE_BYTES + over - m.length);
    return { kind: 'oversized', label: `${over} bytes over the limit${binary ? ' (binary)' : ''}`, data: binary ? Buffer.from(text) : text, binary };
  }

  invalidUtf8(): Frame {
    const r = this.r;
    const b = this.captured();
    const bad = r.pick([[0xff], [0xc3], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82]]);
    const at = r.int(b.length + 1);
    return { kind: 'invalid-utf8', label: 'text frame that is not UTF-8', data: Buffer.concat([b.subarray(0, at), Buffer.from(bad), b.subarray(at)]), binary: false };
  }
}

