/**
 * The wire messages between payer and payee, and their codec.
 *
 * Encoding: one UTF-8 JSON object per message, `{"v":1,"type":...}`; bytes as lowercase hex,
 * satoshi amounts as decimal strings (JSON numbers lose precision past 2^53), heights as numbers.
 * Every message is size-limited and parsed by a strict schema before the core sees it: unknown
 * fields, wrong types, non-canonical hex or amounts are MALFORMED_MESSAGE. After decoding, the
 * core trusts the types (not the values: policy checks are the state machines' job).
 */
import * as v from 'valibot';
import { fromHex, toHex } from './bytes.js';
import { ProtocolError, isProtocolErrorCode, type ErrorAction, type ProtocolErrorCode } from './errors.js';
import { NETWORK_NAMES } from './network.js';
import { VARIANT_NAMES } from './variants/index.js';

export const PROTOCOL_VERSION = 1;
/** Largest encoded message; a funding transaction is the only big one (≤ 100 kB as hex). */
export const MAX_MESSAGE_BYTES = 256 * 1024;
/** 21 million BTC in satoshis: no amount on the wire may exceed it. */
export const MAX_MONEY_SAT = 2_100_000_000_000_000n;

const hexBytes = (length: number) =>
  v.pipe(
    v.string(),
    v.regex(new RegExp(`^[0-9a-f]{${length * 2}}$`), `expected ${length} bytes of lowercase hex`),
    v.transform((s) => fromHex(s)),
  );
const hexVar = (maxBytes: number) =>
  v.pipe(
    v.string(),
    v.maxLength(maxBytes * 2),
    v.regex(/^(?:[0-9a-f]{2})+$/, 'expected lowercase hex'),
    v.transform((s) => fromHex(s)),
  );
const txHex = (maxBytes: number) => v.pipe(v.string(), v.maxLength(maxBytes * 2), v.regex(/^(?:[0-9a-f]{2})+$/, 'expected lowercase hex'));
const sats = v.pipe(
  v.string(),
  v.regex(/^(?:0|[1-9][0-9]{0,15})$/, 'expected a decimal satoshi amount'),
  v.transform((s) => BigInt(s)),
  v.check((n) => n <= MAX_MONEY_SAT, 'amount above 21 million BTC'),
);
const txid = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, 'expected a 32-byte txid in hex'));
const vout = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(0xffff));
const height = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(499_999_999));
const tempId = v.pipe(v.string(), v.regex(/^[0-9a-f]{32}$/, 'expected a 16-byte id in hex'));
const channelIdSchema = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}:(?:0|[1-9][0-9]{0,4})$/, 'expected txid:vout'));
const version = v.literal(PROTOCOL_VERSION);

/** A proposal's terms: in the hello, and echoed in every later opening message. */
const PROPOSAL_TERMS = {
  network: v.picklist(NETWORK_NAMES),
  variant: v.picklist(VARIANT_NAMES),
  payerPubkey: hexBytes(33),
  capacitySat: sats,
  expiryHeight: height,
  /** Where the payer's change and refund go; at most 42 bytes (any standard template fits). */
  payerScript: hexVar(42),
};
const HelloSchema = v.strictObject({ v: version, type: v.literal('hello'), tempId, ...PROPOSAL_TERMS });
/** The payee's opening cookie (src/protocol/opening-cookie.ts): opaque to the payer, echoed back. */
const cookie = hexBytes(20);
const AcceptSchema = v.strictObject({
  v: version,
  type: v.literal('accept'),
  tempId,
  payeePubkey: hexBytes(33),
  minFundingConfirmations: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(100)),
  cookie,
});
/**
 * The hello's terms again, in every later opening message: the payee kept nothing of the
 * proposal and rebuilds it from these, vouched for by the cookie.
 */
