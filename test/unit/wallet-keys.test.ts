// BIP84 derivation checked against the BIP's own test vectors (test/fixtures/wallet-bip84.json),
// plus the properties of the channel-key branch.
import { readFileSync } from 'node:fs';
import { HDKey } from '@scure/bip32';
import { mnemonicToSeedSync } from '@scure/bip39';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { describe, expect, it } from 'vitest';
import { secp256k1 } from '../../src/crypto/index.js';
import { addressPath, channelKeyPath, coinType, type KeyChain, WalletKeys } from '../../src/wallet/keys.js';

interface Bip84Fixture {
  mnemonic: string;
  passphrase: string;
  rootnode: string;
  account: { path: string; xpriv: string };
  valid: { description: string; chain: KeyChain; index: number; path: string; privkey: string; pubkey: string; address: string }[];
  invalid: { description: string; seedHex: string; error: string }[];
}

const fixture = JSON.parse(readFileSync(new URL('../fixtures/wallet-bip84.json', import.meta.url), 'utf8')) as Bip84Fixture;
/** SLIP-132 version bytes of zprv/zpub, the BIP84 serialisation the vectors use. */
const ZPRV_VERSIONS = { private: 0x04b2430c, public: 0x04b24746 };
const secp = secp256k1();
const seed = mnemonicToSeedSync(fixture.mnemonic, fixture.passphrase);

/** Base58Check decoding of a WIF key: 0x80 || key32 || 0x01 (compressed) || checksum4. */
function wifToPrivateKey(wif: string): Uint8Array {
  const alphabet = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
  let n = 0n;
  for (const ch of wif) {
    const digit = alphabet.indexOf(ch);
    if (digit < 0) throw new Error(`bad base58 character ${ch}`);
    n = n * 58n + BigInt(digit);
  }
  const bytes = hexToBytes(n.toString(16).padStart(76, '0'));
  const payload = bytes.slice(0, -4);
  expect(bytesToHex(sha256(sha256(payload)).slice(0, 4))).toBe(bytesToHex(bytes.slice(-4)));
  expect(payload[0]).toBe(0x80);
  expect(payload[33]).toBe(0x01);
  return payload.slice(1, 33);
}

describe('BIP84 test vectors', () => {
  const keys = WalletKeys.fromSeed(seed, 'mainnet');

  it('the mnemonic gives the BIP root and account keys', () => {
    const root = HDKey.fromMasterSeed(seed, ZPRV_VERSIONS);
    expect(root.privateExtendedKey).toBe(fixture.rootnode);
    expect(root.derive(fixture.account.path).privateExtendedKey).toBe(fixture.account.xpriv);
  });

  for (const v of fixture.valid) {
    it(v.description, () => {
      const derived = keys.address(v.chain, v.index);
      expect(derived.path).toBe(v.path);
      expect(addressPath('mainnet', v.chain, v.index)).toBe(v.path);
      expect(bytesToHex(derived.publicKey)).toBe(v.pubkey);
      expect(derived.address).toBe(v.address);
      expect(bytesToHex(derived.script)).toMatch(/^0014[0-9a-f]{40}$/);
      const pair = keys.addressKey(v.chain, v.index);
      expect(bytesToHex(pair.privateKey)).toBe(bytesToHex(wifToPrivateKey(v.privkey)));
      expect(bytesToHex(pair.publicKey)).toBe(v.pubkey);
      expect(bytesToHex(secp.publicKeyCreate(pair.privateKey))).toBe(v.pubkey);
    });
  }

  for (const v of fixture.invalid) {
    it(`rejects: ${v.description}`, () => {
      expect(() => WalletKeys.fromSeed(hexToBytes(v.seedHex), 'mainnet')).toThrow(RangeError);
    });
  }
});

describe('test networks', () => {
  it('use coin type 1 and their own address prefix', () => {
    expect(coinType('mainnet')).toBe(0);
    for (const network of ['testnet', 'signet', 'regtest'] as const) expect(coinType(network)).toBe(1);
    const root = HDKey.fromMasterSeed(seed);
    const regtest = WalletKeys.fromSeed(seed, 'regtest').address('change', 3);
    expect(regtest.path).toBe("m/84'/1'/0'/1/3");
    expect(bytesToHex(regtest.publicKey)).toBe(bytesToHex(root.derive("m/84'/1'/0'/1/3").publicKey!));
    expect(regtest.address).toMatch(/^bcrt1q/);
    expect(WalletKeys.fromSeed(seed, 'testnet').address('change', 3).address).toMatch(/^tb1q/);
    expect(WalletKeys.fromSeed(seed, 'signet').address('change', 3).address).toBe(WalletKeys.fromSeed(seed, 'testnet').address('change', 3).address);
  });

  it('rejects indices outside [0, 2^31)', () => {
    const keys = WalletKeys.fromSeed(seed, 'regtest');
    for (const index of [-1, 1.5, 2 ** 31, Number.NaN]) {
      expect(() => keys.address('receive', index)).toThrow(RangeError);
      expect(() => keys.channelKey(index)).toThrow(RangeError);
    }
  });
});

describe('channel keys', () => {
  const keys = WalletKeys.fromSeed(seed, 'regtest');

  it("derive at m/1017'/coin'/0'/i' (hardened)", () => {
    expect(channelKeyPath('regtest', 7)).toBe("m/1017'/1'/0'/7'");
    expect(channelKeyPath('mainnet', 7)).toBe("m/1017'/0'/0'/7'");
    const node = HDKey.fromMasterSeed(seed).derive("m/1017'/1'/0'/7'");
    const pair = keys.channelKey(7);
    expect(bytesToHex(pair.privateKey)).toBe(bytesToHex(node.privateKey!));
    expect(bytesToHex(pair.publicKey)).toBe(bytesToHex(secp.publicKeyCreate(pair.privateKey)));
  });

  it('never collide with each other nor with any address key', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) {
      seen.add(bytesToHex(keys.channelKey(i).publicKey));
      seen.add(bytesToHex(keys.address('receive', i).publicKey));
      seen.add(bytesToHex(keys.address('change', i).publicKey));
    }
    expect(seen.size).toBe(90);
  });
});
