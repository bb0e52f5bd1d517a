/**
 * The ChainBackend contract, checked against real nodes: the same suite runs on btcd (always;
 * built by test/global-setup.ts) and on bitcoind (when `findBitcoind()` finds one), each reached
 * by URL through `connectBackend`, as paychan reaches any backend. `testAccept`, which only the
 * JSON-RPC adapter offers, is asked of the node's own adapter (`node.backend`). Every
 * assertion is about what the node says, so a passing run shows the adapter reads each dialect
 * right and that the node is configured with mainnet-like relay policy.
 *
 * Test transactions spend coinbase outputs the node mines to a P2WPKH address of a fixed key,
 * signed here with the project's own secp256k1.
 */
import { existsSync } from 'node:fs';
import { Transaction, payments, networks, script } from 'bitcoinjs-lib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BroadcastRejectedError, ChainBackendError, type BlockTip, type ChainBackend } from '../../src/chain/backend.js';
import { connectBackend } from '../../src/chain/connect.js';
import { findBitcoind, startBitcoindRegtest } from '../../src/chain/regtest/bitcoind-node.js';
import { startBtcdRegtest } from '../../src/chain/regtest/btcd-node.js';
import type { RegtestNode, StartRegtestOptions } from '../../src/chain/regtest/node.js';
import { secp256k1 } from '../../src/crypto/index.js';

const ecc = secp256k1();
/** Test-only key; its coins exist only on throwaway regtest chains. */
const KEY = Buffer.from('5c1a7e0f3b9d2c4e6a8b0d1f3e5c7a9b2d4f6e8a0c1b3d5f7e9a2c4b6d8f0e1a', 'hex');
const PUBKEY = ecc.publicKeyCreate(KEY);
const WALLET = payments.p2wpkh({ pubkey: PUBKEY, network: networks.regtest });
const WALLET_SCRIPT = WALLET.output!;
const WALLET_ADDRESS = WALLET.address!;
/** BIP143 scriptCode of a P2WPKH output: the P2PKH script of the same key. */
const SCRIPT_CODE = payments.p2pkh({ pubkey: PUBKEY }).output!;
const COINBASE_MATURITY = 100;
const REGTEST_SUBSIDY_SAT = 5_000_000_000n; // 50 BTC until height 150

interface Coin {
  readonly txid: string;
  readonly vout: number;
  readonly valueSat: bigint;
}

interface SpendOptions {
  readonly feeSat?: bigint;
  readonly locktime?: number;
  readonly sequence?: number;
  /** Signs over the wrong amount: a well-formed signature that does not verify. */
  readonly badSignature?: boolean;
}

/** One-input, one-output P2WPKH spend of `coin` back to the test wallet. */
function spend(coin: Coin, options: SpendOptions = {}): Transaction {
  const tx = new Transaction();
  tx.version = 2;
  tx.locktime = options.locktime ?? 0;
  tx.addInput(Buffer.from(coin.txid, 'hex').reverse(), coin.vout, options.sequence ?? 0xfffffffd);
  tx.addOutput(WALLET_SCRIPT, coin.valueSat - (options.feeSat ?? 2000n));
  const signedValue = options.badSignature ? coin.valueSat + 1n : coin.valueSat;
  const digest = tx.hashForWitnessV0(0, SCRIPT_CODE, signedValue, Transaction.SIGHASH_ALL);
  const signature = script.signature.encode(ecc.ecdsaSign(digest, KEY), Transaction.SIGHASH_ALL);
  tx.setWitness(0, [signature, PUBKEY]);
  return tx;
}

