// BIP84 derivation checked against the BIP's own test vectors (test/fixtures/wallet-bip84.json),
// plus the properties of the channel-key branch.
import { readFileSync } from 'node:fs';
import { HDKey } from '@scure/bip32';
import { mnemonicToSeedSync } from '@scure/bip39';
import { hmac } from '@noble/hashes/hmac.js';
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

describe('opening keys', () => {
  const seed32 = new Uint8Array(32).fill(9);
  const keys = WalletKeys.fromSeed(seed32, 'regtest');

  it('are frozen: HMAC-SHA256(key of m/1017\'/coin\'/2\', tag ‖ n ‖ counter 0) mod N', () => {
    // Frozen: a channel stores only n, so these bytes must never change.
    const vectors: [number, string, string][] = [
      [0, 'c958b2eb6015ef2b9b5407f66c517146abe797c19f1b0b5340584c99b9eb124c', '036acba5733602751a1a470430117cf6e7ec61f6b541e26bfe2c4175b8bb74fbef'],
      [1, '3b65192a62d5d4068652bf36304f43fc26907a79e372921dfa34e6dc9bb3adbd', '0297dc9136190d80ba162ca8117d5d0a6a7fca179fc9120299c6e9a8604c088605'],
      [2 ** 52 - 1, '92a431ea6e5487c42b4d171f011c0f199846d76ca35540594ad666eb29522b6f', '02d17032f477232b5e3888dd756d850e8d97784b0d5f7a0db5f8c5a4e36f0bd71a'],
    ];
    const secret = HDKey.fromMasterSeed(seed32).derive("m/1017'/1'/2'").privateKey!;
    const order = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
    for (const [n, privateKey, publicKey] of vectors) {
      expect(bytesToHex(keys.openingPrivateKey(n))).toBe(privateKey);
      expect(bytesToHex(secp.publicKeyCreate(keys.openingPrivateKey(n)))).toBe(publicKey);
      // The same from the module comment's definition, written out here.
      const data = new Uint8Array([...new TextEncoder().encode('paychan/opening-key/1'), ...hexToBytes(n.toString(16).padStart(16, '0')), 0, 0, 0, 0]);
      const k = BigInt(`0x${bytesToHex(hmac(sha256, secret, data))}`) % order;
      expect(k.toString(16).padStart(64, '0')).toBe(privateKey);
    }
    // Another network, another coin type, other keys.
    expect(bytesToHex(WalletKeys.fromSeed(seed32, 'mainnet').openingPrivateKey(0))).not.toBe(vectors[0]![1]);
  });

  it('rejects numbers outside [0, 2^52)', () => {
    for (const n of [-1, 2 ** 52, 0.5, Number.NaN]) expect(() => keys.openingPrivateKey(n)).toThrow(RangeError);
  });
});
