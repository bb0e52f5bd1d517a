/** Invalid vectors: each bad input gives its specific error code (test/fixtures/spilman-invalid.json). */
import { Transaction } from 'bitcoinjs-lib';
import { describe, expect, it } from 'vitest';
import { fromHex } from '../../src/protocol/bytes.js';
import { checkFundingTx } from '../../src/protocol/funding.js';
import { MAX_MESSAGE_BYTES, decodeMessage, msg } from '../../src/protocol/messages.js';
import { paymentDigest, paymentSighasher, verifyPayment } from '../../src/protocol/payment.js';
import { checkHello, payeePolicy } from '../../src/protocol/policy.js';
import { checkRefundTemplate, refundTemplateHex } from '../../src/protocol/refund.js';
import invalid from '../fixtures/spilman-invalid.json' with { type: 'json' };
import { PAYEE_KEY, PAYER_KEY, PAYER_PUB, PAYER_SCRIPT, channel, codeOf, fundingTx, secp, terms, wireJson } from '../helpers/protocol.js';

const ch = channel('spilman-v1');

const refundMutations: Record<string, (tx: Transaction) => void> = {
  version1: (tx) => void (tx.version = 1),
  extraInput: (tx) => void tx.addInput(fromHex('bb'.repeat(32)), 0, 0xfffffffd),
  wrongVout: (tx) => void (tx.ins[0]!.index = 1),
  wrongTxid: (tx) => void (tx.ins[0]!.hash = fromHex('cc'.repeat(32))),
  shortLocktime: (tx) => void (tx.locktime = ch.expiryHeight - 1),
  zeroLocktime: (tx) => void (tx.locktime = 0),
  finalSequence: (tx) => void (tx.ins[0]!.sequence = 0xffffffff),
};

describe('refund templates (payee side of seed step 4)', () => {
  it('accepts the honest template', () => {
    expect(codeOf(() => checkRefundTemplate(ch, ch.funding, refundTemplateHex(ch)))).toBe('NO_ERROR');
  });
  it.each(invalid.refundTemplates)('$description → $code', (c) => {
    let hex = c.hex;
    if (c.mutate) {
      const tx = Transaction.fromHex(refundTemplateHex(ch));
      refundMutations[c.mutate]!(tx);
      hex = tx.toHex();
    }
    expect(codeOf(() => checkRefundTemplate(ch, ch.funding, hex!))).toBe(c.code);
  });
});

describe('payments (payee side of seed step 9)', () => {
  const sighasher = paymentSighasher(ch);
  it.each(invalid.payments)('$description → $code', (c) => {
    const total = BigInt(c.totalSat);
    const signedTotal = BigInt(c.signFor ?? c.totalSat);
    const key = c.signWith === 'payee' ? PAYEE_KEY : PAYER_KEY;
    const signable = signedTotal > 0n && signedTotal <= ch.capacitySat && !(ch.capacitySat - signedTotal > 0n && ch.capacitySat - signedTotal < 294n);
    const signature = signable ? secp.ecdsaSign(paymentDigest(ch, sighasher, signedTotal), key) : new Uint8Array(64).fill(1);
    expect(codeOf(() => verifyPayment(secp, ch, sighasher, BigInt(c.lastSat), total, signature))).toBe(c.code);
  });
});

describe('proposals (payee policy)', () => {
  const policy = payeePolicy({ network: 'regtest' });
  const honest = msg('hello', {
    tempId: '00'.repeat(16),
    network: 'regtest',
    variant: 'spilman-v1',
    payerPubkey: PAYER_PUB,
    capacitySat: 1_000_000n,
    expiryHeight: 200,
    payerScript: PAYER_SCRIPT,
  });
  it('accepts an honest proposal at tip 100', () => {
    expect(codeOf(() => checkHello(secp, policy, honest, 100))).toBe('NO_ERROR');
  });
  it.each(invalid.hellos)('$description → $code', (c) => {
    const patch = c.patch as Record<string, unknown>;
    const hello = {
      ...honest,
      ...patch,
      ...(typeof patch.capacitySat === 'string' ? { capacitySat: BigInt(patch.capacitySat) } : {}),
      ...(typeof patch.payerPubkey === 'string' ? { payerPubkey: fromHex(patch.payerPubkey) } : {}),
      ...(typeof patch.payerScript === 'string' ? { payerScript: fromHex(patch.payerScript) } : {}),
    } as typeof honest;
    expect(codeOf(() => checkHello(secp, policy, hello, 100))).toBe(c.code);
  });
});

describe('funding transactions (payee side of seed step 6)', () => {
  const t = terms('spilman-v1');
  it('finds the channel output', () => {
    expect(checkFundingTx(t, fundingTx(t, { vout: 2 }).toHex(), null).vout).toBe(2);
  });
  it.each([
    ['pays one sat less', { valueSat: 999_999n }, 'FUNDING_MISMATCH'],
    ['pays another script', { script: PAYER_SCRIPT }, 'FUNDING_MISMATCH'],
    ['has a legacy input (malleable txid)', { legacyInput: true }, 'FUNDING_NOT_SEGWIT'],
  ] as const)('%s → %s', (_d, opts, code) => {
    expect(codeOf(() => checkFundingTx(t, fundingTx(t, opts).toHex(), null))).toBe(code);
  });
  it('rejects a funding that is not the announced outpoint', () => {
    const tx = fundingTx(t);
    expect(codeOf(() => checkFundingTx(t, tx.toHex(), { txid: tx.getId(), vout: 1 }))).toBe('FUNDING_MISMATCH');
    expect(codeOf(() => checkFundingTx(t, tx.toHex(), { txid: 'dd'.repeat(32), vout: 0 }))).toBe('FUNDING_MISMATCH');
  });
  it('rejects garbage', () => {
    expect(codeOf(() => checkFundingTx(t, '00', null))).toBe('FUNDING_MALFORMED');
  });
});

describe('wire messages', () => {
  it.each(invalid.messages)('$description → $code', (c) => {
    expect(codeOf(() => decodeMessage(c.text))).toBe(c.code);
  });
  it('refuses an oversized message before parsing it', () => {
    expect(codeOf(() => decodeMessage(' '.repeat(MAX_MESSAGE_BYTES + 1)))).toBe('MESSAGE_TOO_LARGE');
  });
  it('round-trips every field of a payment exactly', () => {
    const m = msg('payment', { channelId: `${ch.funding.txid}:0`, totalSat: 2_099_999_999_999_999n, signature: new Uint8Array(64).fill(7) });
    const decoded = decodeMessage(wireJson(m));
    expect(decoded).toEqual(m);
  });
});
