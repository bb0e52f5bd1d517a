/**
 * What the payee must do with a fuzz frame, worked out from the frame itself (decoded with the
 * protocol's own codec) and from what the fuzzer knows about the channels:
 *
 * - frames over 256 KiB: the socket is closed with 1009; text frames that are not UTF-8: 1007;
 * - binary frames: `error` MALFORMED_MESSAGE;
 * - frames the codec refuses: `error` with the codec's code (MALFORMED_MESSAGE, UNSUPPORTED_VERSION);
 * - a valid hello: `accept`, however many came before (the payee holds nothing for a proposal:
 *   opening cookies), unless its tempId is a channel's (DUPLICATE_CHANNEL);
 * - close and status requests: AUTH_REQUIRED (UNKNOWN_CHANNEL for a channel the payee does not
 *   have), even exact repeats of the honest payer's: a fuzz connection never authenticated;
 *   `auth`: AUTH_INVALID (a replayed or forged signature), or UNKNOWN_CHANNEL;
 * - exact repeats of what an honest payer sent (hello, refund request, funding): the answer an
 *   honest payer would get again, an error, or nothing;
 * - decodable messages: an `error`, except the few answers an honest payer could get for the
 *   same message: `accept` for a valid hello, `payment-ack` for a payment an honest payer really
 *   signed (a replay of the newest one is acknowledged again), `refund-signature` for a refund
 *   request that echoes one of the fuzzer's proposals with its cookie.
 *
 * No frame a stranger can send legitimately changes a fixture channel, so none is skipped.
 */
import { Transaction } from 'bitcoinjs-lib';
import { toHex } from '../../src/protocol/bytes.js';
import { ProtocolError, type ProtocolErrorCode } from '../../src/protocol/errors.js';
import { decodeMessage, MAX_MESSAGE_BYTES, type MessageType } from '../../src/protocol/messages.js';
import type { Frame } from './generators.js';
import { wireEcho, type FuzzTargets } from './targets.js';

export type Expectation =
  | { readonly type: 'skip'; readonly reason: string }
  | { readonly type: 'close'; readonly code: 1007 | 1009 }
  | {
      readonly type: 'reply';
      /** The exact error code required, if known. */
      readonly code?: ProtocolErrorCode;
      /** Non-error answers that are legitimate for this frame. */
      readonly allow: readonly MessageType[];
      /** The codec threw something other than a ProtocolError on this frame. */
      readonly decoderThrew?: string;
      /** The message type, if the frame decodes. */
      readonly decodedType?: MessageType;
      /** Hello tempId: if accepted, the proposal becomes one of the fuzzer's own. */
      readonly helloTempId?: string;
      /** No answer is also right (a repeat the protocol does not answer, an `error` from the payer). */
      readonly silentOk?: boolean;
    };

/** Every answer an honest payer can get: allowed for exact repeats of what an honest payer sent. */
const HONEST_ANSWERS: readonly MessageType[] = ['accept', 'refund-signature', 'channel-open', 'payment-ack', 'channel-closed', 'channel-status'];

const utf8 = new TextDecoder('utf-8', { fatal: true });

function txidOf(hex: string): string | undefined {
  try {
    return Transaction.fromHex(hex).getId();
  } catch {
    return undefined;
  }
}

export function expectationOf(frame: Frame, t: FuzzTargets): Expectation {
  const size = typeof frame.data === 'string' ? Buffer.byteLength(frame.data) : frame.data.length;
  if (size > MAX_MESSAGE_BYTES) return { type: 'close', code: 1009 };
  if (frame.binary) return { type: 'reply', code: 'MALFORMED_MESSAGE', allow: [] };
  let text: string;
  if (typeof frame.data === 'string') {
    text = frame.data;
  } else {
    try {
      text = utf8.decode(frame.data);
    } catch {
      return { type: 'close', code: 1007 };
    }
  }
  // ws sends a JS string as UTF-8, replacing lone surrogates; the payee sees that text.
  text = Buffer.from(text, 'utf8').toString('utf8');
  let m;
  try {
    m = decodeMessage(text);
  } catch (err) {
    if (err instanceof ProtocolError) return { type: 'reply', code: err.code, allow: [] };
    return { type: 'reply', allow: [], decoderThrew: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
  }
  const base = { type: 'reply' as const, code: frame.code, decodedType: m.type };
  if (m.type === 'close-request' || m.type === 'status-request') {
    // Taken only from the channel's authenticated connection, which a fuzz socket never is:
    // refused, even when it repeats the honest payer's own request (issue 13).
    const known = t.funded.some((f) => f.channel.id === m.channelId);
    return { ...base, code: known ? 'AUTH_REQUIRED' : 'UNKNOWN_CHANNEL', allow: [] };
  }
  if (m.type === 'auth') {
    // Signed over another connection's challenge (a replay) or not the payer's at all.
    const known = t.funded.some((f) => f.tempId === m.tempId);
    return { ...base, code: known ? 'AUTH_INVALID' : 'UNKNOWN_CHANNEL', allow: [] };
  }
  if (t.captures.isGenuineRepeat(m)) {
    // A reconnecting payer repeats its last step; the payee answers it again (or, for a funding
    // waiting for confirmations, stays silent until the channel opens).
    return { type: 'reply', decodedType: m.type, allow: HONEST_ANSWERS, silentOk: true };
  }
  switch (m.type) {
    case 'hello': {
      // Only a channel's tempId is taken: a proposal holds nothing, not even its tempId.
      if (t.funded.some((f) => f.tempId === m.tempId)) return { ...base, code: 'DUPLICATE_CHANNEL', allow: [] };
      return { ...base, allow: ['accept'], helloTempId: m.tempId };
    }
    case 'payment': {
      const genuine = t.captures.isGenuinePayment(m.channelId, m.totalSat, toHex(m.signature));
      return genuine ? { ...base, code: undefined, allow: ['payment-ack'] } : { ...base, allow: [] };
    }
    case 'funding': {
      // The same transaction up to its witnesses (same txid: a third party can malleate those) is
      // the channel's own funding repeated.
      const target = t.funded.find((f) => f.tempId === m.tempId);
      if (target && txidOf(m.fundingTx) === target.channel.funding.txid) return { ...base, code: undefined, allow: HONEST_ANSWERS, silentOk: true };
      return { ...base, allow: [] };
    }
    case 'refund-request': {
      // Signed (statelessly, changing nothing) only when the cookie vouches for the echo.
      const echo = JSON.stringify(wireEcho({ ...m.proposal, payeePubkey: new Uint8Array(0) }));
      const vouched = t.pending.some((p) => p.tempId === m.tempId && p.cookie === toHex(m.cookie) && JSON.stringify(p.echo) === echo);
      return { ...base, allow: vouched ? ['refund-signature'] : [] };
    }
    case 'error':
      return { ...base, allow: [], silentOk: true };
    case 'duplex-open':
      // A well-formed duplex proposal is answered as an honest one's, within B's limits on what
      // strangers' openings may hold (docs/duplex.md). A field mutation can yield one (its
      // version deleted, then put back by the duplicate-key text mutation).
      return { ...base, allow: ['duplex-accept'] };
    default:
      return { ...base, allow: [] };
  }
}
