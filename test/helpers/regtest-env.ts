/**
 * A private regtest node with a funded payer wallet, for integration tests. Every test file gets
 * its own node (they run in parallel) and must call `stop()` in afterAll.
 */
import { randomBytes } from 'node:crypto';
import { startRegtestNode, type RegtestNode } from '../../src/chain/regtest/index.js';
import type { RpcChainBackend } from '../../src/chain/rpc-backend.js';
import { secp256k1, type Secp256k1 } from '../../src/crypto/index.js';
import { WalletKeys } from '../../src/wallet/keys.js';
import { Wallet } from '../../src/wallet/wallet.js';

export interface RegtestEnv {
  readonly node: RegtestNode;
  /** The node's JSON-RPC adapter: a ChainBackend, plus `testAccept` for asserting mempool policy. */
  readonly backend: RpcChainBackend;
  readonly secp: Secp256k1;
  /** Holds the 101 blocks' mature coinbase and whatever is mined later. */
  readonly wallet: Wallet;
  mine(blocks: number): Promise<void>;
  /** Mines until the tip is `height` (no-op if already there or above). */
  mineTo(height: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startFundedEnv(): Promise<RegtestEnv> {
  const seed = randomBytes(32);
  const miningAddress = WalletKeys.fromSeed(seed, 'regtest').address('receive', 0).address;
  const node = await startRegtestNode({ miningAddress });
  try {
    const backend = node.backend;
    const secp = secp256k1();
    await node.mine(101);
    const wallet = await Wallet.open({ seed, network: 'regtest', backend, secp });
    await wallet.sync();
    const mine = async (blocks: number) => {
      await node.mine(blocks);
      await wallet.sync();
    };
    return {
      node,
      backend,
      secp,
      wallet,
      mine,
      async mineTo(height) {
        const tip = await backend.getTip();
        if (height > tip.height) await mine(height - tip.height);
      },
      stop: () => node.stop(),
    };
  } catch (err) {
    await node.stop();
    throw err;
  }
}
