/**
 * Zero-conf, only when the payee names it: payments before the funding confirms, up to the
 * per-channel limit; the rest waits for the confirmation. Off by default.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PeerError } from '../../src/payer/payer-client.js';
import { payeePolicy } from '../../src/protocol/policy.js';
import { localPair, waitUntil } from '../helpers/local-pair.js';
import { startFundedEnv, type RegtestEnv } from '../helpers/regtest-env.js';

let env: RegtestEnv;
beforeAll(async () => {
  env = await startFundedEnv();
});
afterAll(async () => {
  await env?.stop();
});

describe('zero-conf funding', () => {
  it('is refused as a policy unless a limit is named, and the limit needs the flag', () => {
    expect(() => payeePolicy({ network: 'regtest', allowZeroConf: true })).toThrow(RangeError);
    expect(() => payeePolicy({ network: 'regtest', zeroConfLimitSat: 1000n })).toThrow(RangeError);
  });

  it('takes payments up to the limit before the funding confirms, the rest after', async () => {
    const pair = await localPair({ secp: env.secp, backend: env.backend, payerWallet: env.wallet, feeRateSatPerVb: 2, payeePolicy: { allowZeroConf: true, zeroConfLimitSat: 5_000n } });
    try {
      const channel = await pair.payer.open({ variant: 'spilman-v2', capacitySat: 100_000n, expiryBlocks: 30 }); // no block mined
      expect((await env.backend.getTransaction(channel.funding.txid))?.confirmations).toBe(0);
      expect(await pair.payer.pay(4_000n)).toBe(4_000n);
      await expect(pair.payer.pay(2_000n)).rejects.toMatchObject({ code: 'ZERO_CONF_LIMIT' } satisfies Partial<PeerError>);
      expect(pair.payee.channel(channel.id)).toMatchObject({ type: 'ZeroConf', paidSat: 4_000n });
      await env.mine(1);
      await pair.payee.checkWatches();
      await waitUntil(() => pair.payee.channel(channel.id)?.type === 'Open', 'the funding to confirm');
      // The refused payment was signed and stored by the payer; it is resent on resume and taken now.
      pair.reconnect();
      await waitUntil(() => pair.payee.channel(channel.id)?.type === 'Open' && (pair.payee.channel(channel.id) as { paidSat: bigint }).paidSat === 6_000n, 'the resent payment');
      expect(await pair.payer.pay(1_000n)).toBe(7_000n);
    } finally {
      pair.stop();
    }
  });
});
