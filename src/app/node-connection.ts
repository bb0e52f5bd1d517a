/**
 * Which Bitcoin node a command talks to: the one named by `--rpc-url` (or PAYCHAN_RPC_URL), else
 * the local development node started by `paychan regtest start`.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ChainBackend } from '../chain/backend.js';
import { connectBackend } from '../chain/connect.js';
import type { NetworkName } from '../protocol/network.js';
import { paychanHome } from './files.js';

export interface RpcTarget {
  readonly url: string;
  readonly user: string;
  readonly pass: string;
}

/**
 * What `paychan regtest start` writes (node.json) for other commands to find its node. Its keys
 * are those of `paychan regtest start --json` and of the `--rpc-*` flags (docs/cli.md).
 */
export interface LocalNodeInfo {
  readonly rpcUrl: string;
  readonly rpcUser: string;
  readonly rpcPass: string;
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

/**
 * The local node's node.json, or null when none is readable. A node.json written by paychan
 * before the keys were renamed (`url`, `user`, `pass`) is read too: that node may still run.
 */
export function readLocalNodeInfo(): LocalNodeInfo | null {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(localNodeInfoPath(), 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
  const { url, user, pass, ...rest } = raw;
  return { ...(rest as unknown as LocalNodeInfo), rpcUrl: (raw.rpcUrl ?? url) as string, rpcUser: (raw.rpcUser ?? user) as string, rpcPass: (raw.rpcPass ?? pass) as string };
}

/** The local node's RPC target, for a client that follows it when it moves. */
function localTarget(): RpcTarget | null {
  const info = readLocalNodeInfo();
  return info && { url: info.rpcUrl, user: info.rpcUser, pass: info.rpcPass };
}

/**
 * Connects to `target.url` with the adapter its scheme names (src/chain/connect.ts), else to the
 * local regtest node, following it if it moves.
 * @throws Error telling the user what to do when no node is given and none runs locally.
 * @throws TypeError from connectBackend for a URL it cannot use (unknown scheme, missing or
 *   doubled credentials: they may be given as `user`/`pass` or in the URL, not both).
 * @throws ChainBackendError when the node cannot be reached or cannot serve paychan.
 */
export async function connectNode(target: Partial<RpcTarget>, network: NetworkName): Promise<ChainBackend> {
  if (target.url) {
    const { user, pass } = target;
    return connectBackend(target.url, { network, ...(user ? { user } : {}), ...(pass ? { pass } : {}) });
  }
  const local = network === 'regtest' ? localTarget() : null;
  if (!local) {
    const message = network === 'regtest' ? 'no node: pass --rpc-url, or start a local one with: paychan regtest start' : `no node: pass --rpc-url for ${network}`;
    throw Object.assign(new Error(message), { code: 'NO_NODE' });
  }
  // The local node may restart on another port (its old one taken): node.json says where.
  return connectBackend(local.url, { user: local.user, pass: local.pass, network, relocate: localTarget });
}
