/** What `paychan demo --browser` pays for a pasted line: a BIP21 URI's address and amount, or an address. */
import { describe, expect, it } from 'vitest';
import { paymentOf } from '../../src/demo/browser-demo.js';

describe('paymentOf', () => {
  it('reads a BIP21 URI amount in BTC to satoshis, ignoring other parameters', () => {
    expect(paymentOf('bitcoin:bcrt1qabc?amount=0.001&label=paychan%20channel')).toEqual({ address: 'bcrt1qabc', valueSat: 100_000n });
    expect(paymentOf('  BITCOIN:bcrt1qabc?amount=1.5 ')).toEqual({ address: 'bcrt1qabc', valueSat: 150_000_000n });
    expect(paymentOf('bitcoin:bcrt1qabc?amount=0.00000001')).toEqual({ address: 'bcrt1qabc', valueSat: 1n });
  });
  it('pays 100,000 sat to a bare address, or a URI without amount', () => {
    expect(paymentOf('bcrt1qabc')).toEqual({ address: 'bcrt1qabc', valueSat: 100_000n });
    expect(paymentOf('bitcoin:bcrt1qabc')).toEqual({ address: 'bcrt1qabc', valueSat: 100_000n });
  });
});
