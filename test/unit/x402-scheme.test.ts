/**
 * The pure parts of the `paychan` x402 scheme: the CAIP-2 table, the payload codec, reading a
 * requirement, checking a payload against its requirement, and the error reasons.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import type { PaymentPayload, PaymentRequirements } from '@x402/core/types';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../src/protocol/bytes.js';
import { CAIP2_IDS, GENESIS_HASHES, caip2Of, caip2OfGenesis, networkOfCaip2 } from '../../src/protocol/caip2.js';
import { msg } from '../../src/protocol/messages.js';
import { NETWORK_NAMES } from '../../src/protocol/network.js';
import { checkPayload, codeOfReason, decodePayload, encodePayload, readOffer, reasonOf, satAsset } from '../../src/x402/paychan-scheme.js';
import { PaychanServerScheme } from '../../src/x402/server.js';

const REGTEST = 'bip122:0f9188f13cb7b2c71f2a335e3a4fc328';
const CHANNEL = `${'ab'.repeat(32)}:1`;
const SIG = new Uint8Array(64).fill(7);

/** Regtest's genesis block header, serialized (version 1, zero prev, merkle root, time 1296688602, bits 207fffff, nonce 2). */
const REGTEST_GENESIS_HEADER =
  '0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4adae5494dffff7f2002000000';

describe('CAIP-2 ids of the Bitcoin networks', () => {
  it('one id per network, bip122: and the first 32 hex digits of its genesis hash', () => {
    for (const name of NETWORK_NAMES) {
      expect(CAIP2_IDS[name]).toBe(`bip122:${GENESIS_HASHES[name].slice(0, 32)}`);
      expect(caip2OfGenesis(GENESIS_HASHES[name])).toBe(CAIP2_IDS[name]);
      expect(networkOfCaip2(caip2Of(name))).toBe(name);
    }
    expect(new Set(Object.values(CAIP2_IDS)).size).toBe(NETWORK_NAMES.length);
    // The ids x402's Bitcoin specs use for mainnet and testnet.
    expect(CAIP2_IDS.mainnet).toBe('bip122:000000000019d6689c085ae165831e93');
    expect(CAIP2_IDS.testnet).toBe('bip122:000000000933ea01ad0ee984209779ba');
    expect(CAIP2_IDS.regtest).toBe(REGTEST);
  });

  it("regtest's genesis hash is the double SHA-256 of its header (what btcd's getblockhash 0 answers)", () => {
    const header = Uint8Array.from(Buffer.from(REGTEST_GENESIS_HEADER, 'hex'));
    expect(toHex(sha256(sha256(header)).reverse())).toBe(GENESIS_HASHES.regtest);
  });

  it('unknown or non-canonical ids name no network', () => {
    expect(networkOfCaip2('bip122:0F9188F13CB7B2C71F2A335E3A4FC328')).toBeUndefined();
    expect(networkOfCaip2('eip155:8453')).toBeUndefined();
    expect(networkOfCaip2('bip122:000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f')).toBeUndefined();
    expect(() => caip2OfGenesis('00')).toThrow(RangeError);
  });
});

function requirement(overrides: Partial<PaymentRequirements> = {}): PaymentRequirements {
  return {
    scheme: 'paychan',
    network: REGTEST,
    amount: '7',
    asset: `${REGTEST}/slip44:0`,
    payTo: 'ws://127.0.0.1:8420/v1/ws',
    maxTimeoutSeconds: 300,
    extra: { variants: ['spilman-v1', 'spilman-v2'], minCapacitySat: '10000', maxCapacitySat: '100000000', minExpiryBlocks: 10, maxExpiryBlocks: 4320 },
    ...overrides,
  };
}

function payloadOf(req: PaymentRequirements, payload: Record<string, unknown>, accepted: Partial<PaymentRequirements> = {}): PaymentPayload {
  return { x402Version: 2, accepted: { ...req, ...accepted }, payload };
}

describe('payload codec', () => {
  const payment = msg('payment', { channelId: CHANNEL, totalSat: 1400n, signature: SIG });

  it('encodes a payment as {channelId, totalSat, signature} and decodes it back', () => {
    const payload = encodePayload(payment);
    expect(payload).toEqual({ channelId: CHANNEL, totalSat: '1400', signature: '07'.repeat(64) });
    expect(decodePayload(JSON.parse(JSON.stringify(payload)) as Record<string, unknown>)).toEqual(payment);
  });

  const good = { channelId: CHANNEL, totalSat: '1400', signature: '07'.repeat(64) };
  it.each([
    ['an extra field', { ...good, memo: 'x' }],
    ['a missing field', { channelId: CHANNEL, totalSat: '1400' }],
    ['a number total', { ...good, totalSat: 1400 }],
    ['a leading zero', { ...good, totalSat: '01400' }],
    ['a negative total', { ...good, totalSat: '-1' }],
    ['17 digits', { ...good, totalSat: '12345678901234567' }],
    ['uppercase hex', { ...good, signature: 'AB'.repeat(64) }],
    ['a short signature', { ...good, signature: '07'.repeat(63) }],
    ['a bad channel id', { ...good, channelId: 'ab'.repeat(32) }],
  ])('refuses %s with MALFORMED_MESSAGE', (_name, payload) => {
    expect(() => decodePayload(payload)).toThrow(expect.objectContaining({ code: 'MALFORMED_MESSAGE' }));
  });
});

