/**
 * A regtest node the user already runs (`--rpc-url`), with the one thing paychan needs beyond
 * the ChainBackend port for a demo: mining blocks to one of our addresses.
 */
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
  /** Mines `blocks` blocks paying `address`. @throws Error on btcd (see below). */
  mineTo(address: string, blocks: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Connects to a regtest node the user runs.
 * @throws ChainBackendError if the node cannot be reached or is not on regtest.
 */
export async function connectExternalRegtest(options: ExternalNodeOptions): Promise<ExternalRegtestNode> {
  const backend = await connectRpcBackend({ ...options, network: 'regtest' });
  const rpc = new RpcClient(options);
  return {
    backend,
    async mineTo(address, blocks) {
      if (backend.dialect === 'btcd') {
        // btcd's `generate` always pays the node's own --miningaddr; it cannot pay ours.
        throw new Error(`btcd at ${options.url} mines only to its own --miningaddr; restart it with --miningaddr=${address}, or let paychan start its own node (omit --rpc-url)`);
      }
      await rpc.call('generatetoaddress', [blocks, address]);
    },
    async stop() {
      await backend.close();
    },
  };
}
