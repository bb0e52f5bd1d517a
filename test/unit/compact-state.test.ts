/** Packing an idle channel and unpacking it gives back the same state, exactly. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { packState, unpackState } from '../../src/payee/compact-state.js';
import { fromHex, toHex } from '../../src/protocol/bytes.js';
import { makeChannel } from '../../src/protocol/channel.js';
import type { PayeeState } from '../../src/protocol/payee-machine.js';
import { terms } from '../helpers/protocol.js';

describe('compact channel state', () => {
  it('round-trips Open and Suspended states of both variants', () => {
    fc.assert(
      fc.property(
        fc.record({
          variant: fc.constantFrom('spilman-v1' as const, 'spilman-v2' as const),
          type: fc.constantFrom('Open' as const, 'Suspended' as const),
          tempId: fc.uint8Array({ minLength: 16, maxLength: 16 }).map(toHex),
          // Counter-allocated keys (older stores) and opening keys (2^31 + 52 bits of a cookie's MAC).
          keyIndex: fc.oneof(fc.nat({ max: 2 ** 31 - 1 }), fc.integer({ min: 2 ** 31, max: Number.MAX_SAFE_INTEGER })),
          capacitySat: fc.bigInt({ min: 10_000n, max: 2_100_000_000_000_000n }),
          expiryHeight: fc.integer({ min: 1, max: 499_999_999 }),
          script: fc.constantFrom('0014' + '11'.repeat(20), '0020' + '22'.repeat(32), '5120' + '33'.repeat(32), '76a914' + '44'.repeat(20) + '88ac'),
          txid: fc.uint8Array({ minLength: 32, maxLength: 32 }).map(toHex),
          vout: fc.nat({ max: 0xffff }),
          paidSat: fc.bigInt({ min: 0n, max: 10_000n }),
          signature: fc.option(fc.uint8Array({ minLength: 64, maxLength: 64 }), { nil: null }),
        }),
        (r) => {
          const t = terms(r.variant, { capacitySat: r.capacitySat, expiryHeight: r.expiryHeight, payerScript: fromHex(r.script) });
          const state = { tempId: r.tempId, terms: t, keyIndex: r.keyIndex, type: r.type, channel: makeChannel(t, { txid: r.txid, vout: r.vout }), paidSat: r.paidSat, signature: r.signature } as PayeeState;
          const packed = packState(state);
          expect(packed).not.toBeNull();
          expect(packed!.length).toBeLessThan(300);
          expect(unpackState(packed!)).toEqual(state);
        },
      ),
      { numRuns: 300 },
    );
  });
  it('leaves other states unpacked', () => {
    const t = terms('spilman-v1');
    const channel = makeChannel(t, { txid: '00'.repeat(32), vout: 0 });
    expect(packState({ tempId: '00'.repeat(16), terms: t, keyIndex: 0, type: 'AwaitingConfirmation', channel, fundingTxHex: '00' })).toBeNull();
  });
});
