/**
 * Synthetic channels for the in-process benchmarks: real channel objects (real scripts, real
 * sighashes, real signatures) on made-up funding outpoints, so no chain is needed. The same
 * approach as test/helpers/protocol.ts; fixed keys, since a key's value changes no cost.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import type { ChainBackend } from '../../src/chain/backend.js';
import { loadNativeSecp256k1 } from '../../src/crypto/native.js';
import type { Secp256k1 } from '../../src/crypto/secp256k1.js';
import { fromHex, toHex } from '../../src/protocol/bytes.js';
import { makeChannel, type Channel, type ChannelTerms } from '../../src/protocol/channel.js';
import { encodeMessage, msg } from '../../src/protocol/messages.js';
import type { PayeeState } from '../../src/protocol/payee-machine.js';
import { paymentSighasher, signPayment } from '../../src/protocol/payment.js';
import type { Variant } from '../../src/protocol/scripts.js';
import type { PaymentSighasher } from '../../src/protocol/sighash.js';
import type { PayeeServiceOptions } from '../../src/payee/payee-service.js';
import { payeePolicy } from '../../src/protocol/policy.js';
import type { Store } from '../../src/store/store.js';
import { WalletKeys } from '../../src/wallet/keys.js';

export const secp: Secp256k1 = loadNativeSecp256k1();

const tagged = (tag: string): Uint8Array => sha256(new TextEncoder().encode(`paychan-bench ${tag}`));

export const PAYER_KEY = tagged('payer key');
export const PAYEE_KEY = tagged('payee key');
export const PAYER_PUB = secp.publicKeyCreate(PAYER_KEY);
export const PAYEE_PUB = secp.publicKeyCreate(PAYEE_KEY);
export const PAYER_SCRIPT = fromHex('0014' + toHex(tagged('payer script').subarray(0, 20)));
export const PAYEE_SCRIPT = fromHex('0014' + toHex(tagged('payee script').subarray(0, 20)));
export const CAPACITY_SAT = 1_000_000n;

/** Half the channels of each variant, so both scripts are exercised. */
export function variantOf(i: number): Variant {
  return i % 2 === 0 ? 'spilman-v1' : 'spilman-v2';
}

function tempIdOf(i: number): string {
  return toHex(tagged(`temp ${i}`).subarray(0, 16));
}

/** Channel `i`: a distinct funding txid, the same keys. */
export function syntheticChannel(i: number, variant: Variant = variantOf(i)): Channel {
  const terms: ChannelTerms = {
    variant,
    network: 'regtest',
    payerPubkey: PAYER_PUB,
    payeePubkey: PAYEE_PUB,
    capacitySat: CAPACITY_SAT,
    expiryHeight: 1_000,
    payerScript: PAYER_SCRIPT,
  };
  return makeChannel(terms, { txid: toHex(tagged(`funding ${i}`)), vout: i % 4 });
}

/** The payee's Open state of `channel`, as the state machine leaves it after funding confirmed. */
export function openState(i: number, channel: Channel, paidSat = 0n, signature: Uint8Array | null = null): PayeeState {
  const { funding: _f, id: _id, witnessScript: _w, fundingScript: _s, ...terms } = channel;
  return { tempId: tempIdOf(i), terms, keyIndex: i, type: 'Open', channel, paidSat, signature };
}

/** Signs `totalSat` on `channel` with the payer key. */
export function signTotal(channel: Channel, sighasher: PaymentSighasher, totalSat: bigint): Uint8Array {
  return signPayment(secp, channel, sighasher, PAYER_KEY, totalSat);
}

/** The wire text of a payment message. */
export function paymentText(channelId: string, totalSat: bigint, signature: Uint8Array): string {
  return encodeMessage(msg('payment', { channelId, totalSat, signature }));
}

export { paymentSighasher };

/**
 * A chain backend for in-process runs that never touch the chain (payments only): reading the
 * tip works, anything else is a bug in the benchmark and throws.
 */
function offlineBackend(): ChainBackend {
  const no = (what: string) => () => Promise.reject(new Error(`offline backend: ${what} not available in this benchmark`));
  return {
    name: 'offline',
    network: 'regtest',
    getTip: () => Promise.resolve({ height: 100, hash: '00'.repeat(32) }),
    getTransaction: no('getTransaction'),
    broadcast: no('broadcast'),
    getOutpointStatus: no('getOutpointStatus'),
    getBlock: no('getBlock'),
    estimateFeeRate: () => Promise.resolve(null),
    subscribeTips: () => () => undefined,
    close: () => Promise.resolve(),
  };
}

/** The options the benchmarks open a PayeeService with (synthetic keys, no chain). */
export function benchPayeeOptions(store: Store): PayeeServiceOptions {
  return {
    secp,
    policy: payeePolicy({ network: 'regtest' }),
    backend: offlineBackend(),
    store,
    keys: WalletKeys.fromSeed(PAYEE_KEY, 'regtest'),
    payoutScript: PAYEE_SCRIPT,
    fallbackFeeRateSatPerVb: 2,
  };
}
