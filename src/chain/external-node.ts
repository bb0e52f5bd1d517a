/**
 * A regtest node the user already runs (`--rpc-url`), with the one thing a demo needs beyond the
 * ChainBackend port: mining blocks. This is the JSON-RPC adapter's own regtest tooling (mining is
 * an RPC call), so it connects that adapter directly and reads its dialect. bitcoind mines to any address (`generatetoaddress`); btcd
 * only to its own `--miningaddr` (`generate`), so on btcd the caller must find coins elsewhere
 * (see src/demo/demo-funds.ts).
 */
import { Transaction } from 'bitcoinjs-lib';
import type { ChainBackend } from './backend.js';
import { connectRpcBackend } from './rpc-backend.js';
import { RpcClient } from './rpc-client.js';

export interface ExternalNodeOptions {
  readonly url: string;
  readonly user: string;
  readonly pass: string;
}

export interface ExternalRegtestNode {
  readonly backend: ChainBackend;
  /** Whether {@link mine} pays the address it is given (bitcoind) or the node's own (btcd). */
  readonly minesToAnyAddress: boolean;
  /**
   * Mines `blocks` blocks; bitcoind pays `address`, btcd its own --miningaddr.
   * @returns the output script the last block's coinbase pays first (hex).
   * @throws ChainBackendError if the node refuses or cannot be reached.
   */
  mine(blocks: number, address: string): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Connects to a regtest node the user runs.
 * @throws ChainBackendError if the node cannot be reached, is not on regtest or has no
 *   transaction index.
 */
export async function connectExternalRegtest(options: ExternalNodeOptions): Promise<ExternalRegtestNode> {
  const backend = await connectRpcBackend({ ...options, network: 'regtest' });
  // Mining many blocks takes longer than one ordinary call.
  const rpc = new RpcClient({ ...options, timeoutMs: 300_000 });
  const btcd = backend.dialect === 'btcd';
  return {
    backend,
    minesToAnyAddress: !btcd,
    async mine(blocks, address) {
      await rpc.call(btcd ? 'generate' : 'generatetoaddress', btcd ? [blocks] : [blocks, address]);
      const tip = await backend.getTip();
      const coinbase = Transaction.fromHex((await backend.getBlock(tip.height)).txs[0]!);
      return Buffer.from(coinbase.outs[0]!.script).toString('hex');
    },
    async stop() {
      rpc.close();
      await backend.close();
    },
  };
}
