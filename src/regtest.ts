/**
 * `paychan/regtest`: a private Bitcoin regtest node (btcd, or a bitcoind the user points at) for
 * tests and demos, with mining. Node-only.
 */
export { startRegtestNode, type RegtestNode } from './chain/regtest/index.js';
export type { RegtestMining } from './chain/backend.js';