function outputOf(tx: Transaction, vout = 0): Coin {
  return { txid: tx.getId(), vout, valueSat: tx.outs[vout]!.value };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

type Starter = (options: StartRegtestOptions) => Promise<RegtestNode>;

const nodes: ReadonlyArray<{ name: string; start: Starter; skip: boolean }> = [
  { name: 'btcd', start: startBtcdRegtest, skip: false },
  { name: 'bitcoind', start: startBitcoindRegtest, skip: findBitcoind() === null },
];

for (const { name, start, skip } of nodes) {
  describe.skipIf(skip)(`ChainBackend over JSON-RPC: ${name}`, () => {
    let node: RegtestNode;
    /** The port, as connectBackend gives it for the node's URL. */
    let backend: ChainBackend;
    let nextCoinbaseHeight = 1;

    /** A mature coinbase output of the test wallet, a different one each call. */
    async function matureCoin(): Promise<Coin> {
      const height = nextCoinbaseHeight++;
      const tip = await backend.getTip();
      if (height + COINBASE_MATURITY > tip.height) throw new Error('test setup: mine more blocks first');
      const coinbase = Transaction.fromHex((await backend.getBlock(height)).txs[0]!);
      const vout = coinbase.outs.findIndex((out) => Buffer.from(out.script).equals(WALLET_SCRIPT));
      return outputOf(coinbase, vout);
    }

    beforeAll(async () => {
      node = await start({ miningAddress: WALLET_ADDRESS, pollIntervalMs: 50 });
      backend = await connectBackend(node.rpcUrl, { user: node.rpcUser, pass: node.rpcPass, network: 'regtest', pollIntervalMs: 50 });
      await node.mine(COINBASE_MATURITY + 10);
    });

    afterAll(async () => {
      await backend?.close();
      await node?.stop();
    });

    it('says which node it talks to', () => {
      expect(backend.name).toBe(name);
      expect(node.backend.name).toBe(name);
      expect(backend.network).toBe('regtest');
    });

    it('mines on regtest, to any address only where the node can (bitcoind)', async () => {
      const mining = backend.mining!;
      expect(mining.paysAnyAddress).toBe(name === 'bitcoind');
      const other = payments.p2wpkh({ pubkey: ecc.publicKeyCreate(Buffer.alloc(32, 7)), network: networks.regtest });
      const before = await backend.getTip();
      const hashes = await mining.mine(2, other.address!);
      expect(hashes).toHaveLength(2);
      const tip = await backend.getTip();
      expect(tip).toEqual({ height: before.height + 2, hash: hashes[1] });
      const coinbase = Transaction.fromHex((await backend.getBlock(tip.height)).txs[0]!);
      const paid = mining.paysAnyAddress ? other.output! : WALLET_SCRIPT;
      expect(coinbase.outs.some((out) => Buffer.from(out.script).equals(paid))).toBe(true);
      await expect(mining.mine(0, other.address!)).rejects.toBeInstanceOf(RangeError);
    });

    it('moves the tip when blocks are mined', async () => {
      const before = await backend.getTip();
      const hashes = await node.mine(2);
      expect(hashes).toHaveLength(2);
      expect(await backend.getTip()).toEqual({ height: before.height + 2, hash: hashes[1] });
    });

    it('returns blocks by height, with their raw transactions', async () => {
      const tip = await backend.getTip();
      const block = await backend.getBlock(tip.height);
      expect(block).toMatchObject({ height: tip.height, hash: tip.hash });
      const coinbase = Transaction.fromHex(block.txs[0]!);
      expect(coinbase.isCoinbase()).toBe(true);
      await expect(backend.getBlock(tip.height + 1000)).rejects.toBeInstanceOf(ChainBackendError);
    });

    it('finds a coinbase transaction with its confirmations and height', async () => {
      const tip = await backend.getTip();
      const block1 = await backend.getBlock(1);
      const txid = Transaction.fromHex(block1.txs[0]!).getId();
      const status = await backend.getTransaction(txid);
      expect(status).toEqual({ hex: block1.txs[0], confirmations: tip.height, blockHeight: 1 });
      expect(await backend.getTransaction('ab'.repeat(32))).toBeNull();
    });

    it('accepts a valid transaction in testAccept and broadcast, and again when it is already there', async () => {
      const tx = spend(await matureCoin(), { feeSat: 2000n });
      const test = await node.backend.testAccept(tx.toHex());
      expect(test).toEqual({ allowed: true, txid: tx.getId(), vsize: tx.virtualSize(), feeSat: 2000n });

      expect(await backend.broadcast(tx.toHex())).toBe(tx.getId());
      expect(await backend.getTransaction(tx.getId())).toEqual({ hex: tx.toHex(), confirmations: 0 });
      expect(await backend.broadcast(tx.toHex())).toBe(tx.getId()); // already in the mempool
    });

    it('rejects a transaction with a bad signature, with the node’s reason', async () => {
      const tx = spend(await matureCoin(), { badSignature: true });
      const test = await node.backend.testAccept(tx.toHex());
      expect(test.allowed).toBe(false);
      expect(test.allowed === false && test.reason).toMatch(/signature|checksig/i);

      const err = await backend.broadcast(tx.toHex()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BroadcastRejectedError);
      expect(err).toMatchObject({ txid: tx.getId(), code: 'BROADCAST_REJECTED' });
      expect((err as BroadcastRejectedError).reason).toMatch(/signature|checksig/i);
    });

    it('rejects a zero-fee transaction (free relay is off)', async () => {
      const tx = spend(await matureCoin(), { feeSat: 0n });
      const test = await node.backend.testAccept(tx.toHex());
      expect(test.allowed).toBe(false);
      expect(test.allowed === false && test.reason).toMatch(/fee/i);
      await expect(backend.broadcast(tx.toHex())).rejects.toBeInstanceOf(BroadcastRejectedError);
    });

    it('rejects a transaction whose nLockTime is above the tip as non-final, until the chain reaches it', async () => {
      const tip = await backend.getTip();
      const locktime = tip.height + 3;
      const tx = spend(await matureCoin(), { locktime, sequence: 0xfffffffe });

      const test = await node.backend.testAccept(tx.toHex());
      expect(test.allowed).toBe(false);
      expect(test.allowed === false && test.reason).toMatch(/final/i);
      const err = await backend.broadcast(tx.toHex()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BroadcastRejectedError);
      expect((err as BroadcastRejectedError).reason).toMatch(/final/i);

      // Final once the next block's height exceeds nLockTime, i.e. once the tip reaches it.
      await node.mine(locktime - tip.height);
      expect(await node.backend.testAccept(tx.toHex())).toMatchObject({ allowed: true });
    });

    it('follows an output from unspent to spent in the mempool to spent and confirmed', async () => {
      const coin = await matureCoin();
      const createdAt = nextCoinbaseHeight - 1;
      let tip = await backend.getTip();
      expect(await backend.getOutpointStatus(coin, createdAt)).toEqual({
        state: 'unspent',
        valueSat: REGTEST_SUBSIDY_SAT,
        scriptHex: Buffer.from(WALLET_SCRIPT).toString('hex'),
        confirmations: tip.height - createdAt + 1,
      });

      const tx = spend(coin);
      await backend.broadcast(tx.toHex());
      expect(await backend.getOutpointStatus(coin, createdAt)).toEqual({ state: 'spent', spendingTxid: tx.getId(), confirmations: 0 });
      expect(await backend.getOutpointStatus(outputOf(tx), tip.height)).toMatchObject({
        state: 'unspent',
        valueSat: coin.valueSat - 2000n,
        confirmations: 0,
      });

      await node.mine(1);
      expect(await backend.getOutpointStatus(coin, createdAt)).toEqual({ state: 'spent', spendingTxid: tx.getId(), confirmations: 1 });
      await node.mine(1);
      expect(await backend.getOutpointStatus(coin, createdAt)).toEqual({ state: 'spent', spendingTxid: tx.getId(), confirmations: 2 });
      tip = await backend.getTip();
      expect(await backend.getTransaction(tx.getId())).toEqual({ hex: tx.toHex(), confirmations: 2, blockHeight: tip.height - 1 });

      // Rebroadcasting a confirmed transaction succeeds, both while its output is unspent and
      // once that is spent too (then the mempool sees only missing inputs).
      expect(await backend.broadcast(tx.toHex())).toBe(tx.getId());
      const child = spend(outputOf(tx));
      await backend.broadcast(child.toHex());
      await node.mine(1);
      expect(await backend.broadcast(tx.toHex())).toBe(tx.getId());
    });

    it('calls an output unknown when the node has never seen it', async () => {
      expect(await backend.getOutpointStatus({ txid: 'cd'.repeat(32), vout: 0 }, 0)).toEqual({ state: 'unknown' });
      const block1 = await backend.getBlock(1);
      const coinbaseTxid = Transaction.fromHex(block1.txs[0]!).getId();
      expect(await backend.getOutpointStatus({ txid: coinbaseTxid, vout: 7 }, 0)).toEqual({ state: 'unknown' });
    });

    it('reports a new tip to subscribers when a block is mined', async () => {
      const seen: BlockTip[] = [];
      const unsubscribe = backend.subscribeTips((tip) => seen.push(tip));
      try {
        const before = await backend.getTip();
        const [hash] = await node.mine(1);
        await vi.waitFor(() => expect(seen.map((tip) => tip.hash)).toContain(hash), { timeout: 5000, interval: 20 });
        expect(seen.at(-1)).toEqual({ height: before.height + 1, hash });
        // Each report is a change: the polls that follow, up to the one that sees the next
        // block, do not repeat a tip.
        const [next] = await node.mine(1);
        await vi.waitFor(() => expect(seen.map((tip) => tip.hash)).toContain(next), { timeout: 5000, interval: 20 });
        expect(new Set(seen.map((tip) => tip.hash)).size).toBe(seen.length);
        expect(seen.slice(-2)).toEqual([
          { height: before.height + 1, hash },
          { height: before.height + 2, hash: next },
        ]);
      } finally {
        unsubscribe();
      }
    });

    it('estimates a fee rate or says it has none', async () => {
      for (const target of [1, 6, 144]) {
        const rate = await backend.estimateFeeRate(target);
        if (rate !== null) expect(rate).toBeGreaterThan(0);
        expect(rate === null || Number.isFinite(rate)).toBe(true);
      }
    });

    it('refuses to connect to the wrong chain, with bad credentials, or to nothing', async () => {
      const creds = { user: node.rpcUser, pass: node.rpcPass };
      await expect(connectBackend(node.rpcUrl, { ...creds, network: 'mainnet' })).rejects.toThrow(/runs regtest, but mainnet/);
      await expect(connectBackend(node.rpcUrl, { ...creds, pass: 'wrong' })).rejects.toThrow(/authentication failed/);
      const nowhere = connectBackend('http://127.0.0.1:1', creds);
      await expect(nowhere).rejects.toBeInstanceOf(ChainBackendError);
      await expect(nowhere).rejects.toThrow(/http:\/\/127\.0\.0\.1:1/);
    });

    it('stop() kills the node process and removes its datadir', async () => {
      const { pid, datadir } = node;
      expect(isAlive(pid)).toBe(true);
      expect(existsSync(datadir)).toBe(true);
      await node.stop();
      expect(isAlive(pid)).toBe(false);
      expect(existsSync(datadir)).toBe(false);
      await expect(node.backend.getTip()).rejects.toBeInstanceOf(ChainBackendError); // closed by stop()
      await expect(backend.getTip()).rejects.toBeInstanceOf(ChainBackendError); // nobody answers
      await node.stop(); // idempotent
    });
  });
}