const ProposalEchoSchema = v.strictObject(PROPOSAL_TERMS);
const RefundRequestSchema = v.strictObject({
  v: version,
  type: v.literal('refund-request'),
  tempId,
  proposal: ProposalEchoSchema,
  cookie,
  fundingTxid: txid,
  fundingVout: vout,
  refundTx: txHex(1000),
});
const RefundSignatureSchema = v.strictObject({ v: version, type: v.literal('refund-signature'), tempId, signature: hexBytes(64) });
const FundingSchema = v.strictObject({ v: version, type: v.literal('funding'), tempId, proposal: ProposalEchoSchema, cookie, fundingTx: txHex(100_000) });
const ChannelOpenSchema = v.strictObject({ v: version, type: v.literal('channel-open'), tempId, channelId: channelIdSchema });
const PaymentSchema = v.strictObject({ v: version, type: v.literal('payment'), channelId: channelIdSchema, totalSat: sats, signature: hexBytes(64) });
const PaymentAckSchema = v.strictObject({ v: version, type: v.literal('payment-ack'), channelId: channelIdSchema, totalSat: sats });
const CloseRequestSchema = v.strictObject({ v: version, type: v.literal('close-request'), channelId: channelIdSchema });
const ChannelClosedSchema = v.strictObject({ v: version, type: v.literal('channel-closed'), channelId: channelIdSchema, closeTxid: txid });
/**
 * Payee → payer, first on every connection: 32 random bytes the payer signs to prove, on this
 * connection only, that it holds a channel's payer key (see ./auth.ts).
 */
const ChallengeSchema = v.strictObject({ v: version, type: v.literal('challenge'), challenge: hexBytes(32) });
/**
 * Payer → payee: the payer key of channel `tempId` signed this connection's challenge. Makes the
 * connection the channel's link (close and status requests are taken only from it). Named by
 * the tempId, which the payee knows from the first message on, so it works at every stage.
 */
