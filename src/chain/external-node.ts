/**
 * A regtest node the user already runs (`--rpc-url`), for the demo: the ChainBackend the URL's
 * scheme names (src/chain/connect.ts), which must offer the optional `mining` capability, plus
 * the one fact the demo's funding needs from the last block. bitcoind mines to any address; btcd
 * only to its own `--miningaddr`, so on btcd the caller must find coins elsewhere (see
 * src/demo/demo-funds.ts).
 */
import { Transaction } from 'bitcoinjs-lib';
import { ChainBackendError, type ChainBackend } from './backend.js';
import { connectBackend } from './connect.js';

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
 * @throws ChainBackendError if the node cannot be reached, is not on regtest, has no
 *   transaction index, or its backend cannot mine.
 * @throws TypeError from connectBackend for a URL it cannot use.
 */
export async function connectExternalRegtest(options: ExternalNodeOptions): Promise<ExternalRegtestNode> {
  const backend = await connectBackend(options.url, { user: options.user, pass: options.pass, network: 'regtest' });
  const mining = backend.mining;
  if (mining === undefined) {
    await backend.close();
    throw new ChainBackendError(backend.name, 'connect', `the backend at ${options.url} cannot mine blocks, which the demo needs`);
  }
  return {
    backend,
    minesToAnyAddress: mining.paysAnyAddress,
    async mine(blocks, address) {
      await mining.mine(blocks, address);
      const tip = await backend.getTip();
      const coinbase = Transaction.fromHex((await backend.getBlock(tip.height)).txs[0]!);
      return Buffer.from(coinbase.outs[0]!.script).toString('hex');
    },
    stop: () => backend.close(),
  };
}
