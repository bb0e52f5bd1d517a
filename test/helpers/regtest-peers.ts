/**
 * Payee and payer builders for tests on a regtest env that wire their own links.
 *
 * A PayerClient on a regtest env's funded wallet, for tests that wire their own link: a fresh
 * channel key and change address, an in-memory store, 2 sat/vB funding. Override what differs.
 */
import { randomBytes } from 'node:crypto';
import { address as baddress } from 'bitcoinjs-lib';
import type { ChainBackend } from '../../src/chain/backend.js';
import type { Secp256k1 } from '../../src/crypto/secp256k1.js';
import { PayerClient, type PayerClientOptions } from '../../src/payer/payer-client.js';
import { bitcoinjsNetwork } from '../../src/protocol/network.js';
import { payeePolicy, payerPolicy } from '../../src/protocol/policy.js';
import { PayeeService, type PayeeServiceOptions } from '../../src/payee/payee-service.js';
import { WalletKeys } from '../../src/wallet/keys.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { PeerLink } from '../../src/transport/link.js';
import type { Wallet } from '../../src/wallet/wallet.js';

export function regtestPayer(env: { secp: Secp256k1; backend: ChainBackend; wallet: Wallet }, link: PeerLink, overrides: Partial<PayerClientOptions> = {}): PayerClient {
  return new PayerClient(regtestPayerOptions(env, link, overrides));
}

/** The options regtestPayer gives its client (for PayerClient.restore). */
export function regtestPayerOptions(env: { secp: Secp256k1; backend: ChainBackend; wallet: Wallet }, link: PeerLink, overrides: Partial<PayerClientOptions> = {}): PayerClientOptions {
  return {
    secp: env.secp,
    policy: payerPolicy({ network: 'regtest' }),
    network: 'regtest',
    backend: env.backend,
    wallet: env.wallet,
    channelKey: overrides.channelKey ?? env.wallet.nextChannelKey(),
    payoutScript: overrides.payoutScript ?? baddress.toOutputScript(env.wallet.changeAddress(), bitcoinjsNetwork('regtest')),
    link,
    store: new MemoryStore(),
    fundingFeeRateSatPerVb: 2,
    random16: () => randomBytes(16),
    ...overrides,
  };
}

/** A PayeeService on a regtest env (fresh keys, in-memory store, 2 sat/vB fallback). Override what differs. */
export function regtestPayee(env: { secp: Secp256k1; backend: ChainBackend }, overrides: Partial<PayeeServiceOptions> = {}): Promise<PayeeService> {
  const keys = overrides.keys ?? WalletKeys.fromSeed(randomBytes(32), 'regtest');
  return PayeeService.open({
    store: new MemoryStore(),
    secp: env.secp,
    policy: payeePolicy({ network: 'regtest' }),
    backend: env.backend,
    keys,
    payoutScript: keys.address('receive', 0).script,
    fallbackFeeRateSatPerVb: 2,
    ...overrides,
  });
}
