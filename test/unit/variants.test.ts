/**
 * The table of one-way variants (src/protocol/variants): every name finds its spec, an unknown
 * name is refused (by the API with a RangeError, from a peer with UNSUPPORTED_VARIANT, never
 * taken for another variant), and each spec's sizes and opening flow are what the frozen
 * vectors (test/fixtures/spilman.json) were made with.
 */
import { Transaction } from 'bitcoinjs-lib';
import { describe, expect, it } from 'vitest';
import { fromHex } from '../../src/protocol/bytes.js';
import { decodeMessage, encodeMessage, msg } from '../../src/protocol/messages.js';
import { checkHello, payeePolicy } from '../../src/protocol/policy.js';
import { payeeRefundDigest, refundAuthorization, refundVsize, signRefund } from '../../src/protocol/refund.js';
import { SIGHASH_NONE_ACP } from '../../src/protocol/sighash.js';
import { feeForVsize } from '../../src/protocol/transactions.js';
import { VARIANTS, VARIANT_NAMES, isVariantName, variantOf, type VariantName } from '../../src/protocol/variants/index.js';
import vectors from '../fixtures/spilman.json' with { type: 'json' };
import { PAYER_KEY, PAYER_PUB, PAYER_SCRIPT, channel, codeOf, secp, wireJson } from '../helpers/protocol.js';

const hello = (variant: string) =>
  wireJson({ v: 1, type: 'hello', tempId: 'ab'.repeat(16), network: 'regtest', variant, payerPubkey: PAYER_PUB, capacitySat: 100_000n, expiryHeight: 150, payerScript: PAYER_SCRIPT });

describe('the variant table', () => {
  it('lists spilman-v1 then spilman-v2 (the order numbers them in packed payee states)', () => {
    expect(VARIANT_NAMES).toEqual(['spilman-v1', 'spilman-v2']);
  });

  it.each(VARIANT_NAMES)('finds %s under its own name, frozen', (name) => {
    const spec = variantOf(name);
    expect(spec).toBe(VARIANTS[name]);
    expect(spec.name).toBe(name);
    expect(Object.isFrozen(spec)).toBe(true);
    expect(isVariantName(name)).toBe(true);
  });

  it.each(['spilman-v3', 'duplex', 'SPILMAN-V1', '', 'toString', '__proto__', 'x'.repeat(500)])('refuses the unknown name %j with a RangeError that lists the known ones', (name) => {
    expect(isVariantName(name)).toBe(false);
    expect(() => variantOf(name)).toThrow(RangeError);
    expect(() => variantOf(name)).toThrow(/unknown channel variant .*; known: spilman-v1, spilman-v2$/);
  });

  it('refuses a peer proposal naming an unknown variant with UNSUPPORTED_VARIANT, in a hello and in an echo', () => {
    expect(codeOf(() => decodeMessage(hello('spilman-v3')))).toBe('UNSUPPORTED_VARIANT');
    expect(codeOf(() => decodeMessage(hello('duplex')))).toBe('UNSUPPORTED_VARIANT');
    expect(codeOf(() => decodeMessage(hello('x'.repeat(5000))))).toBe('UNSUPPORTED_VARIANT');
    // The peer's string is cut in the reply.
    expect(() => decodeMessage(hello('x'.repeat(5000)))).toThrow(/^UNSUPPORTED_VARIANT: 'x{40}'; supported: spilman-v1, spilman-v2$/);
    const request = JSON.parse(
      wireJson({
        v: 1,
        type: 'refund-request',
        tempId: 'ab'.repeat(16),
        proposal: { network: 'regtest', variant: 'spilman-v9', payerPubkey: PAYER_PUB, capacitySat: 100_000n, expiryHeight: 150, payerScript: PAYER_SCRIPT },
        cookie: new Uint8Array(20),
        fundingTxid: 'aa'.repeat(32),
        fundingVout: 0,
        refundTx: '00',
      }),
    ) as object;
    expect(codeOf(() => decodeMessage(JSON.stringify(request)))).toBe('UNSUPPORTED_VARIANT');
    // A known variant still decodes.
    expect(decodeMessage(hello('spilman-v2'))).toMatchObject({ type: 'hello', variant: 'spilman-v2' });
  });

  it('refuses a known variant the payee does not offer with UNSUPPORTED_VARIANT', () => {
    const policy = payeePolicy({ network: 'regtest', variants: ['spilman-v2'] });
    const m = decodeMessage(encodeMessage(msg('hello', { tempId: 'ab'.repeat(16), network: 'regtest', variant: 'spilman-v1', payerPubkey: PAYER_PUB, capacitySat: 100_000n, expiryHeight: 150, payerScript: PAYER_SCRIPT })));
    if (m.type !== 'hello') throw new Error('not a hello');
    expect(codeOf(() => checkHello(secp, policy, m, 100))).toBe('UNSUPPORTED_VARIANT');
    expect(() => payeePolicy({ network: 'regtest', variants: ['spilman-v3' as VariantName] })).toThrow(RangeError);
  });
});

