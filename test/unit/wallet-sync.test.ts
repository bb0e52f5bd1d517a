// Wallet against an in-memory chain that this file controls block by block, to reach what a real
// node makes hard to reach on demand: reorgs (shallow, deep, during a sync), conflicting spends,
// transactions the mempool lost. The transactions are real (bitcoinjs-lib), the chain is not:
// scripts are not executed here; test/integration/wallet.test.ts runs the same wallet on btcd.
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { address as baddress, networks, Transaction } from 'bitcoinjs-lib';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  type Block,
  type BlockTip,
  BroadcastRejectedError,
  type ChainBackend,
  ChainBackendError,
  type OutpointStatus,
  type TestAcceptResult,
  type TxStatus,
} from '../../src/chain/backend.js';
import { secp256k1 } from '../../src/crypto/index.js';
import type { NetworkName } from '../../src/protocol/network.js';
import { isWalletError } from '../../src/wallet/errors.js';
import { WalletKeys } from '../../src/wallet/keys.js';
import { REORG_WINDOW } from '../../src/wallet/state.js';
import { Wallet } from '../../src/wallet/wallet.js';

const COIN = 100_000_000n;
const secp = secp256k1();
const SEED = new Uint8Array(32).fill(1);
const OTHER = WalletKeys.fromSeed(new Uint8Array(32).fill(2), 'regtest');
const P2WSH = hexToBytes(`0020${'ab'.repeat(32)}`);

function script(addr: string): Uint8Array {
  return baddress.toOutputScript(addr, networks.regtest);
}

/** A chain held in memory: blocks and a mempool, reorganised at will. */
class FakeChain implements ChainBackend {
  readonly dialect = 'bitcoind';
  blocks: Block[] = [];
  mempool = new Map<string, string>();
  refuseBroadcasts = false;
  /** The broadcast reaches the node, but the answer is lost (a connection reset). */
  loseBroadcastReplies = false;
  /** Called before each getBlock; lets a test change the chain in the middle of a sync. */
  beforeGetBlock: ((height: number) => void) | undefined;
  #salt = 0;

  constructor(readonly network: NetworkName = 'regtest') {
    this.mine([]);
  }

