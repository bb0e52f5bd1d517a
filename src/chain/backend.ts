/**
 * The ChainBackend port: everything paychan needs to know about, or ask of, the Bitcoin network.
 *
 * Contracts every adapter keeps (the shared suite in test/integration/chain.test.ts checks them):
 * - "Confirmations" counts blocks on the adapter's current best chain: 0 = in the mempool,
 *   1 = in the tip block. After a reorg a transaction's confirmations can go down, to 0 (back in
 *   the mempool) or to `null` (unknown to the node). Callers re-read; nothing is cached here.
 * - `broadcast` returns only once the node has accepted the transaction into its mempool (or
 *   already has it, mempool or chain); otherwise it throws {@link BroadcastRejectedError} with
 *   the node's own reject reason.
 * - All heights are block heights; no method takes or returns wall-clock time.
 * - Adapter failures (connection refused, HTTP/RPC errors) throw {@link ChainBackendError},
 *   which says which backend and which call failed.
 */
import type { NetworkName } from '../protocol/network.js';

/** A transaction output reference. */
export interface Outpoint {
  readonly txid: string;
  readonly vout: number;
}

export interface TxStatus {
  /** Raw transaction, hex (with witness). */
  readonly hex: string;
  /** 0 when in the mempool, ≥1 when confirmed on the best chain. */
  readonly confirmations: number;
  /** Height of the block that confirmed it; undefined while unconfirmed. */
  readonly blockHeight?: number;
}

export type TestAcceptResult =
  | { readonly allowed: true; readonly txid: string; readonly vsize?: number; readonly feeSat?: bigint }
  | { readonly allowed: false; readonly txid: string; readonly reason: string };

export type OutpointStatus =
  | { readonly state: 'unspent'; readonly valueSat: bigint; readonly scriptHex: string; readonly confirmations: number }
  /** Spent by `spendingTxid`, with its confirmations (0 = the spend is in the mempool). */
  | { readonly state: 'spent'; readonly spendingTxid: string; readonly confirmations: number }
  /** The node knows no such output (never existed on its best chain or mempool). */
  | { readonly state: 'unknown' };

export interface BlockTip {
  readonly height: number;
  readonly hash: string;
}

export interface Block {
  readonly height: number;
  readonly hash: string;
  /** Raw transactions, hex, in block order. */
  readonly txs: readonly string[];
}

export interface ChainBackend {
  /** What the node says it runs: `btcd` or `bitcoind`. */
  readonly dialect: 'btcd' | 'bitcoind';
  readonly network: NetworkName;
  getTip(): Promise<BlockTip>;
  /** @returns the transaction and its confirmations, or null if the node does not know it. */
  getTransaction(txid: string): Promise<TxStatus | null>;
  /** @throws BroadcastRejectedError with the node's reason when the mempool refuses it. */
  broadcast(txHex: string): Promise<string>;
  /** Asks the mempool whether it would accept `txHex`, without broadcasting it. */
  testAccept(txHex: string): Promise<TestAcceptResult>;
  /**
   * Whether `outpoint` is unspent, spent (and by what), or unknown. To find a confirmed spend the
   * adapter scans blocks from `searchFromHeight` (the height the output was created at, or
   * earlier) to the tip, so pass the lowest height you know is safe.
   */
  getOutpointStatus(outpoint: Outpoint, searchFromHeight: number): Promise<OutpointStatus>;
  getBlock(height: number): Promise<Block>;
  /**
   * Fee rate for confirmation within `targetBlocks`, in sat/vB, or null when the node has no
   * estimate (always the case on a fresh regtest chain). Callers apply their own floor/fallback.
   */
  estimateFeeRate(targetBlocks: number): Promise<number | null>;
  /**
   * Calls `onTip` with every new best tip (including after a reorg, where the height may not
   * grow). Returns a function that unsubscribes. Polling or push is the adapter's business.
   */
  subscribeTips(onTip: (tip: BlockTip) => void): () => void;
  /** Releases sockets and timers. */
  close(): Promise<void>;
}

/** The node refused a transaction; `reason` is the node's own message. */
export class BroadcastRejectedError extends Error {
  readonly code = 'BROADCAST_REJECTED';
  constructor(
    readonly txid: string,
    readonly reason: string,
  ) {
    super(`node rejected transaction ${txid}: ${reason}`);
    this.name = 'BroadcastRejectedError';
  }
}

/** A call to the chain backend failed for a reason other than a rejected transaction. */
export class ChainBackendError extends Error {
  readonly code = 'CHAIN_BACKEND_ERROR';
  constructor(
    readonly backend: string,
    readonly method: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${backend} ${method}: ${message}`, options);
    this.name = 'ChainBackendError';
  }
}
