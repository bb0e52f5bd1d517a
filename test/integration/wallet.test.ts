/**
 * The wallet against a real regtest node (btcd, or bitcoind with PAYCHAN_BITCOIND): the node mines
 * to the wallet's first receive address, and every claim the wallet makes (balance, funded
 * transactions, outputs) is checked against what the node itself says.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { address as baddress, networks, payments, Transaction } from 'bitcoinjs-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Outpoint } from '../../src/chain/backend.js';
import { startRegtestNode, type RegtestNode } from '../../src/chain/regtest/index.js';
import { secp256k1 } from '../../src/crypto/index.js';
import { isWalletError } from '../../src/wallet/errors.js';
import { WalletKeys } from '../../src/wallet/keys.js';
import { Wallet } from '../../src/wallet/wallet.js';

const secp = secp256k1();
/** Test-only seed; its coins exist only on throwaway regtest chains. */
const SEED = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff);
const OTHER = WalletKeys.fromSeed(new Uint8Array(32).fill(9), 'regtest');
const COINBASE_MATURITY = 100;
const BTC = 100_000_000n;

let node: RegtestNode | undefined;
let wallet: Wallet;
let miningScriptHex: string;

function backend() {
  if (!node) throw new Error('node not started');
  return node.backend;
}

/**
 * The node's own account of the wallet's coins: every coinbase output paying the mining address
 * (found block by block), plus `extra` outpoints, that the node says are unspent; summed into
 * mature and immature the way the node counts confirmations.
 */
async function nodeBalance(extra: readonly Outpoint[] = []): Promise<{ confirmedSat: bigint; immatureSat: bigint }> {
  const tip = await backend().getTip();
  let confirmedSat = 0n;
  let immatureSat = 0n;
  for (let height = 1; height <= tip.height; height++) {
    const coinbase = Transaction.fromHex((await backend().getBlock(height)).txs[0]!);
    for (const [vout, out] of coinbase.outs.entries()) {
      if (bytesToHex(out.script) !== miningScriptHex) continue;
      const status = await backend().getOutpointStatus({ txid: coinbase.getId(), vout }, height);
      if (status.state !== 'unspent') continue;
      expect(status.valueSat).toBe(out.value);
      if (status.confirmations >= COINBASE_MATURITY) confirmedSat += status.valueSat;
      else immatureSat += status.valueSat;
    }
  }
  for (const outpoint of extra) {
    const status = await backend().getOutpointStatus(outpoint, 0);
    if (status.state === 'unspent' && status.confirmations >= 1) confirmedSat += status.valueSat;
  }
  return { confirmedSat, immatureSat };
}

/** A 2-of-2 P2WSH like a channel's funding output, with two fresh channel keys. */
function channelScript(): Uint8Array {
  const pubkeys = [wallet.nextChannelKey().publicKey, wallet.nextChannelKey().publicKey];
  const p2wsh = payments.p2wsh({ redeem: payments.p2ms({ m: 2, pubkeys, network: networks.regtest }), network: networks.regtest });
  return p2wsh.output!;
}

beforeAll(async () => {
  // The node must know where to mine before the wallet can connect to it, so take the address
  // from the keys; the wallet's first receive address is that same one.
  const miningAddress = WalletKeys.fromSeed(SEED, 'regtest').address('receive', 0).address;
  node = await startRegtestNode({ miningAddress });
  wallet = await Wallet.open({ seed: SEED, network: 'regtest', backend: node.backend, secp });
  expect(wallet.receiveAddress()).toBe(miningAddress);
  miningScriptHex = bytesToHex(baddress.toOutputScript(miningAddress, networks.regtest));
  await node.mine(110);
  const result = await wallet.sync();
  expect(result.tip.height).toBe(110);
});

afterAll(async () => {
  await node?.stop();
});

describe('wallet on a regtest node', () => {
  it('has the balance the node says: mature and immature coinbase outputs', async () => {
    const expected = await nodeBalance();
    expect(expected.confirmedSat).toBeGreaterThan(0n);
    expect(wallet.balance()).toEqual({ ...expected, unconfirmedSat: 0n });
  });

  it('funds a P2WSH output the node accepts, with the exact value, and never double-spends', async () => {
    const script = channelScript();
    const valueSat = 123_456_789n;
    const funded = await wallet.fund([{ script, valueSat }], 2);
    expect(Number(funded.feeSat) / funded.vsize).toBeGreaterThanOrEqual(2);

    const accept = await backend().testAccept(funded.txHex);
    // Both btcd and bitcoind report the size and fee they computed: they must be ours.
    expect(accept).toEqual({ allowed: true, txid: funded.txid, vsize: funded.vsize, feeSat: funded.feeSat });

    // Not broadcast yet: a second funding must not touch the first one's inputs.
    const second = await wallet.fund([{ script: channelScript(), valueSat }], 2);
    const used = new Set(funded.inputs.map((i) => `${i.txid}:${i.vout}`));
    expect(second.inputs.some((i) => used.has(`${i.txid}:${i.vout}`))).toBe(false);
    expect((await backend().testAccept(second.txHex)).allowed).toBe(true);
    expect(await wallet.release(second.txid)).toBe(true);

    await wallet.broadcast(funded.txid);
    const change = funded.changeVout === undefined ? 0n : Transaction.fromHex(funded.txHex).outs[funded.changeVout]!.value;
    expect(wallet.balance().unconfirmedSat).toBe(change);
    expect((await backend().getTransaction(funded.txid))?.confirmations).toBe(0);

    await node!.mine(1);
    await wallet.sync();
    const status = await backend().getOutpointStatus({ txid: funded.txid, vout: 0 }, 0);
    expect(status).toEqual({ state: 'unspent', valueSat, scriptHex: bytesToHex(script), confirmations: 1 });

    const changeOutpoints = funded.changeVout === undefined ? [] : [{ txid: funded.txid, vout: funded.changeVout }];
    expect(wallet.balance()).toEqual({ ...(await nodeBalance(changeOutpoints)), unconfirmedSat: 0n });
  });

  it('sends to an address: spent inputs and change are known before the block', async () => {
    const before = wallet.balance();
    const to = OTHER.address('receive', 0);
    const sent = await wallet.send(to.address, 2n * BTC, 1);
    const tx = Transaction.fromHex(sent.txHex);
    expect(bytesToHex(tx.outs[0]!.script)).toBe(bytesToHex(to.script));
    expect((await backend().getTransaction(sent.txid))?.confirmations).toBe(0);
    const inputSum = before.confirmedSat - wallet.balance().confirmedSat;
    expect(inputSum).toBe(2n * BTC + sent.feeSat + wallet.balance().unconfirmedSat);

    await node!.mine(1);
    await wallet.sync();
    const status = await backend().getOutpointStatus({ txid: sent.txid, vout: 0 }, 0);
    expect(status).toMatchObject({ state: 'unspent', valueSat: 2n * BTC, confirmations: 1 });
    expect(wallet.balance().unconfirmedSat).toBe(0n);
  });

  it('says INSUFFICIENT_FUNDS, with how much is missing, when it cannot pay', async () => {
    const { confirmedSat } = wallet.balance();
    const err = await wallet.fund([{ script: channelScript(), valueSat: confirmedSat + 1n }], 1).catch((e: unknown) => e);
    expect(isWalletError(err, 'INSUFFICIENT_FUNDS')).toBe(true);
    if (isWalletError(err, 'INSUFFICIENT_FUNDS')) {
      expect(err.details.availableSat).toBe(confirmedSat);
      expect(err.details.missingSat).toBeGreaterThan(1n);
    }
  });
});
