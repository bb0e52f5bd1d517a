/**
 * Key derivation for the wallet: BIP32 from a seed, BIP84 (native segwit P2WPKH) for addresses,
 * and a separate branch for channel keys.
 *
 * Paths (coin type 0 on mainnet, 1 on every test network, as BIP44 registers them):
 * - receive addresses `m/84'/coin'/0'/0/i`, change addresses `m/84'/coin'/0'/1/i` (BIP84, so the
 *   same seed restores its coins in any BIP84 wallet);
 * - channel keys `m/1017'/coin'/0'/i'` (hardened: a leaked channel key, together with anything
 *   public, never reveals a sibling). Why a branch of their own:
 *   - a channel key signs 2-of-2 / CLTV scripts, never a P2WPKH spend; no BIP44/49/84/86 wallet
 *     derives purpose 1017' (LND uses the same purpose for its non-address keys), so a channel key
 *     can never also be an address this or any other wallet hands out or scans for;
 *   - each channel takes the next index and no index is ever used twice (the wallet allocates
 *     them), so a key is never reused across channels: channels stay unlinkable on chain, a
 *     leaked key exposes one channel, and two channels with the same peer and expiry never have
 *     the same funding script.
 *
 * - opening keys (Spilman channels opened with a cookie, see src/protocol/opening-cookie.ts):
 *   `k = HMAC-SHA256(s, tag ‖ n ‖ counter) mod N`, n a 52-bit number taken from the cookie's MAC,
 *   s the private key of `m/1017'/coin'/2'`, counter 0 (the next one only if k would be 0,
 *   probability ~2^-256). The payee allocates nothing: the key is a function of its seed and the
 *   proposal, and a channel stores n to find the key again at close. Not two hardened BIP32
 *   levels: every stranger's hello derives one, and an HMAC costs ~1/100 of them (docs/design.md,
 *   "Openings without state"); nothing needs these keys to be BIP32 nodes. The cookie MAC's key is
 *   {@link WalletKeys.openingSecret}, the private key of `m/1017'/coin'/3'`.
 *
 * Public keys come from @scure/bip32 (derivation is not signing; every signature still goes
 * through the project's {@link Secp256k1}).
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { HDKey } from '@scure/bip32';
import { payments } from 'bitcoinjs-lib';
import { bitcoinjsNetwork, type NetworkName } from '../protocol/network.js';
import { OPENING_KEY_INDEX_BASE } from '../protocol/opening-cookie.js';

/** Which BIP84 chain an address is on: external (`receive`, 0) or internal (`change`, 1). */
export type KeyChain = 'receive' | 'change';

/** A private key and its 33-byte compressed public key. */
export interface KeyPair {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** One BIP84 address with everything needed to recognise and spend what it receives. */
export interface DerivedAddress {
  readonly chain: KeyChain;
  readonly index: number;
  readonly path: string;
  readonly publicKey: Uint8Array;
  /** The P2WPKH output script `0014<hash160(publicKey)>`. */
  readonly script: Uint8Array;
  readonly address: string;
}

const HARDENED = 0x8000_0000;
const MIN_SEED_BYTES = 16;
const MAX_SEED_BYTES = 64;
const CHAIN_NUMBER: Readonly<Record<KeyChain, number>> = { receive: 0, change: 1 };
/** The order of secp256k1's group: a private key is in [1, N). */
const CURVE_ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const OPENING_KEY_TAG = new TextEncoder().encode('paychan/opening-key/1');

/** @returns the BIP44 coin type: 0 on mainnet, 1 on testnet, signet and regtest. */
export function coinType(network: NetworkName): 0 | 1 {
  return network === 'mainnet' ? 0 : 1;
}

/** @returns the BIP84 path of address `index` on `chain`, e.g. `m/84'/1'/0'/0/5`. */
export function addressPath(network: NetworkName, chain: KeyChain, index: number): string {
  return `m/84'/${coinType(network)}'/0'/${CHAIN_NUMBER[chain]}/${index}`;
}

/** @returns the path of channel key `index`, `m/1017'/coin'/0'/index'`. */
export function channelKeyPath(network: NetworkName, index: number): string {
  return `m/1017'/${coinType(network)}'/0'/${index}'`;
}

function checkIndex(index: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= HARDENED) {
    throw new RangeError(`key index must be an integer in [0, 2^31), got ${index}`);
  }
}

/**
 * The wallet's keys, derived from one seed. Intermediate hardened nodes are derived once and
 * kept, so each address costs one non-hardened derivation.
 */
export class WalletKeys {
  readonly #chains: Readonly<Record<KeyChain, HDKey>>;
  readonly #channelBranch: HDKey;
  readonly #duplexBranch: HDKey;
  readonly #openingKeySecret: Uint8Array;
  readonly #openingSecret: Uint8Array;

  private constructor(
    readonly network: NetworkName,
    root: HDKey,
  ) {
    const coin = coinType(network);
    const account = root.derive(`m/84'/${coin}'/0'`);
    this.#chains = { receive: account.deriveChild(0), change: account.deriveChild(1) };
    this.#channelBranch = root.derive(`m/1017'/${coin}'/0'`);
    this.#duplexBranch = root.derive(`m/1017'/${coin}'/1'`);
    this.#openingKeySecret = keyPair(root.derive(`m/1017'/${coin}'/2'`)).privateKey;
    this.#openingSecret = keyPair(root.derive(`m/1017'/${coin}'/3'`)).privateKey;
  }

