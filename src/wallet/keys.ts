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
 * - opening keys `m/1017'/coin'/2'/hi'/lo'` (Spilman channels opened with a cookie, see
 *   src/protocol/opening-cookie.ts): a 52-bit number taken from the cookie's MAC, split in two
 *   26-bit hardened indices. The payee allocates nothing: the key is a function of its seed and
 *   the proposal, and a channel stores the number to find the key again at close. The MAC's key
 *   is {@link WalletKeys.openingSecret}, the private key of `m/1017'/coin'/3'`.
 *
 * Public keys come from @scure/bip32 (derivation is not signing; every signature still goes
 * through the project's {@link Secp256k1}).
 */
import { HDKey } from '@scure/bip32';
import { payments } from 'bitcoinjs-lib';
import { bitcoinjsNetwork, type NetworkName } from '../protocol/network.js';

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
  readonly #openingBranch: HDKey;
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
    this.#openingBranch = root.derive(`m/1017'/${coin}'/2'`);
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
   * @returns opening key `n`, `m/1017'/coin'/2'/hi'/lo'` with hi = ⌊n / 2^26⌋, lo = n mod 2^26.
   * @throws RangeError if `n` is not an integer in [0, 2^52).
   */
  openingKey(n: number): KeyPair {
    if (!Number.isInteger(n) || n < 0 || n >= 2 ** 52) throw new RangeError(`opening key number must be an integer in [0, 2^52), got ${n}`);
    const hi = Math.floor(n / 2 ** 26);
    const lo = n % 2 ** 26;
    return keyPair(this.#openingBranch.deriveChild(hi + HARDENED).deriveChild(lo + HARDENED));
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

function keyPair(node: HDKey): KeyPair {
  if (!node.privateKey || !node.publicKey) throw new Error('unreachable: derived key without private key');
  return { privateKey: node.privateKey, publicKey: node.publicKey };
}
