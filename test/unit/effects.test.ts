import { describe, expect, expectTypeOf, it } from 'vitest';
import { unknownEffect, type PayeeEffect, type PayerEffect } from '../../src/protocol/effects.js';
import type { payeeOpen, payeeStep } from '../../src/protocol/payee-machine.js';
import type { payerPropose, payerStep } from '../../src/protocol/payer-machine.js';

type EffectsOf<F extends (...args: never[]) => { effects: readonly unknown[] }> = ReturnType<F>['effects'][number];

describe('effects per role', () => {
  it('each machine asks only for its own role’s effects (checked by the type checker)', () => {
    expectTypeOf<EffectsOf<typeof payeeStep>>().toEqualTypeOf<PayeeEffect>();
    expectTypeOf<EffectsOf<typeof payeeOpen>>().toEqualTypeOf<PayeeEffect>();
    expectTypeOf<EffectsOf<typeof payerStep>>().toEqualTypeOf<PayerEffect>();
    expectTypeOf<EffectsOf<typeof payerPropose>>().toEqualTypeOf<PayerEffect>();
    // The payer's driver has no case for a payee's broadcast, and the other way round.
    expectTypeOf<Extract<PayerEffect, { type: 'broadcast' | 'watch-confirmations' | 'close-requested' }>>().toBeNever();
    expectTypeOf<Extract<PayeeEffect, { type: 'create-funding' | 'release-funding' }>>().toBeNever();
  });

  it('fails loudly on an effect no driver case handles', () => {
    expect(() => unknownEffect({ type: 'teleport' } as never)).toThrow(/no driver case for effect teleport/);
  });
});