  /**
   * @param seed the BIP32 seed (e.g. the 64 bytes BIP39 makes of a mnemonic), 16 to 64 bytes.
   * @throws RangeError if the seed is shorter than 16 or longer than 64 bytes.
   */
  static fromSeed(seed: Uint8Array, network: NetworkName): WalletKeys {
    if (!(seed instanceof Uint8Array) || seed.length < MIN_SEED_BYTES || seed.length > MAX_SEED_BYTES) {
      throw new RangeError(`seed must be ${MIN_SEED_BYTES} to ${MAX_SEED_BYTES} bytes`);
    }
    return new WalletKeys(network, HDKey.fromMasterSeed(seed));
  }

  /**
   * @returns address `index` on `chain` (BIP84).
   * @throws RangeError if `index` is not an integer in [0, 2^31).
   */
  address(chain: KeyChain, index: number): DerivedAddress {
    const publicKey = this.#child(this.#chains[chain], index).publicKey;
    if (!publicKey) throw new Error('unreachable: derived key without public key');
    const payment = payments.p2wpkh({ pubkey: publicKey, network: bitcoinjsNetwork(this.network) });
    if (!payment.output || !payment.address) throw new Error('unreachable: p2wpkh without output');
    return { chain, index, path: addressPath(this.network, chain, index), publicKey, script: payment.output, address: payment.address };
  }

  /**
   * @returns the key pair of address `index` on `chain`.
   * @throws RangeError if `index` is not an integer in [0, 2^31).
   */
  addressKey(chain: KeyChain, index: number): KeyPair {
    return keyPair(this.#child(this.#chains[chain], index));
  }

  /**
   * @returns channel key `index` (path {@link channelKeyPath}). Callers must never use one index
   *   for two channels; {@link Wallet.nextChannelKey} allocates them.
   * @throws RangeError if `index` is not an integer in [0, 2^31).
   */
  channelKey(index: number): KeyPair {
    checkIndex(index);
    return keyPair(this.#channelBranch.deriveChild(index + HARDENED));
  }

  /**
   * @returns duplex channel key `index`, `m/1017'/coin'/1'/index'`: a branch of its own, so a
   *   payee's Spilman keys (counted by its store) and its duplex keys (counted by its wallet)
   *   never coincide.
   */
  duplexKey(index: number): KeyPair {
    checkIndex(index);
    return keyPair(this.#duplexBranch.deriveChild(index + HARDENED));
  }

  /**
   * @returns the private key of opening key `n` (see the module comment): one HMAC, no curve
   *   operation; the caller makes the public key with its (native) secp256k1 if it needs it.
   * @throws RangeError if `n` is not an integer in [0, 2^52).
   */
  openingPrivateKey(n: number): Uint8Array {
    if (!Number.isInteger(n) || n < 0 || n >= 2 ** 52) throw new RangeError(`opening key number must be an integer in [0, 2^52), got ${n}`);
    const data = new Uint8Array(OPENING_KEY_TAG.length + 12);
    data.set(OPENING_KEY_TAG);
    const view = new DataView(data.buffer);
    view.setBigUint64(OPENING_KEY_TAG.length, BigInt(n));
    for (let counter = 0; ; counter++) {
      view.setUint32(OPENING_KEY_TAG.length + 8, counter);
      // mod N of a uniform 256-bit number: biased by ~2^-128, as BIP32's own children are.
      const k = bytesToBigInt(hmac(sha256, this.#openingKeySecret, data)) % CURVE_ORDER;
      if (k !== 0n) return bigIntTo32Bytes(k);
    }
  }

  /**
   * @returns the private key of a payee's Spilman channel by the `keyIndex` its state stores:
   *   below {@link OPENING_KEY_INDEX_BASE}, a counter key of an older store ({@link channelKey});
   *   from there on, opening key `keyIndex − base` ({@link openingPrivateKey}).
   */
  payeeChannelPrivateKey(keyIndex: number): Uint8Array {
    return keyIndex < OPENING_KEY_INDEX_BASE ? this.channelKey(keyIndex).privateKey : this.openingPrivateKey(keyIndex - OPENING_KEY_INDEX_BASE);
  }

  /** @returns the 32-byte key of the payee's opening-cookie MAC (a secret: never sent anywhere). */
  openingSecret(): Uint8Array {
    return this.#openingSecret.slice();
  }

  #child(parent: HDKey, index: number): HDKey {
    checkIndex(index);
    // A child key is invalid with probability ~2^-127 (BIP32 says: skip the index); we treat it
    // as impossible rather than shifting every later index.
    return parent.deriveChild(index);
  }
}

function bytesToBigInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

function bigIntTo32Bytes(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 31; i >= 0; i--, n >>= 8n) out[i] = Number(n & 0xffn);
  return out;
}

function keyPair(node: HDKey): KeyPair {
  if (!node.privateKey || !node.publicKey) throw new Error('unreachable: derived key without private key');
  return { privateKey: node.privateKey, publicKey: node.publicKey };
}