describe('opening flows', () => {
  it('v1 has the payee sign the refund (SIGHASH_NONE|ANYONECANPAY) before funding; v2 funds at once', () => {
    expect(variantOf('spilman-v1').opening).toEqual({ type: 'refund-first', payeeRefundHashType: SIGHASH_NONE_ACP });
    expect(variantOf('spilman-v2').opening).toEqual({ type: 'fund-directly' });
  });

  it('a refund must be authorized as its variant says', () => {
    const v1 = channel('spilman-v1');
    const v2 = channel('spilman-v2');
    expect(() => refundAuthorization(v1, null)).toThrow(RangeError);
    // v2 has no payee refund signature to make or check.
    expect(() => payeeRefundDigest(v2)).toThrow(/needs no payee signature/);
    expect(refundAuthorization(v2, new Uint8Array(64))).toEqual({ type: 'payer-alone' });
    expect(() => signRefund(secp, v1, { type: 'payer-alone' }, PAYER_KEY, PAYER_SCRIPT, 1)).toThrow(/needs the payee signature/);
    expect(() => signRefund(secp, v2, { type: 'payee-signed', payeeSignature: new Uint8Array(64) }, PAYER_KEY, PAYER_SCRIPT, 1)).toThrow(/takes no payee signature/);
    expect(() => variantOf('spilman-v1').refundWitness(new Uint8Array(72), null, v1)).toThrow(RangeError);
    expect(() => variantOf('spilman-v2').refundWitness(new Uint8Array(72), new Uint8Array(72), v2)).toThrow(RangeError);
  });
});

describe.each(vectors.valid)('$variant sizes match the vectors', (v) => {
  const name = v.variant as VariantName;
  const spec = variantOf(name);
  const ch = channel(name);

  it('charges the refund fee for the worst-case refund witness', () => {
    const tx = Transaction.fromHex(v.refund.txHex);
    const sized = tx.clone();
    sized.setWitness(0, spec.sizes.refundWitness(ch));
    expect(refundVsize(ch, tx)).toBe(sized.virtualSize());
    expect(feeForVsize(sized.virtualSize(), v.refund.feeRateSatPerVb).toString()).toBe(v.refund.feeSat);
    // Worst case: never below what was signed, at most a byte or two of signature above it.
    expect(sized.virtualSize()).toBeGreaterThanOrEqual(v.refund.vsize);
    expect(sized.virtualSize() - v.refund.vsize).toBeLessThanOrEqual(1);
  });

  it.each(v.closes)('charges the close at total $totalSat for the worst-case cooperative witness', (c) => {
    const sized = Transaction.fromHex(c.txHex);
    sized.setWitness(0, spec.sizes.cooperativeWitness(ch));
    expect(feeForVsize(sized.virtualSize(), c.feeRateSatPerVb).toString()).toBe(c.feeSat);
    expect(sized.virtualSize()).toBeGreaterThanOrEqual(c.vsize);
    expect(sized.virtualSize() - c.vsize).toBeLessThanOrEqual(1);
  });

  it('builds the vectors’ funding lock', () => {
    const lock = spec.fundingLock(ch);
    expect(lock.witnessScript).toEqual(fromHex(v.witnessScript));
    expect(lock.fundingScript).toEqual(fromHex(v.fundingScript));
  });
});