const AuthSchema = v.strictObject({ v: version, type: v.literal('auth'), tempId, signature: hexBytes(64) });
/** Payer → payee after a (re)connect: what do you hold for this channel? */
const StatusRequestSchema = v.strictObject({ v: version, type: v.literal('status-request'), channelId: channelIdSchema });
/** Payee → payer: the payee's durable view, so the payer can resend what was not acknowledged. */
const ChannelStatusSchema = v.strictObject({
  v: version,
  type: v.literal('channel-status'),
  channelId: channelIdSchema,
  state: v.picklist(['AwaitingConfirmation', 'Open', 'Closing', 'Closed'] as const),
  paidSat: sats,
  closeTxid: v.optional(txid),
});
// Duplex channels (docs/duplex.md): A opens and sequences every state; B may contribute inputs.
const duplexIndex = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1_000_000));
const feeRate = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(10_000));
const DuplexOpenSchema = v.strictObject({
  v: version,
  type: v.literal('duplex-open'),
  tempId,
  network: v.picklist(NETWORK_NAMES),
  keyA: hexBytes(33),
  scriptA: hexVar(42),
  contributionASat: sats,
  /** What A asks B to put in (B refuses with CAPACITY_TOO_LARGE if it will not). */
  contributionBSat: sats,
  initialLocktime: height,
  deltaBlocks: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(10_000)),
  stateFeeRateSatPerVb: feeRate,
  fundingFeeRateSatPerVb: feeRate,
  /**
   * A's coins for its contribution and its own outputs (change, fee reserve), shown first: B
   * checks them on chain before it reveals or reserves any coin of its own.
   */
  inputs: v.pipe(v.array(v.strictObject({ txid, vout, valueSat: sats })), v.maxLength(50)),
  outputs: v.pipe(v.array(v.strictObject({ script: hexVar(42), valueSat: sats })), v.maxLength(4)),
});
const txOutput = v.strictObject({ script: hexVar(42), valueSat: sats });
const DuplexAcceptSchema = v.strictObject({
  v: version,
  type: v.literal('duplex-accept'),
  tempId,
  keyB: hexBytes(33),
  scriptB: hexVar(42),
  minFundingConfirmations: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(100)),
  /** B's coins for its contribution (P2WPKH, unspent), and its own outputs (change, fee reserve). */
  inputs: v.pipe(v.array(v.strictObject({ txid, vout, valueSat: sats })), v.maxLength(50)),
  outputs: v.pipe(v.array(txOutput), v.maxLength(4)),
});
/** A → B: the unsigned funding transaction and A's signature on state 0. */
const DuplexFundSchema = v.strictObject({
  v: version,
  type: v.literal('duplex-fund'),
  tempId,
  fundingTx: txHex(100_000),
  fundingVout: vout,
  signature: hexBytes(64),
});
/** B → A: B's signature on state 0, then the witnesses of B's funding inputs. */
const DuplexFundedSchema = v.strictObject({
  v: version,
  type: v.literal('duplex-funded'),
  tempId,
  signature: hexBytes(64),
  witnesses: v.pipe(v.array(v.strictObject({ index: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1000)), stack: v.pipe(v.array(hexVar(100)), v.maxLength(4)) })), v.maxLength(50)),
});
const DuplexChannelSchema = v.strictObject({ v: version, type: v.literal('duplex-channel'), tempId, channelId: channelIdSchema });
const DuplexUpdateSchema = v.strictObject({
  v: version,
  type: v.literal('duplex-update'),
  channelId: channelIdSchema,
  index: duplexIndex,
  balanceASat: sats,
  balanceBSat: sats,
  signature: hexBytes(64),
  /** Set when the state is B's payment, answering B's duplex-pay-request. */
  requestId: v.optional(tempId),
});
const DuplexCountersignSchema = v.strictObject({ v: version, type: v.literal('duplex-countersign'), channelId: channelIdSchema, index: duplexIndex, signature: hexBytes(64) });
const DuplexPayRequestSchema = v.strictObject({ v: version, type: v.literal('duplex-pay-request'), channelId: channelIdSchema, amountSat: sats, requestId: tempId });
const DuplexCloseSchema = v.strictObject({
  v: version,
  type: v.literal('duplex-close'),
  channelId: channelIdSchema,
  index: duplexIndex,
  feeRateSatPerVb: feeRate,
  signature: hexBytes(64),
});
/** A → B when the update budget is spent: close into a new channel (one transaction); A's signature on its state 0. */
const DuplexRolloverSchema = v.strictObject({
  v: version,
  type: v.literal('duplex-rollover'),
  channelId: channelIdSchema,
  index: duplexIndex,
  initialLocktime: height,
  feeRateSatPerVb: feeRate,
  stateSignature: hexBytes(64),
});
/** A → B: A's rollover signature, sent once A holds the new channel's state 0 signed by both. */
const DuplexRolloverSignedSchema = v.strictObject({ v: version, type: v.literal('duplex-rollover-signed'), channelId: channelIdSchema, closeSignature: hexBytes(64) });
const DuplexRolledOverSchema = v.strictObject({
  v: version,
  type: v.literal('duplex-rolled-over'),
  channelId: channelIdSchema,
  newChannelId: channelIdSchema,
  closeSignature: hexBytes(64),
  stateSignature: hexBytes(64),
});
/** A → B after (re)connecting: A's newest index; B answers with what A missed, then duplex-resumed. */
const DuplexResumeSchema = v.strictObject({ v: version, type: v.literal('duplex-resume'), channelId: channelIdSchema, index: duplexIndex, signature: hexBytes(64) });
const DuplexResumedSchema = v.strictObject({ v: version, type: v.literal('duplex-resumed'), channelId: channelIdSchema, index: duplexIndex, queuedRequests: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1000)) });
const DuplexClosedSchema = v.strictObject({ v: version, type: v.literal('duplex-closed'), channelId: channelIdSchema, closeTxid: txid, signature: hexBytes(64) });
const ErrorSchema = v.strictObject({
  v: version,
  type: v.literal('error'),
  code: v.pipe(
    v.string(),
    v.check((s: string) => isProtocolErrorCode(s), 'unknown error code'),
    v.transform((s) => s as ProtocolErrorCode),
  ),
  message: v.pipe(v.string(), v.maxLength(1000)),
  action: v.picklist(['reject', 'close'] as const),
  /** The tempId or channel id the error is about, if any. */
  ref: v.optional(v.pipe(v.string(), v.maxLength(100))),
});

