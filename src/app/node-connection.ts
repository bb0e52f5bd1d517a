/**
 * Which Bitcoin node a command talks to: the one named by `--rpc-url` (or PAYCHAN_RPC_URL), else
 * the local development node started by `paychan regtest start`.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ChainBackend } from '../chain/backend.js';
import { connectRpcBackend } from '../chain/rpc-backend.js';
import type { NetworkName } from '../protocol/network.js';
import { paychanHome } from './files.js';

export interface RpcTarget {
  readonly url: string;
  readonly user: string;
  readonly pass: string;
}

/** What `paychan regtest start` writes for other commands to find its node. */
export interface LocalNodeInfo extends RpcTarget {
  readonly pid: number;
  readonly supervisorPid: number;
  readonly miningAddress: string;
  readonly datadir: string;
}

export function localNodeInfoPath(): string {
  return path.join(paychanHome(), 'regtest', 'node.json');
}

/**
 * The seed of the local node's faucet: `paychan regtest start` runs btcd with
 * `--miningaddr` = this seed's first receive address, so every block it mines pays the faucet.
 */
export function localFaucetSeedPath(): string {
  return path.join(paychanHome(), 'regtest', 'faucet-seed');
}

export function readLocalNodeInfo(): LocalNodeInfo | null {
  try {
    return JSON.parse(fs.readFileSync(localNodeInfoPath(), 'utf8')) as LocalNodeInfo;
  } catch {
    return null;
  }
}

/**
 * @throws Error telling the user what to do when no node is given and none runs locally.
 */
export async function connectNode(target: Partial<RpcTarget>, network: NetworkName): Promise<ChainBackend> {
  if (target.url) {
    if (!target.user || !target.pass) throw new Error('--rpc-url needs --rpc-user and --rpc-pass (or PAYCHAN_RPC_USER / PAYCHAN_RPC_PASS)');
    return connectRpcBackend({ url: target.url, user: target.user, pass: target.pass, network });
  }
  const local = network === 'regtest' ? readLocalNodeInfo() : null;
  if (!local) {
    throw new Error(network === 'regtest' ? 'no node: pass --rpc-url, or start a local one with: paychan regtest start' : `no node: pass --rpc-url for ${network}`);
  }
  // The local node may restart on another port (its old one taken): node.json says where.
  return connectRpcBackend({ url: local.url, user: local.user, pass: local.pass, network, relocate: readLocalNodeInfo });
}