describe('requirements', () => {
  it('reads an offer: network, payee URL, price and channel terms', () => {
    expect(readOffer(requirement())).toEqual({
      network: 'regtest',
      channelUrl: 'ws://127.0.0.1:8420/v1/ws',
      priceSat: 7n,
      variants: ['spilman-v1', 'spilman-v2'],
      minCapacitySat: 10_000n,
      maxCapacitySat: 100_000_000n,
      minExpiryBlocks: 10,
      maxExpiryBlocks: 4320,
    });
    expect(satAsset('mainnet')).toBe('bip122:000000000019d6689c085ae165831e93/slip44:0');
  });

  it.each([
    ['another scheme', { scheme: 'exact' }],
    ['an unknown network', { network: 'bip122:00000000000000000000000000000000' }],
    ['another asset', { asset: 'BTC' }],
    ['a zero price', { amount: '0' }],
    ['a decimal price', { amount: '0.5' }],
    ['an http payTo', { payTo: 'http://127.0.0.1/' }],
    ['no variants', { extra: { ...requirement().extra, variants: [] } }],
    ['an unknown variant', { extra: { ...requirement().extra, variants: ['duplex'] } }],
    ['a number capacity', { extra: { ...requirement().extra, minCapacitySat: 10000 } }],
    ['a zero expiry window', { extra: { ...requirement().extra, minExpiryBlocks: 0 } }],
  ])('refuses %s', (_name, overrides) => {
    expect(() => readOffer(requirement(overrides as Partial<PaymentRequirements>))).toThrow(RangeError);
  });

  it('the server scheme prices in satoshis and adds the terms and payTo', async () => {
    const server = new PaychanServerScheme({
      paywall: {} as never,
      payee: { channel: () => undefined },
      channelUrl: 'ws://127.0.0.1:9/v1/ws',
      policy: { network: 'regtest', variants: ['spilman-v2'], minCapacitySat: 20_000n, maxCapacitySat: 5_000_000n, minExpiryBlocks: 10, maxExpiryBlocks: 100 },
    });
    for (const price of [7, '7', '7 sat', '7 sats', { amount: '7', asset: `${REGTEST}/slip44:0` }]) {
      expect(await server.parsePrice(price, REGTEST)).toEqual({ amount: '7', asset: `${REGTEST}/slip44:0` });
    }
    for (const price of ['$0.01', '0', '1.5', -3, { amount: '7', asset: 'BTC' }]) await expect(server.parsePrice(price, REGTEST)).rejects.toThrow(RangeError);
    await expect(server.parsePrice(7, CAIP2_IDS.mainnet)).rejects.toThrow(RangeError);
    const enhanced = await server.enhancePaymentRequirements(requirement({ payTo: '', extra: {} }));
    expect(enhanced.payTo).toBe('ws://127.0.0.1:9/v1/ws');
    expect(readOffer(enhanced)).toMatchObject({ variants: ['spilman-v2'], minCapacitySat: 20_000n, maxCapacitySat: 5_000_000n, minExpiryBlocks: 10, maxExpiryBlocks: 100 });
  });
});

describe('checkPayload: a payload against the requirement it answers', () => {
  const req = requirement();
  const good = encodePayload(msg('payment', { channelId: CHANNEL, totalSat: 7n, signature: SIG }));

  it('accepts a well-formed payment for the same terms', () => {
    const checked = checkPayload(payloadOf(req, good), req, 'regtest');
    expect(checked).toEqual({ ok: true, payment: msg('payment', { channelId: CHANNEL, totalSat: 7n, signature: SIG }), priceSat: 7n });
  });

  it.each([
    ['x402 v1', { ...payloadOf(req, good), x402Version: 1 }, req, 'invalid_x402_version'],
    ['another scheme accepted', payloadOf(req, good, { scheme: 'exact' }), req, 'unsupported_scheme'],
    ['a requirement of another scheme', payloadOf(req, good), { ...req, scheme: 'exact' }, 'unsupported_scheme'],
    ['a requirement on another network', payloadOf(req, good), { ...req, network: CAIP2_IDS.mainnet }, 'unsupported_network'],
    ['a payload for another network', payloadOf(req, good, { network: CAIP2_IDS.mainnet }), req, 'network_mismatch'],
    ['a lower accepted amount', payloadOf(req, good, { amount: '6' }), req, 'invalid_paychan_requirements_mismatch'],
    ['another payee', payloadOf(req, good, { payTo: 'ws://evil/v1/ws' }), req, 'invalid_paychan_requirements_mismatch'],
    ['another asset', payloadOf(req, good, { asset: 'BTC' }), req, 'invalid_paychan_requirements_mismatch'],
    ['a malformed payload', payloadOf(req, { ...good, totalSat: '07' }), req, 'invalid_paychan_malformed_message'],
  ] as const)('refuses %s', (_name, payload, requirements, reason) => {
    const checked = checkPayload(payload as PaymentPayload, requirements as PaymentRequirements, 'regtest');
    expect(checked).toMatchObject({ ok: false, reason });
  });

  it('maps paychan codes to x402 reasons and back', () => {
    expect(reasonOf('PAYMENT_REPLAYED')).toBe('invalid_paychan_payment_replayed');
    expect(reasonOf('INSUFFICIENT_PAYMENT')).toBe('invalid_paychan_insufficient_payment');
    expect(codeOfReason('invalid_paychan_channel_expiring')).toBe('CHANNEL_EXPIRING');
    expect(codeOfReason('invalid_exact_bip122_amount')).toBeUndefined();
    expect(codeOfReason(undefined)).toBeUndefined();
  });
});
