/**
 * One entry point for "give me a regtest node": Bitcoin Core when the user points at one with
 * `PAYCHAN_BITCOIND`, else the pinned btcd paychan builds itself. Callers see only
 * {@link RegtestNode}, so a scenario runs unchanged on either.
 */
import { startBitcoindRegtest } from './bitcoind-node.js';
import { startBtcdRegtest } from './btcd-node.js';
import type { RegtestNode, StartRegtestOptions } from './node.js';

export type { RegtestNode, StartRegtestOptions } from './node.js';
export { startBtcdRegtest } from './btcd-node.js';
export { findBitcoind, startBitcoindRegtest } from './bitcoind-node.js';
export { ensureBtcd, BTCD_VERSION } from './btcd-build.js';

/**
 * Starts bitcoind if `PAYCHAN_BITCOIND` is set, else btcd (built on first use).
 * @returns the running node; call `stop()` when done.
 * @throws TypeError if `miningAddress` is not a regtest address.
 * @throws Error if the node cannot be built, found or started (see the starters).
 */
export function startRegtestNode(options: StartRegtestOptions): Promise<RegtestNode> {
  const wantsBitcoind = process.env.PAYCHAN_BITCOIND !== undefined && process.env.PAYCHAN_BITCOIND !== '';
  return wantsBitcoind ? startBitcoindRegtest(options) : startBtcdRegtest(options);
}
