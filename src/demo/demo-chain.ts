/**
 * The demos' chain: a private regtest node (or the one named by --rpc-url) whose coinbase goes
 * to `miningAddress`, and a miner that mines a block whenever the mempool holds a transaction,
 * like a fast chain. Children reach the node with `rpcArgs`.
 */
import type { ChainBackend } from '../chain/backend.js';
import { connectExternalRegtest } from '../chain/external-node.js';
import { startRegtestNode } from '../chain/regtest/index.js';
import { RpcClient } from '../chain/rpc-client.js';

export interface DemoChain {
  readonly backend: ChainBackend;
  readonly rpcArgs: readonly string[];
  mine(blocks: number): Promise<void>;
  /** Stops the miner and the node. */
  stop(): Promise<void>;
}

export async function startDemoChain(options: { rpc?: { url: string; user: string; pass: string }; miningAddress: string; log: (l: string) => void }): Promise<DemoChain> {
  const { log, miningAddress } = options;
  log(options.rpc ? `connecting to ${options.rpc.url}` : 'starting a private regtest node (btcd)');
  const node = options.rpc ? await connectExternalRegtest(options.rpc) : await startRegtestNode({ miningAddress, log });
  const rpcTarget = options.rpc ?? ('rpcUrl' in node ? { url: node.rpcUrl, user: node.rpcUser, pass: node.rpcPass } : undefined);
  if (!rpcTarget) throw new Error('unreachable: no RPC target');
  const mine = (n: number) => ('mine' in node ? node.mine(n).then(() => undefined) : node.mineTo(miningAddress, n));
  const rpc = new RpcClient({ url: rpcTarget.url, user: rpcTarget.user, pass: rpcTarget.pass });
  let mining = true;
  const miner = (async () => {
    while (mining) {
      const mempool = (await rpc.call('getrawmempool').catch(() => [])) as string[];
      if (mempool.length > 0) await mine(1).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    backend: node.backend,
    rpcArgs: ['--rpc-url', rpcTarget.url, '--rpc-user', rpcTarget.user, '--rpc-pass', rpcTarget.pass],
    mine,
    async stop() {
      mining = false;
      await miner;
      rpc.close();
      await node.stop();
    },
  };
}