const MessageSchema = v.variant('type', [
  HelloSchema,
  AcceptSchema,
  RefundRequestSchema,
  RefundSignatureSchema,
  FundingSchema,
  ChannelOpenSchema,
  PaymentSchema,
  PaymentAckSchema,
  CloseRequestSchema,
  ChannelClosedSchema,
  StatusRequestSchema,
  ChannelStatusSchema,
  ChallengeSchema,
  AuthSchema,
  DuplexOpenSchema,
  DuplexAcceptSchema,
  DuplexFundSchema,
  DuplexFundedSchema,
  DuplexChannelSchema,
  DuplexUpdateSchema,
  DuplexCountersignSchema,
  DuplexPayRequestSchema,
  DuplexCloseSchema,
  DuplexClosedSchema,
  DuplexRolloverSchema,
  DuplexRolledOverSchema,
  DuplexRolloverSignedSchema,
  DuplexResumeSchema,
  DuplexResumedSchema,
  ErrorSchema,
]);

export type Message = v.InferOutput<typeof MessageSchema>;
export type MessageType = Message['type'];
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;
export type Hello = MessageOf<'hello'>;
/** The hello's terms as the later opening messages echo them. */
export type ProposalEcho = MessageOf<'funding'>['proposal'];
export type Payment = MessageOf<'payment'>;
export type ErrorMessage = MessageOf<'error'>;

/** Builds a message value with the protocol version filled in. */
export function msg<T extends MessageType>(type: T, fields: Omit<MessageOf<T>, 'v' | 'type'>): MessageOf<T> {
  return { v: PROTOCOL_VERSION, type, ...fields } as MessageOf<T>;
}

/** An error reply; the text and the ref are cut to what the error schema allows, so it always decodes. */
export function errorMessage(code: ProtocolErrorCode, message: string, action: ErrorAction, ref?: string): ErrorMessage {
  const text = message.length > 1000 ? `${message.slice(0, 997)}...` : message;
  return ref === undefined ? msg('error', { code, message: text, action }) : msg('error', { code, message: text, action, ref: ref.slice(0, 100) });
}

function replacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return toHex(value);
  return value;
}

/** @returns the wire form of `message` (UTF-8 JSON text). */
export function encodeMessage(message: Message): string {
  return encodeHotPath(message) ?? JSON.stringify(message, replacer);
}

/**
 * Payments and acks written directly, in the field order msg() gives them, which is what
 * JSON.stringify writes for them too (a property test holds the two equal): the replacer's
 * per-key calls and copies were a large part of what a payment allocates.
 */
function encodeHotPath(m: Message): string | null {
  if (m.type === 'payment') {
    if (!WIRE_CHANNEL_ID.test(m.channelId)) return null;
    return `{"v":${m.v},"type":"payment","channelId":"${m.channelId}","totalSat":"${m.totalSat}","signature":"${toHex(m.signature)}"}`;
  }
  if (m.type === 'payment-ack') {
    if (!WIRE_CHANNEL_ID.test(m.channelId)) return null;
    return `{"v":${m.v},"type":"payment-ack","channelId":"${m.channelId}","totalSat":"${m.totalSat}"}`;
  }
  return null;
}

/** A channel id that needs no JSON escaping (the schema's form; anything else takes the general path). */
const WIRE_CHANNEL_ID = /^[0-9a-f]{64}:[0-9]{1,5}$/;

