/**
 * Openings without state: the payee's answers to a hello and a v1 refund request are pure
 * functions of the message, its secret and the tip; later messages are believed only when the
 * cookie vouches for them. No state exists before payeeOpen, so a refusal can change none.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../src/protocol/bytes.js';
import { makeChannel } from '../../src/protocol/channel.js';
import { decodeMessage, encodeMessage, msg, type Message, type MessageOf } from '../../src/protocol/messages.js';
import { OPENING_KEY_INDEX_BASE, openingKeyIndex } from '../../src/protocol/opening-cookie.js';
import { payeeAccept, payeeOpen as openWith, payeeSignRefund as signWith, payeeVouched, type PayeeContext } from '../../src/protocol/payee-machine.js';
import { payeePolicy } from '../../src/protocol/policy.js';
import { payeeRefundDigest, refundTemplateHex } from '../../src/protocol/refund.js';
import type { Variant } from '../../src/protocol/scripts.js';
import { WalletKeys } from '../../src/wallet/keys.js';
import { PAYER_PUB, PAYER_SCRIPT, codeOf, fundingTx, secp } from '../helpers/protocol.js';

const keys = WalletKeys.fromSeed(new Uint8Array(32).fill(9), 'regtest');
const ctx: PayeeContext = {
  secp,
  policy: payeePolicy({ network: 'regtest', proposalTimeoutBlocks: 6 }),
  privateKey: (i) => keys.openingPrivateKey(i - OPENING_KEY_INDEX_BASE),
  openingSecret: keys.openingSecret(),
};
/** The driver's order: the cookie checked once, its result passed on. */
const payeeSignRefund = (c: PayeeContext, r: MessageOf<'refund-request'>, tip: number) => signWith(c, r, payeeVouched(c, r, tip));
const payeeOpen = (c: PayeeContext, f: MessageOf<'funding'>, tip: number, known = false) => openWith(c, f, payeeVouched(c, f, null), known ? null : tip);
const wire = <T extends Message>(m: T): T => decodeMessage(encodeMessage(m)) as T;
const TIP = 100;

function hello(variant: Variant, tempId = 'ab'.repeat(16)): MessageOf<'hello'> {
  return msg('hello', { tempId, network: 'regtest', variant, payerPubkey: PAYER_PUB, capacitySat: 1_000_000n, expiryHeight: 150, payerScript: PAYER_SCRIPT });
}

/** The payer's side of an opening, by hand: accept → funding tx → the echoing messages. */
function opening(variant: Variant, tempId?: string) {
  const h = hello(variant, tempId);
  const accept = wire(payeeAccept(ctx, h, TIP));
  const { v: _v, type: _t, tempId: id, ...proposal } = h;
  const terms = { ...proposal, payeePubkey: accept.payeePubkey };
  const tx = fundingTx(terms, { vout: 1 });
  const channel = makeChannel(terms, { txid: tx.getId(), vout: 1 });
  const refundRequest = wire(
    msg('refund-request', { tempId: id, proposal, cookie: accept.cookie, fundingTxid: channel.funding.txid, fundingVout: 1, refundTx: refundTemplateHex(channel) }),
  );
  const funding = wire(msg('funding', { tempId: id, proposal, cookie: accept.cookie, fundingTx: tx.toHex() }));
  return { hello: h, accept, channel, refundRequest, funding };
}

