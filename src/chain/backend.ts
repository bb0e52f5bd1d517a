/**
 * The ChainBackend port: everything paychan needs to know about, or ask of, the Bitcoin network.
 * Callers hold this interface only; `connectBackend(url)` (./connect.ts) picks the adapter from
 * the URL's scheme. Today's adapter is the JSON-RPC one for btcd and Bitcoin Core
 * (./rpc-backend.ts); how a node speaks (its dialect) stays inside its adapter.
 *
 * Contracts every adapter keeps (the shared suite in test/integration/chain.test.ts checks them):
 * - "Confirmations" counts blocks on the adapter's current best chain: 0 = in the mempool,
 *   1 = in the tip block. After a reorg a transaction's confirmations can go down, to 0 (back in
 *   the mempool) or to `null` (unknown to the node). Callers re-read; nothing is cached here.
 * - `broadcast` returns only once the node has accepted the transaction into its mempool (or
 *   already has it, mempool or chain); otherwise it throws {@link BroadcastRejectedError} with
 *   the node's own reject reason.
 * - All heights are block heights; no method takes or returns wall-clock time.
 * - Adapter failures (connection refused, timeouts, HTTP/RPC errors, answers of the wrong shape)
 *   throw {@link ChainBackendError}, which says which backend and which call failed. Misuse
 *   (a malformed txid, a negative height) throws `TypeError`/`RangeError` before any I/O.
 * - After `close()` every call rejects with {@link ChainBackendError}; `close()` itself never
 *   throws and may be called more than once.
 *
 * Optional capabilities: what only some backends can do is an optional member (`mining?`),
 * whose doc says who may use it and what a caller does when it is absent; callers test for the
 * member, never for the adapter's `name`. Everything else is required, because paychan needs it
 * from whatever chain source it runs on. A capability nothing in src uses is not put here at
 * all: it stays on the adapter's own type (the JSON-RPC adapter's `RpcChainBackend.testAccept`,
 * a mempool dry run), for the code that built that adapter itself (regtest tooling, tests,
 * benchmarks).
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

/** Making blocks on a private test chain (regtest), for the demo and test tools. */
export interface RegtestMining {
  /**
   * Whether {@link mine} pays the address it is given (Bitcoin Core's `generatetoaddress`), or
   * blocks pay the node's own configured address whatever is asked (btcd's `--miningaddr`).
   */
  readonly paysAnyAddress: boolean;
  /**
   * Mines `blocks` blocks, paying `address` when {@link paysAnyAddress}; resolves once the
   * backend has them (mining many can take minutes: the adapter allows for that).
   * @returns the new blocks' hashes, lowest first.
   * @throws RangeError if `blocks` is not a positive integer.
   * @throws ChainBackendError if the node refuses or cannot be reached.
   */
  mine(blocks: number, address: string): Promise<string[]>;
}

export interface ChainBackend {
  /**
   * What this backend talks to, for people (logs, the demo's report): e.g. `btcd`, `bitcoind`.
   * Never branch on it: a difference a caller needs is a capability on this interface.
   */
  readonly name: string;
  /** The chain the backend serves, checked when connecting. */
  readonly network: NetworkName;
  /** The best block now. @throws ChainBackendError */
  getTip(): Promise<BlockTip>;
  /**
   * A transaction in the mempool or on the best chain.
   * @returns the transaction and its confirmations, or null if the backend does not know it
   *   (never seen, or its block was reorganized away and it is not back in the mempool).
   * @throws TypeError if `txid` is not 64 lowercase hex digits. @throws ChainBackendError
   */
  getTransaction(txid: string): Promise<TxStatus | null>;
  /**
   * Hands `txHex` to the network; resolves once the mempool holds it (or already held it, in the
   * mempool or a block: a repeat is a success).
   * @returns its txid.
   * @throws TypeError if `txHex` is not a serialized transaction.
   * @throws BroadcastRejectedError with the node's reason when the mempool refuses it.
   * @throws ChainBackendError when the backend cannot be asked.
   */
  broadcast(txHex: string): Promise<string>;
  /**
   * Whether `outpoint` is unspent, spent (and by what), or unknown. A spend in the mempool is
   * reported (confirmations 0) even while the output is still in the UTXO set. To find a
   * confirmed spend the adapter scans blocks from `searchFromHeight` (the height the output was
   * created at, or earlier) to the tip, so pass the lowest height you know is safe.
   * @throws TypeError/RangeError for a malformed outpoint or height.
   * @throws ChainBackendError when the backend cannot be asked, or when the output is gone from
   *   the UTXO set yet no spend at or above `searchFromHeight` is found (the height was too high).
   */
  getOutpointStatus(outpoint: Outpoint, searchFromHeight: number): Promise<OutpointStatus>;
  /**
   * The block at `height` on the best chain, with its raw transactions.
   * @throws RangeError for a negative or fractional height.
   * @throws ChainBackendError when there is no such block yet, or the backend cannot be asked.
   */
  getBlock(height: number): Promise<Block>;
  /**
   * Fee rate for confirmation within `targetBlocks`, in sat/vB, or null when the backend has no
   * estimate (always the case on a fresh regtest chain). Callers apply their own floor/fallback
   * (see ./fee-rate.ts): the number is advice from outside, never trusted as is.
   * @throws RangeError if `targetBlocks` is not a positive integer. @throws ChainBackendError
   */
  estimateFeeRate(targetBlocks: number): Promise<number | null>;
  /**
   * Calls `onTip` with every new best tip (including after a reorg, where the height may not
   * grow). Several blocks found at once may be reported as only the newest: a tip is a
   * position, and subscribers catch up on the heights in between with `getBlock`. A repeat of
   * the current tip is possible right after subscribing. Failures to learn the tip are not
   * reported here (the adapter keeps trying), so callers must not treat silence as "no blocks".
   * Polling or push is the adapter's business; a subscription alone keeps no process alive.
   * @returns a function that unsubscribes.
   */
  subscribeTips(onTip: (tip: BlockTip) => void): () => void;
  /**
   * Optional capability: mining, present only on a regtest chain whose backend can mine. For the
   * demo and test tools; production code never mines. When absent, the caller cannot make blocks
   * through this backend and must say so (the demo asks for a node that can mine).
   */
  readonly mining?: RegtestMining;
  /** Releases sockets and timers; later calls reject. */
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