  /** Mines a block: a coinbase (to `coinbase` outputs, or to nobody), then `txs`. */
  mine(txs: string[], coinbase: { script: Uint8Array; valueSat: bigint }[] = []): Block {
    const height = this.blocks.length;
    const cb = new Transaction();
    cb.version = 2;
    cb.addInput(new Uint8Array(32), 0xffffffff, 0xffffffff, Uint8Array.from([4, height & 0xff, height >> 8, this.#salt & 0xff, this.#salt >> 8]));
    cb.addOutput(Uint8Array.from([0x6a]), 0n);
    for (const o of coinbase) cb.addOutput(o.script, o.valueSat);
    const hexes = [cb.toHex(), ...txs];
    const hash = bytesToHex(sha256(new TextEncoder().encode(`${height}/${this.#salt}/${hexes.join()}`)));
    const block = { height, hash, txs: hexes };
    this.blocks.push(block);
    for (const hex of txs) this.mempool.delete(Transaction.fromHex(hex).getId());
    return block;
  }

  mineEmpty(count: number): void {
    for (let i = 0; i < count; i++) this.mine([]);
  }

  /** Drops the blocks above `height` (their transactions go back to the mempool), new salt. */
  reorgTo(height: number): void {
    for (const block of this.blocks.splice(height + 1)) {
      for (const hex of block.txs.slice(1)) this.mempool.set(Transaction.fromHex(hex).getId(), hex);
    }
    this.#salt++;
  }

  async getTip(): Promise<BlockTip> {
    const tip = this.blocks.at(-1)!;
    return { height: tip.height, hash: tip.hash };
  }

  async getBlock(height: number): Promise<Block> {
    this.beforeGetBlock?.(height);
    const block = this.blocks[height];
    if (!block) throw new ChainBackendError('fake', 'getBlock', `no block ${height}`);
    return block;
  }

  async getTransaction(txid: string): Promise<TxStatus | null> {
    const hex = this.mempool.get(txid);
    if (hex) return { hex, confirmations: 0 };
    for (const block of this.blocks) {
      const found = block.txs.find((h) => Transaction.fromHex(h).getId() === txid);
      if (found) return { hex: found, confirmations: this.blocks.length - block.height, blockHeight: block.height };
    }
    return null;
  }

  async broadcast(txHex: string): Promise<string> {
    const txid = Transaction.fromHex(txHex).getId();
    if (this.refuseBroadcasts) throw new BroadcastRejectedError(txid, 'bad-txns-inputs-missingorspent');
    this.mempool.set(txid, txHex);
    if (this.loseBroadcastReplies) throw new ChainBackendError('fake', 'broadcast', 'socket hang up');
    return txid;
  }

  async testAccept(txHex: string): Promise<TestAcceptResult> {
    return { allowed: true, txid: Transaction.fromHex(txHex).getId() };
  }

  async getOutpointStatus(): Promise<OutpointStatus> {
    throw new Error('not used by the wallet');
  }

  async estimateFeeRate(): Promise<number | null> {
    return null;
  }

  subscribeTips(): () => void {
    return () => undefined;
  }

  async close(): Promise<void> {}
}

/** A transaction from someone else paying `outputs` (its input is a made-up outpoint). */
function externalPayment(outputs: { script: Uint8Array; valueSat: bigint }[], nonce = 0): string {
  const tx = new Transaction();
  tx.version = 2;
  tx.addInput(sha256(Uint8Array.from([nonce, 1, 2, 3])), nonce);
  for (const o of outputs) tx.addOutput(o.script, o.valueSat);
  return tx.toHex();
}

/** A transaction spending `outpoint` to somebody else (what a conflicting spend looks like). */
function conflictingSpend(outpoint: { txid: string; vout: number }, valueSat: bigint): string {
  const tx = new Transaction();
  tx.version = 2;
  tx.addInput(hexToBytes(outpoint.txid).reverse(), outpoint.vout);
  tx.addOutput(OTHER.address('receive', 9).script, valueSat);
  return tx.toHex();
}

let chain: FakeChain;
let wallet: Wallet;

beforeEach(async () => {
  chain = new FakeChain();
  wallet = await Wallet.open({ seed: SEED, network: 'regtest', backend: chain, secp });
});

describe('opening', () => {
  it('refuses a backend on another network', async () => {
    const err = await Wallet.open({ seed: SEED, network: 'regtest', backend: new FakeChain('testnet'), secp }).catch((e: unknown) => e);
    expect(isWalletError(err, 'NETWORK_MISMATCH')).toBe(true);
  });

  it('refuses bad options', async () => {
    await expect(Wallet.open({ seed: new Uint8Array(8), network: 'regtest', backend: chain, secp })).rejects.toThrow(RangeError);
    await expect(Wallet.open({ seed: SEED, network: 'regtest', backend: chain, secp, gapLimit: 0 })).rejects.toThrow(RangeError);
    await expect(Wallet.open({ seed: SEED, network: 'regtest', backend: chain, secp, birthdayHeight: -1 })).rejects.toThrow(RangeError);
  });
});

describe('addresses', () => {
  it('hands out a fresh receive address each call, and skips addresses seen paid', async () => {
    const keys = WalletKeys.fromSeed(SEED, 'regtest');
    expect(wallet.receiveAddress()).toBe(keys.address('receive', 0).address);
    expect(wallet.receiveAddress()).toBe(keys.address('receive', 1).address);
    expect(wallet.changeAddress()).toBe(keys.address('change', 0).address);
    // Someone pays address 7, which the wallet watches (gap limit) but never handed out.
    chain.mine([externalPayment([{ script: keys.address('receive', 7).script, valueSat: 10_000n }])]);
    await wallet.sync();
    expect(wallet.balance().confirmedSat).toBe(10_000n);
    expect(wallet.receiveAddress()).toBe(keys.address('receive', 8).address);
  });

  it('watches gapLimit addresses past the last used one, and extends as they get used', async () => {
    const keys = WalletKeys.fromSeed(SEED, 'regtest');
    const pay = (index: number, nonce: number) => externalPayment([{ script: keys.address('receive', index).script, valueSat: 1_000n }], nonce);
    chain.mine([pay(19, 1)]); // last watched index with gap limit 20
    chain.mine([pay(39, 2)]); // watched only because 19 was used
    chain.mine([pay(60, 3)]); // beyond the gap: not seen
    await wallet.sync();
    expect(wallet.balance().confirmedSat).toBe(2_000n);
  });

  it('allocates channel keys once each', () => {
    const a = wallet.nextChannelKey();
    const b = wallet.nextChannelKey();
    expect([a.index, b.index]).toEqual([0, 1]);
    expect(bytesToHex(a.publicKey)).not.toBe(bytesToHex(b.publicKey));
    expect(wallet.state().keys.nextChannelIndex).toBe(2);
  });
});

describe('sync and balance', () => {
  it('counts a coinbase as immature until its 100th confirmation', async () => {
    chain.mine([], [{ script: script(wallet.receiveAddress()), valueSat: 50n * COIN }]);
    chain.mineEmpty(98);
    await wallet.sync();
    expect(wallet.balance()).toEqual({ confirmedSat: 0n, immatureSat: 50n * COIN, unconfirmedSat: 0n });
    await expect(wallet.fund([{ script: P2WSH, valueSat: 10_000n }], 1)).rejects.toSatisfy((e) => isWalletError(e, 'INSUFFICIENT_FUNDS'));
    chain.mineEmpty(1);
    const result = await wallet.sync();
    expect(result).toMatchObject({ blocksScanned: 1, blocksRolledBack: 0, tip: { height: 100 } });
    expect(wallet.balance()).toEqual({ confirmedSat: 50n * COIN, immatureSat: 0n, unconfirmedSat: 0n });
  });

  it('is idempotent and only scans new blocks', async () => {
    chain.mine([externalPayment([{ script: script(wallet.receiveAddress()), valueSat: 7_000n }])]);
    expect((await wallet.sync()).blocksScanned).toBe(2);
    expect((await wallet.sync()).blocksScanned).toBe(0);
    expect(wallet.balance().confirmedSat).toBe(7_000n);
  });

  it('does not scan below the birthday height', async () => {
    const pay = (nonce: number) => externalPayment([{ script: WalletKeys.fromSeed(SEED, 'regtest').address('receive', 0).script, valueSat: 1_000n }], nonce);
    chain.mine([pay(1)]); // height 1
    chain.mine([pay(2)]); // height 2
    const late = await Wallet.open({ seed: SEED, network: 'regtest', backend: chain, secp, birthdayHeight: 2 });
    expect((await late.sync()).blocksScanned).toBe(1);
    expect(late.balance().confirmedSat).toBe(1_000n);
  });
});

describe('funding', () => {
  beforeEach(async () => {
    const to = script(wallet.receiveAddress());
    chain.mine([externalPayment([{ script: to, valueSat: 100_000n }, { script: to, valueSat: 200_000n }, { script: to, valueSat: 300_000n }])]);
    await wallet.sync();
  });

  it('reserves the inputs: a second fund picks other coins; release frees them', async () => {
    const first = await wallet.fund([{ script: P2WSH, valueSat: 250_000n }], 2);
    const second = await wallet.fund([{ script: P2WSH, valueSat: 150_000n }], 2);
    const keys = (r: { inputs: readonly { txid: string; vout: number }[] }) => r.inputs.map((i) => `${i.txid}:${i.vout}`);
    expect(keys(first).some((k) => keys(second).includes(k))).toBe(false);
    expect(wallet.coins().filter((c) => c.reserved)).toHaveLength(first.inputs.length + second.inputs.length);
    // Nothing was broadcast: the balance is unchanged.
    expect(wallet.balance().confirmedSat).toBe(600_000n);
    expect(chain.mempool.size).toBe(0);
    expect(await wallet.release(first.txid)).toBe(true);
    expect(await wallet.release(first.txid)).toBe(false);
    const third = await wallet.fund([{ script: P2WSH, valueSat: 250_000n }], 2);
    expect(keys(third)).toEqual(keys(first));
  });

  it('signs every input so that it verifies', async () => {
    const funded = await wallet.fund([{ script: P2WSH, valueSat: 550_000n }], 3);
    const tx = Transaction.fromHex(funded.txHex);
    expect(tx.ins).toHaveLength(3);
    expect(tx.getId()).toBe(funded.txid);
    expect(tx.virtualSize()).toBe(funded.vsize);
    expect(Number(funded.feeSat) / funded.vsize).toBeGreaterThanOrEqual(3);
    const coins = new Map(wallet.coins().map((c) => [`${c.outpoint.txid}:${c.outpoint.vout}`, c]));
    tx.ins.forEach((input, i) => {
      const coin = coins.get(`${bytesToHex(Uint8Array.from(input.hash).reverse())}:${input.index}`)!;
      const [der, pubkey] = input.witness as [Uint8Array, Uint8Array];
      const scriptCode = Uint8Array.from([0x76, 0xa9, 0x14, ...script(coin.address).slice(2), 0x88, 0xac]);
      const digest = tx.hashForWitnessV0(i, scriptCode, coin.valueSat, Transaction.SIGHASH_ALL);
      expect(der.at(-1)).toBe(Transaction.SIGHASH_ALL);
      expect(secp.ecdsaVerify(derToCompact(der.subarray(0, -1)), digest, pubkey)).toBe(true);
      expect(input.sequence).toBe(0xfffffffd);
    });
    expect(tx.locktime).toBe(wallet.syncedHeight);
  });

  it('send: change is spendable at once, inputs spent, confirmed by the next block', async () => {
    const to = OTHER.address('receive', 0).address;
    const sent = await wallet.send(to, 120_000n, 1);
    expect(chain.mempool.has(sent.txid)).toBe(true);
    expect(sent.changeVout).toBe(1);
    const change = Transaction.fromHex(sent.txHex).outs[1]!.value;
    // Largest first spent the 300,000 coin.
    expect(change).toBe(300_000n - 120_000n - sent.feeSat);
    expect(wallet.balance()).toEqual({ confirmedSat: 300_000n, immatureSat: 0n, unconfirmedSat: change });
    // The unconfirmed change can fund the next transaction.
    const next = await wallet.fund([{ script: P2WSH, valueSat: 350_000n }], 1);
    expect(next.inputs.map((i) => i.txid)).toContain(sent.txid);
    await wallet.release(next.txid);
    chain.mine([...chain.mempool.values()]);
    await wallet.sync();
    expect(wallet.balance()).toEqual({ confirmedSat: 300_000n + change, immatureSat: 0n, unconfirmedSat: 0n });
  });

  it('send releases the inputs when the node refuses the transaction', async () => {
    chain.refuseBroadcasts = true;
    await expect(wallet.send(OTHER.address('receive', 0).address, 120_000n, 1)).rejects.toBeInstanceOf(BroadcastRejectedError);
    expect(wallet.coins().filter((c) => c.reserved)).toHaveLength(0);
    expect(wallet.state().ownTxs).toHaveLength(0);
  });

  it('send keeps the inputs reserved when the broadcast outcome is unknown', async () => {
    chain.loseBroadcastReplies = true;
    await expect(wallet.send(OTHER.address('receive', 0).address, 120_000n, 1)).rejects.toBeInstanceOf(ChainBackendError);
    const [reservation] = wallet.state().reservations;
    expect(chain.mempool.has(reservation!.txid)).toBe(true);
    expect(wallet.coins().filter((c) => c.reserved)).toHaveLength(1);
    // The node did get it: once mined, the reservation goes and the change is seen.
    chain.mine([...chain.mempool.values()]);
    await wallet.sync();
    expect(wallet.state().reservations).toHaveLength(0);
    const change = Transaction.fromHex(reservation!.hex).outs[1]!.value;
    expect(wallet.balance().confirmedSat).toBe(100_000n + 200_000n + change);
  });

  it('rejects bad addresses, dust, bad fee rates, and too large amounts with codes', async () => {
    const codeOf = (p: Promise<unknown>) => p.then(() => 'resolved', (e: unknown) => (isWalletError(e) ? e.code : String(e)));
    expect(await codeOf(wallet.send('bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu', 1_000n, 1))).toBe('INVALID_ADDRESS');
    expect(await codeOf(wallet.fund([{ script: P2WSH, valueSat: 329n }], 1))).toBe('OUTPUT_BELOW_DUST');
    expect(await codeOf(wallet.fund([{ script: P2WSH, valueSat: 1_000n }], Number.NaN))).toBe('INVALID_FEE_RATE');
    expect(await codeOf(wallet.fund([{ script: P2WSH, valueSat: 600_000n }], 1))).toBe('INSUFFICIENT_FUNDS');
    expect(await codeOf(wallet.broadcast('00'.repeat(32)))).toBe('UNKNOWN_TRANSACTION');
  });

  it('broadcast: a funded transaction becomes an own unconfirmed transaction', async () => {
    const funded = await wallet.fund([{ script: P2WSH, valueSat: 150_000n }], 1);
    await wallet.broadcast(funded.txid);
    expect(chain.mempool.has(funded.txid)).toBe(true);
    expect(wallet.coins().filter((c) => c.reserved)).toHaveLength(0);
    expect(wallet.balance().unconfirmedSat).toBeGreaterThan(0n);
  });

  it('drops a reservation once someone else broadcast the funded transaction and it confirmed', async () => {
    const funded = await wallet.fund([{ script: P2WSH, valueSat: 150_000n }], 1);
    chain.mine([funded.txHex]); // e.g. the payee broadcast the funding transaction
    await wallet.sync();
    expect(wallet.state().reservations).toHaveLength(0);
    expect(wallet.balance().confirmedSat).toBe(600_000n - 150_000n - funded.feeSat);
    expect(await wallet.release(funded.txid)).toBe(false);
  });
});

describe('reorgs and conflicts', () => {
  it('undoes a payment whose block was reorganised away, and sees it again when re-mined', async () => {
    chain.mineEmpty(3);
    const payment = externalPayment([{ script: script(wallet.receiveAddress()), valueSat: 50_000n }]);
    chain.mine([payment]); // height 4
    chain.mineEmpty(2);
    await wallet.sync();
    expect(wallet.balance().confirmedSat).toBe(50_000n);

    chain.reorgTo(3);
    chain.mine([]); // the payment is back in the mempool, not in the new block 4
    chain.mineEmpty(2);
    const result = await wallet.sync();
    expect(result.blocksRolledBack).toBe(3);
    expect(result.blocksScanned).toBe(3);
    expect(wallet.balance().confirmedSat).toBe(0n);

    chain.mine([payment]);
    await wallet.sync();
    expect(wallet.balance().confirmedSat).toBe(50_000n);
    expect(wallet.coins()[0]!.confirmations).toBe(1);
  });

  it('handles a reorg to a shorter chain', async () => {
    chain.mineEmpty(5);
    chain.mine([externalPayment([{ script: script(wallet.receiveAddress()), valueSat: 50_000n }])]); // height 6
    await wallet.sync();
    chain.reorgTo(4);
    chain.mempool.clear();
    chain.mine([]);
    const result = await wallet.sync();
    expect(result).toMatchObject({ blocksRolledBack: 2, blocksScanned: 1, tip: { height: 5 } });
    expect(wallet.balance().confirmedSat).toBe(0n);
  });

  it('unspends a coin whose spend was reorganised away', async () => {
    const to = script(wallet.receiveAddress());
    chain.mine([externalPayment([{ script: to, valueSat: 80_000n }])]); // height 1
    await wallet.sync();
    const coin = wallet.coins()[0]!.outpoint;
    chain.mine([conflictingSpend(coin, 79_000n)]); // height 2: spent elsewhere (same seed, other wallet)
    await wallet.sync();
    expect(wallet.balance().confirmedSat).toBe(0n);
    chain.reorgTo(1);
    chain.mempool.clear();
    chain.mine([]);
    await wallet.sync();
    expect(wallet.balance().confirmedSat).toBe(80_000n);
  });

  it('drops an own unconfirmed transaction when a block confirms a conflicting spend', async () => {
    chain.mine([externalPayment([{ script: script(wallet.receiveAddress()), valueSat: 80_000n }])]);
    await wallet.sync();
    const coin = wallet.coins()[0]!.outpoint;
    const sent = await wallet.send(OTHER.address('receive', 0).address, 30_000n, 1);
    expect(wallet.balance().unconfirmedSat).toBeGreaterThan(0n);
    chain.mempool.delete(sent.txid);
    chain.mine([conflictingSpend(coin, 79_000n)]);
    const result = await wallet.sync();
    expect(wallet.balance()).toEqual({ confirmedSat: 0n, immatureSat: 0n, unconfirmedSat: 0n });
    expect(wallet.state().ownTxs).toHaveLength(0);
    expect(result.droppedTxids).toEqual([]); // dropped while rebuilding, not by the mempool check
  });

  it('keeps an own transaction that a reorg returned to the mempool', async () => {
    chain.mine([externalPayment([{ script: script(wallet.receiveAddress()), valueSat: 80_000n }])]); // 1
    await wallet.sync();
    const sent = await wallet.send(OTHER.address('receive', 0).address, 30_000n, 1);
    const change = 80_000n - 30_000n - sent.feeSat;
    chain.mine([...chain.mempool.values()]); // 2
    await wallet.sync();
    expect(wallet.balance()).toEqual({ confirmedSat: change, immatureSat: 0n, unconfirmedSat: 0n });
    chain.reorgTo(1); // the send goes back to the mempool
    chain.mine([]);
    chain.mine([]);
    await wallet.sync();
    expect(wallet.balance()).toEqual({ confirmedSat: 0n, immatureSat: 0n, unconfirmedSat: change });
  });

  it('rescans from the birthday after a reorg deeper than it remembers', async () => {
    const to = script(wallet.receiveAddress());
    chain.mine([externalPayment([{ script: to, valueSat: 10_000n }], 1)]); // height 1
    chain.mineEmpty(REORG_WINDOW + 10);
    await wallet.sync();
    chain.reorgTo(0);
    chain.mempool.clear();
    chain.mineEmpty(5);
    chain.mine([externalPayment([{ script: to, valueSat: 20_000n }], 2)]);
    chain.mineEmpty(REORG_WINDOW + 10);
    const result = await wallet.sync();
    expect(result.blocksScanned).toBe(chain.blocks.length); // everything, genesis included
    expect(wallet.balance().confirmedSat).toBe(20_000n);
  });

  it('starts over when the chain reorganises during a sync', async () => {
    const to = script(wallet.receiveAddress());
    chain.mineEmpty(10);
    chain.mine([externalPayment([{ script: to, valueSat: 10_000n }], 1)]); // height 11
    chain.mineEmpty(10);
    let fired = false;
    chain.beforeGetBlock = (height) => {
      if (fired || height !== 15) return;
      fired = true; // blocks 0–14 were fetched from the old chain; now it changes from 9 up
      chain.reorgTo(8);
      chain.mempool.clear();
      chain.mineEmpty(3);
      chain.mine([externalPayment([{ script: to, valueSat: 20_000n }], 2)]);
      chain.mineEmpty(12);
    };
    const result = await wallet.sync();
    expect(fired).toBe(true);
    expect(result.tip.hash).toBe(chain.blocks.at(-1)!.hash);
    expect(wallet.balance().confirmedSat).toBe(20_000n);
    expect(wallet.syncedHeight).toBe(chain.blocks.length - 1);
  });

  it('after a backend failure mid-scan keeps only verified blocks, and the next sync completes', async () => {
    const to = script(wallet.receiveAddress());
    chain.mineEmpty(249);
    chain.mine([externalPayment([{ script: to, valueSat: 10_000n }], 1)]); // height 250
    chain.mineEmpty(49);
    let failed = false;
    chain.beforeGetBlock = (height) => {
      if (failed || height !== 200) return;
      failed = true;
      throw new ChainBackendError('fake', 'getBlock', 'connection reset');
    };
    await expect(wallet.sync()).rejects.toBeInstanceOf(ChainBackendError);
    // Kept up to a checkpoint (one per 144 blocks), nothing past it, state consistent.
    expect(wallet.syncedHeight).toBeGreaterThanOrEqual(143);
    expect(wallet.syncedHeight).toBeLessThan(200);
    expect(wallet.balance().confirmedSat).toBe(0n);
    const result = await wallet.sync();
    expect(result.tip.height).toBe(299);
    expect(wallet.balance().confirmedSat).toBe(10_000n);
  });

  it('gives up with SYNC_UNSTABLE when the chain changes under every attempt', async () => {
    chain.mineEmpty(20);
    chain.beforeGetBlock = (height) => {
      if (height !== 10) return;
      chain.reorgTo(5);
      chain.mineEmpty(20);
    };
    const err = await wallet.sync().catch((e: unknown) => e);
    expect(isWalletError(err, 'SYNC_UNSTABLE')).toBe(true);
    chain.beforeGetBlock = undefined;
    await wallet.sync();
    expect(wallet.syncedHeight).toBe(chain.blocks.length - 1);
  });

  it('rebroadcasts an own transaction the node lost, and forgets it if the node refuses', async () => {
    chain.mine([externalPayment([{ script: script(wallet.receiveAddress()), valueSat: 80_000n }])]);
    await wallet.sync();
    const sent = await wallet.send(OTHER.address('receive', 0).address, 30_000n, 1);
    chain.mempool.clear();
    await wallet.sync();
    expect(chain.mempool.has(sent.txid)).toBe(true); // broadcast again
    chain.mempool.clear();
    chain.refuseBroadcasts = true;
    const result = await wallet.sync();
    expect(result.droppedTxids).toEqual([sent.txid]);
    expect(wallet.balance()).toEqual({ confirmedSat: 80_000n, immatureSat: 0n, unconfirmedSat: 0n });
  });
});

describe('state', () => {
  it('is plain data: a wallet reopened from it has the same coins, and serialises to JSON', async () => {
    const to = script(wallet.receiveAddress());
    chain.mine([externalPayment([{ script: to, valueSat: 100_000n }, { script: to, valueSat: 200_000n }])]);
    await wallet.sync();
    await wallet.send(OTHER.address('receive', 0).address, 50_000n, 1);
    const funded = await wallet.fund([{ script: P2WSH, valueSat: 1_000n }], 1);
    const saved = wallet.state();
    const json = JSON.stringify(saved, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
    const parsed = JSON.parse(json, (_k, v: unknown) => (typeof v === 'string' && /^\d+n$/.test(v) ? BigInt(v.slice(0, -1)) : v)) as typeof saved;
    expect(parsed).toEqual(saved);
    const reopened = await Wallet.open({ seed: SEED, network: 'regtest', backend: chain, secp, state: parsed });
    expect(reopened.balance()).toEqual(wallet.balance());
    expect(reopened.coins()).toEqual(wallet.coins());
    expect(reopened.receiveAddress()).toBe(wallet.receiveAddress());
    expect(await reopened.release(funded.txid)).toBe(true);
    // The copy handed out is a copy.
    saved.coins = {};
    expect(wallet.coins()).not.toHaveLength(0);
  });
});

describe('merging two saved states of one seed (payer.db and duplex.db becoming one)', () => {
  const outpoints = (w: Wallet, reserved: boolean) =>
    w
      .coins()
      .filter((c) => c.reserved === reserved)
      .map((c) => `${c.outpoint.txid}:${c.outpoint.vout}`)
      .sort();

  it('keeps both reservations and both unconfirmed spends, the newer sync, and the higher key counters', async () => {
    const to = script(wallet.receiveAddress());
    chain.mine([externalPayment([100_000n, 200_000n, 300_000n].map((valueSat) => ({ script: to, valueSat })))]);
    await wallet.sync();
    // The second wallet of the same seed (duplex.db's), synced one block further, to a coin only
    // it knows of (so the unconfirmed spend below cannot take a coin the first one reserved).
    const other = await Wallet.open({ seed: SEED, network: 'regtest', backend: chain, secp });
    chain.mine([externalPayment([{ script: WalletKeys.fromSeed(SEED, 'regtest').address('receive', 5).script, valueSat: 5_000_000n }], 1)]);
    await other.sync();
    const funded = await wallet.fund([{ script: P2WSH, valueSat: 90_000n }], 1); // a Spilman funding, not broadcast
    wallet.nextChannelKey();
    wallet.nextChannelKey();
    other.nextDuplexKey();
    const fee = await other.reserveFeeCoin('duplex:t1', 150_000n, 250_000n); // a duplex coin: the 200,000 one
    const sent = await other.send(OTHER.address('receive', 0).address, 1_000_000n, 1); // unconfirmed, from the 5,000,000 one
    expect(fee).not.toBeNull();

    const merged = Wallet.mergeStates(SEED, wallet.state(), other.state());
    expect(merged.syncedHeight).toBe(other.state().syncedHeight);
    const one = await Wallet.open({ seed: SEED, network: 'regtest', backend: chain, secp, state: merged });
    // Both reservations hold their coins; the coin the unconfirmed spend took is gone, its change is there.
    expect(outpoints(one, true)).toEqual([...new Set([...outpoints(wallet, true), `${fee!.outpoint.txid}:${fee!.outpoint.vout}`])].sort());
    expect(one.coins().some((c) => c.outpoint.txid === sent.txid)).toBe(true);
    expect(one.coins().some((c) => sent.inputs.some((i) => i.txid === c.outpoint.txid && i.vout === c.outpoint.vout))).toBe(false);
    expect(one.balance()).toEqual(other.balance());
    // A new funding picks none of the coins either side holds.
    const next = await one.fund([{ script: P2WSH, valueSat: 50_000n }], 1);
    const held = new Set([...funded.inputs, fee!.outpoint, ...sent.inputs].map((o) => `${o.txid}:${o.vout}`));
    expect(next.inputs.some((i) => held.has(`${i.txid}:${i.vout}`))).toBe(false);
    expect(one.nextChannelKey().index).toBe(2);
    // The reservations are still releasable by their ids, and a sync keeps the picture.
    expect(await one.release(funded.txid)).toBe(true);
    expect(await one.release('duplex:t1')).toBe(true);
    await one.sync();
    expect(one.balance()).toEqual(other.balance());
  });

  it('rescans from the lower birthday when the two were born apart, keeping reservations and key counters', async () => {
    const to = script(wallet.receiveAddress());
    chain.mine([externalPayment([{ script: to, valueSat: 100_000n }])]);
    await wallet.sync();
    const late = await Wallet.open({ seed: SEED, network: 'regtest', backend: chain, secp, birthdayHeight: 2 });
    await late.sync();
    const funded = await wallet.fund([{ script: P2WSH, valueSat: 10_000n }], 1);
    late.nextDuplexKey();
    const merged = Wallet.mergeStates(SEED, late.state(), wallet.state());
    expect(merged.birthdayHeight).toBe(0);
    expect(merged.coins).toEqual({});
    const one = await Wallet.open({ seed: SEED, network: 'regtest', backend: chain, secp, state: merged });
    await one.sync();
    expect(one.balance().confirmedSat).toBe(100_000n);
    expect(outpoints(one, true)).toEqual(outpoints(wallet, true));
    expect(await one.release(funded.txid)).toBe(true);
    expect(one.nextDuplexKey().index).toBe(1);
  });

  it('refuses states of two networks', async () => {
    const testnet = await Wallet.open({ seed: SEED, network: 'testnet', backend: new FakeChain('testnet'), secp });
    expect(() => Wallet.mergeStates(SEED, wallet.state(), testnet.state())).toThrow(RangeError);
  });
});

/** DER (without sighash byte) → 64-byte compact r || s. */
function derToCompact(der: Uint8Array): Uint8Array {
  const rLen = der[3]!;
  const r = der.subarray(4, 4 + rLen);
  const s = der.subarray(6 + rLen);
  const out = new Uint8Array(64);
  out.set(r.subarray(Math.max(0, r.length - 32)), 32 - Math.min(32, r.length));
  out.set(s.subarray(Math.max(0, s.length - 32)), 64 - Math.min(32, s.length));
  return out;
}
