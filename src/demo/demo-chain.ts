/**
 * The demos' chain: a private regtest node (or the one named by --rpc-url), a way to give the
 * payer coins, and a miner that mines a block whenever the mempool holds a transaction, like a
 * fast chain. Children reach the node with `rpcArgs`.
 */
import type { ChainBackend } from '../chain/backend.js';
import { connectExternalRegtest } from '../chain/external-node.js';
import { startRegtestNode } from '../chain/regtest/index.js';
import { RpcClient } from '../chain/rpc-client.js';
import { fundPayerOnExternalNode } from './demo-funds.js';

export interface DemoChain {
  readonly backend: ChainBackend;
  readonly rpcArgs: readonly string[];
  /** Gives the payer at least `amountSat` of confirmed, spendable coins. */
  fundPayer(amountSat: bigint): Promise<void>;
  /** Mines `blocks` now (the miner only mines while the mempool holds something). */
  mine(blocks: number): Promise<unknown>;
  /** Stops the miner and the node. */
  stop(): Promise<void>;
}

export async function startDemoChain(options: { rpc?: { url: string; user: string; pass: string }; payerAddress: string; log: (l: string) => void }): Promise<DemoChain> {
  const { log, payerAddress, rpc: external } = options;
  let backend: ChainBackend;
  let rpcTarget: { url: string; user: string; pass: string };
  let mine: (blocks: number) => Promise<unknown>;
  let fundPayer: (amountSat: bigint) => Promise<void>;
  let stopNode: () => Promise<void>;
  if (external) {
    log(`connecting to ${external.url}`);
    const node = await connectExternalRegtest(external);
    ({ backend } = node);
    rpcTarget = external;
    mine = (blocks) => node.mine(blocks, payerAddress);
    fundPayer = (amountSat) => fundPayerOnExternalNode(node, external.url, payerAddress, amountSat, log);
    stopNode = () => node.stop();
  } else {
    log('starting a private regtest node (btcd)');
    // Every block pays the payer: 101 blocks and the first coinbase is spendable.
    const node = await startRegtestNode({ miningAddress: payerAddress, log });
    ({ backend } = node);
    rpcTarget = { url: node.rpcUrl, user: node.rpcUser, pass: node.rpcPass };
    mine = (blocks) => node.mine(blocks);
    fundPayer = async () => {
      log('mining 101 blocks so the payer has a mature coinbase');
      await node.mine(101);
    };
    stopNode = () => node.stop();
  }
  const rpc = new RpcClient(rpcTarget);
  let mining = false;
  let miner: Promise<void> = Promise.resolve();
  const startMiner = (): void => {
    if (mining) return;
    mining = true;
    miner = (async () => {
      while (mining) {
        const mempool = (await rpc.call('getrawmempool').catch(() => [])) as string[];
        if (mempool.length > 0) await mine(1).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
  };
  return {
    backend,
    rpcArgs: ['--rpc-url', rpcTarget.url, '--rpc-user', rpcTarget.user, '--rpc-pass', rpcTarget.pass],
    async fundPayer(amountSat) {
      await fundPayer(amountSat);
      startMiner();
    },
    mine: (blocks) => mine(blocks),
    async stop() {
      mining = false;
      await miner;
      rpc.close();
      await stopNode();
    },
  };
}