describe('opening cookies', () => {
  it('an accept is a function of the hello and the tip: its cookie vouches for the funding, its key is the derived one', () => {
    const o = opening('spilman-v2');
    expect(toHex(wire(payeeAccept(ctx, o.hello, TIP)).cookie)).toBe(toHex(o.accept.cookie));
    const index = openingKeyIndex(o.accept.cookie);
    expect(index).toBeGreaterThanOrEqual(OPENING_KEY_INDEX_BASE);
    expect(Number.isSafeInteger(index)).toBe(true);
    expect(toHex(o.accept.payeePubkey)).toBe(toHex(secp.publicKeyCreate(keys.openingPrivateKey(index - OPENING_KEY_INDEX_BASE))));
    const opened = payeeOpen(ctx, o.funding, TIP + 6);
    expect(opened.state.type).toBe('AwaitingConfirmation');
    expect(opened.state.keyIndex).toBe(index); // what the close needs to find the key again
    expect(opened.state.channel.id).toBe(o.channel.id);
  });

  it('signs the v1 refund with the key derived from the cookie', () => {
    const o = opening('spilman-v1');
    const signature = payeeSignRefund(ctx, o.refundRequest, TIP + 1).signature;
    expect(secp.ecdsaVerify(signature, payeeRefundDigest(o.channel), o.accept.payeePubkey)).toBe(true);
    // Nothing stored, nothing to repeat from: a repeat signs again, identically (RFC 6979).
    expect(toHex(payeeSignRefund(ctx, o.refundRequest, TIP + 2).signature)).toBe(toHex(signature));
  });

  it('two proposals with the same terms get distinct cookies, keys and channels (the tempId is a nonce)', () => {
    const a = opening('spilman-v1', '01'.repeat(16));
    const b = opening('spilman-v1', '02'.repeat(16));
    expect(toHex(a.accept.cookie)).not.toBe(toHex(b.accept.cookie));
    expect(toHex(a.accept.payeePubkey)).not.toBe(toHex(b.accept.payeePubkey));
    expect(a.channel.fundingScript).not.toEqual(b.channel.fundingScript);
  });

  it.each(['spilman-v1', 'spilman-v2'] as const)('%s: refuses an altered proposal, a forged or altered cookie, with INVALID_COOKIE', (variant) => {
    const o = opening(variant);
    const forged = (f: MessageOf<'funding'>) => codeOf(() => payeeOpen(ctx, f, TIP));
    const withEcho = (change: Partial<MessageOf<'funding'>['proposal']>) => ({ ...o.funding, proposal: { ...o.funding.proposal, ...change } });
    expect(forged(withEcho({ capacitySat: 2_000_000n }))).toBe('INVALID_COOKIE');
    expect(forged(withEcho({ expiryHeight: 151 }))).toBe('INVALID_COOKIE');
    expect(forged(withEcho({ payerScript: Uint8Array.of(0x00, 0x14, ...new Uint8Array(20).fill(0x33)) }))).toBe('INVALID_COOKIE');
    expect(forged(withEcho({ variant: variant === 'spilman-v1' ? 'spilman-v2' : 'spilman-v1' }))).toBe('INVALID_COOKIE');
    expect(forged({ ...o.funding, tempId: 'cd'.repeat(16) })).toBe('INVALID_COOKIE');
    for (const at of [0, 3, 4, 19]) {
      const cookie = Uint8Array.from(o.funding.cookie);
      cookie[at]! ^= 1; // the issue height or the MAC
      expect(forged({ ...o.funding, cookie })).toBe('INVALID_COOKIE');
    }
    const otherPayee: PayeeContext = { ...ctx, openingSecret: new Uint8Array(32).fill(1) };
    expect(codeOf(() => payeeOpen(otherPayee, o.funding, TIP))).toBe('INVALID_COOKIE');
    if (variant === 'spilman-v1') {
      expect(codeOf(() => payeeSignRefund(ctx, { ...o.refundRequest, proposal: { ...o.refundRequest.proposal, capacitySat: 1n } }, TIP))).toBe('INVALID_COOKIE');
    } else {
      // v2 needs no refund signature: a cookie for v2 cannot buy one.
      expect(codeOf(() => payeeSignRefund(ctx, { ...o.refundRequest, proposal: o.funding.proposal }, TIP))).toBe('UNEXPECTED_MESSAGE');
    }
  });

  it('a cookie expires after proposalTimeoutBlocks, unless the node already has the funding', () => {
    const o = opening('spilman-v1');
    expect(codeOf(() => payeeOpen(ctx, o.funding, TIP + 6))).toBe('NO_ERROR');
    expect(codeOf(() => payeeOpen(ctx, o.funding, TIP + 7))).toBe('COOKIE_EXPIRED');
    expect(codeOf(() => payeeSignRefund(ctx, o.refundRequest, TIP + 7))).toBe('COOKIE_EXPIRED');
    // The payee broadcast it and died before storing it: the payer's coins are committed.
    expect(payeeOpen(ctx, o.funding, TIP + 50, true).state.type).toBe('AwaitingConfirmation');
  });

  it('checks the funding as before: a funding paying another script is refused', () => {
    const o = opening('spilman-v2');
    const other = opening('spilman-v2', '03'.repeat(16));
    expect(codeOf(() => payeeOpen(ctx, { ...o.funding, fundingTx: other.funding.fundingTx }, TIP))).toBe('FUNDING_MISMATCH');
  });
});
