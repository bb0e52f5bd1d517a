/**
 * The `node` option of {@link createPayee} and {@link createPayer}: which Bitcoin node a side
 * talks to, given the way a user has it at hand. A URL string (credentials in it:
 * `http://user:pass@127.0.0.1:18334`, any scheme of src/chain/connect.ts), a backend the
 * application already connected, or nothing: `$PAYCHAN_RPC_URL` if set, else the local node of
 * `paychan regtest start`.
 *
 * Why the side remembers whether it owns the backend: a backend it connected from a URL is its
 * to close; one the application passed in is the application's.
 */
import type { ChainBackend } from '../chain/backend.js';
import type { NetworkName } from '../protocol/network.js';
import { connectNode } from './node-connection.js';

/** A node URL with its credentials, a connected backend, or undefined for the local regtest node. */
export type NodeOption = string | ChainBackend | undefined;

export interface ResolvedNode {
  readonly backend: ChainBackend;
  /** Closes the backend if it was connected here; a no-op for one the caller passed in. */
  release(): Promise<void>;
}

/**
 * @throws TypeError for a URL connectBackend cannot use.
 * @throws Error when no node is given and no local one runs.
 * @throws ChainBackendError when the node cannot be reached.
 */
export async function resolveNode(node: NodeOption, network: NetworkName): Promise<ResolvedNode> {
  if (node !== undefined && typeof node !== 'string') return { backend: node, release: async () => undefined };
  // Unset, the CLI's environment names the node as it does for `paychan`: PAYCHAN_RPC_URL (with
  // PAYCHAN_RPC_USER/PASS), else the local regtest node.
  const env = process.env;
  const target = node !== undefined ? { url: node } : env.PAYCHAN_RPC_URL ? { url: env.PAYCHAN_RPC_URL, user: env.PAYCHAN_RPC_USER, pass: env.PAYCHAN_RPC_PASS } : {};
  const backend = await connectNode(target, network);
  return { backend, release: () => backend.close() };
}