/**
 * Parses and validates one wire message.
 * @throws ProtocolError MESSAGE_TOO_LARGE, UNSUPPORTED_VERSION, UNSUPPORTED_VARIANT (a proposal
 *   naming a variant not in ./variants/index.ts) or MALFORMED_MESSAGE (with the first schema
 *   issue and its path).
 */
export function decodeMessage(text: string): Message {
  // Length in UTF-16 units bounds the UTF-8 length from below; check both cheaply.
  if (text.length > MAX_MESSAGE_BYTES) throw new ProtocolError('MESSAGE_TOO_LARGE', `${text.length} > ${MAX_MESSAGE_BYTES} bytes`);
  const fast = decodeHotPath(text);
  if (fast) return fast;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ProtocolError('MALFORMED_MESSAGE', 'not JSON'); // also a nesting deep enough to overflow the stack
  }
  if (typeof raw === 'object' && raw !== null && 'v' in raw && raw.v !== PROTOCOL_VERSION) {
    // Never stringify a peer's object: print a number as it is, anything else by its type.
    const version = typeof raw.v === 'number' ? String(raw.v) : typeof raw.v;
    throw new ProtocolError('UNSUPPORTED_VERSION', `version ${version.slice(0, 20)}, this peer speaks ${PROTOCOL_VERSION}`);
  }
  let parsed;
  try {
    parsed = v.safeParse(MessageSchema, raw);
  } catch {
    throw new ProtocolError('MALFORMED_MESSAGE', 'not a message of this protocol'); // e.g. nesting too deep
  }
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const path = issue.path?.map((p) => (typeof p.key === 'string' || typeof p.key === 'number' ? String(p.key) : '?')).join('.') ?? '';
    // A variant this peer does not know (a newer peer's, or a typo) is a well-formed proposal we
    // cannot take: say so with the code a peer acts on, never fall back to another variant.
    if (issue.type === 'picklist' && issue.path?.at(-1)?.key === 'variant') {
      throw new ProtocolError('UNSUPPORTED_VARIANT', `${typeof issue.input === 'string' ? `'${issue.input.slice(0, 40)}'` : typeof issue.input}; supported: ${VARIANT_NAMES.join(', ')}`);
    }
    // Schema messages quote the input: cut them, a reply must stay a valid (small) message.
    throw new ProtocolError('MALFORMED_MESSAGE', `${path ? `${path.slice(0, 60)}: ` : ''}${issue.message.slice(0, 160)}`);
  }
  return parsed.output;
}

// The hot path: payments and their acknowledgements exactly as encodeMessage writes them. The
// patterns accept nothing the schemas would refuse (same field order, hex and amount forms);
// any other spelling of the same message takes the general path.
const PAYMENT_RE = /^\{"v":1,"type":"payment","channelId":"([0-9a-f]{64}:(?:0|[1-9][0-9]{0,4}))","totalSat":"(0|[1-9][0-9]{0,15})","signature":"([0-9a-f]{128})"\}$/;
const ACK_RE = /^\{"v":1,"type":"payment-ack","channelId":"([0-9a-f]{64}:(?:0|[1-9][0-9]{0,4}))","totalSat":"(0|[1-9][0-9]{0,15})"\}$/;

function decodeHotPath(text: string): Message | null {
  if (text.length > 300) return null;
  let m = PAYMENT_RE.exec(text);
  if (m) {
    const totalSat = BigInt(m[2]!);
    if (totalSat > MAX_MONEY_SAT || Number(m[1]!.slice(65)) > 0xffff) return null;
    return { v: PROTOCOL_VERSION, type: 'payment', channelId: m[1]!, totalSat, signature: fromHex(m[3]!) };
  }
  m = ACK_RE.exec(text);
  if (m) {
    const totalSat = BigInt(m[2]!);
    if (totalSat > MAX_MONEY_SAT || Number(m[1]!.slice(65)) > 0xffff) return null;
    return { v: PROTOCOL_VERSION, type: 'payment-ack', channelId: m[1]!, totalSat };
  }
  return null;
}
