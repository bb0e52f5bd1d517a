/**
 * What every regtest node paychan can start (btcd, bitcoind) gives its user: a connected
 * {@link ChainBackend}, a way to mine, and a way to make it go away. Tests and the demo only
 * see this interface, so the same scenario runs against either node. Also the two small checks
 * both starters share.
 */
import { address, networks } from 'bitcoinjs-lib';
import { ChainBackendError } from '../backend.js';
import type { RpcChainBackend } from '../rpc-backend.js';

/** A private regtest node started by paychan. */
export interface RegtestNode {
  /** `http://127.0.0.1:<port>`. */
  readonly rpcUrl: string;
  readonly rpcUser: string;
  readonly rpcPass: string;
  /**
   * Connected adapter, closed by `stop()`: the JSON-RPC one, with its extras (`testAccept`) for
   * the tests and tools that drive this node; pass it on as a ChainBackend.
   */
  readonly backend: RpcChainBackend;
  /** Where mined block rewards go (a regtest address). */
  readonly miningAddress: string;
  readonly datadir: string;
  /** The node process's own pid (not its watchdog's), for diagnostics and tests. */
  readonly pid: number;
  /**
   * Mines `blocks` blocks paying {@link miningAddress}; resolves once the node has them.
   * @returns the new blocks' hashes, lowest first.
   * @throws ChainBackendError if the node refuses or cannot be reached.
   */
  mine(blocks: number): Promise<string[]>;
  /**
   * Stops the node (SIGTERM, SIGKILL if it lingers) and waits until it has exited; removes the
   * datadir unless the caller supplied it. Idempotent: later calls return the same promise.
   */
  stop(): Promise<void>;
}

/** Options shared by every regtest node starter. */
export interface StartRegtestOptions {
  /** Regtest address paid by mined blocks (bech32 `bcrt1...` works for both nodes). */
  readonly miningAddress: string;
  /** Use (and keep) this directory; default: a fresh temp directory, deleted by `stop()`. */
  readonly datadir?: string;
  /** Receives progress lines (build, start, stop). */
  readonly log?: (line: string) => void;
  /** How often the backend polls for new tips; default 200 ms. */
  readonly pollIntervalMs?: number;
  /** How long to wait for the RPC server to answer; default 60 000 ms. */
  readonly readyTimeoutMs?: number;
  /**
   * Listen on this RPC port if it is free (else on any free one): a node restarted on its old
   * port, with its old password, is found again by clients that knew it.
   */
  readonly rpcPort?: number;
  /** RPC password; default: a fresh random one. */
  readonly rpcPass?: string;
  /** Stop the node on SIGINT/SIGTERM of this process; default true (see LaunchSpec.stopOnSignal). */
  readonly stopOnSignal?: boolean;
}

/** @throws TypeError if `addr` is not a regtest address. */
export function checkRegtestAddress(addr: string): void {
  try {
    address.toOutputScript(addr, networks.regtest);
  } catch (err) {
    throw new TypeError(`not a regtest address: ${addr}`, { cause: err });
  }
}

/** @throws ChainBackendError unless `value` is `count` block hashes. */
export function blockHashes(value: unknown, count: number, label: string): string[] {
  if (!Array.isArray(value) || value.length !== count || !value.every((h) => typeof h === 'string')) {
    throw new ChainBackendError(label, 'mine', `expected ${count} block hashes, got ${JSON.stringify(value).slice(0, 200)}`);
  }
  return value as string[];
}
