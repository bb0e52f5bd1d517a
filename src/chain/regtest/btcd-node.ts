/**
 * Starts a private btcd in regtest mode, configured to judge transactions the way Bitcoin Core's
 * mainnet relay policy does, so a transaction the tests get accepted here would relay for real.
 *
 * Every flag below exists in btcd v0.26.0 (`btcd --help`). Regtest btcd otherwise accepts
 * non-standard, non-final and zero-fee transactions, hence `--rejectnonstd --norelaypriority
 * --limitfreerelay=0`. Everything btcd writes goes under the datadir (`--datadir`, `--logdir`,
 * `--rpccert`, `--rpckey`); with `--regtest` btcd neither reads nor creates ~/.btcd/btcd.conf,
 * though it does create an empty ~/.btcd directory.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ensureBtcd } from './btcd-build.js';
import { launchAndConnect } from './launch.js';
import { checkRegtestAddress, type RegtestNode, type StartRegtestOptions } from './node.js';

/**
 * Builds btcd if needed (see {@link ensureBtcd}), starts it on a free 127.0.0.1 port and
 * connects a backend to it.
 * @returns the running node; call `stop()` when done.
 * @throws TypeError if `miningAddress` is not a regtest address.
 * @throws Error if btcd cannot be built, does not start or does not answer in time (the message
 *   includes the end of btcd's output).
 */
export async function startBtcdRegtest(options: StartRegtestOptions): Promise<RegtestNode> {
  checkRegtestAddress(options.miningAddress);
  const log = options.log ?? (() => {});
  const { btcd } = await ensureBtcd({ onProgress: log });
  const ownsDatadir = options.datadir === undefined;
  const datadir = options.datadir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'paychan-btcd-')));
  const rpcUser = 'paychan';
  const rpcPass = options.rpcPass ?? randomBytes(16).toString('hex');
  return launchAndConnect(
    {
      name: 'btcd',
      command: btcd,
      args: (port) => [
        '--regtest',
        `--datadir=${path.join(datadir, 'data')}`,
        `--logdir=${path.join(datadir, 'logs')}`,
        `--rpccert=${path.join(datadir, 'rpc.cert')}`,
        `--rpckey=${path.join(datadir, 'rpc.key')}`,
        `--rpclisten=127.0.0.1:${port}`,
        '--notls', // allowed because the RPC listens on 127.0.0.1 only
        `--rpcuser=${rpcUser}`,
        `--rpcpass=${rpcPass}`,
        '--nolisten', // no P2P port at all: a private chain needs no peers
        '--rejectnonstd',
        '--norelaypriority',
        '--limitfreerelay=0',
        '--txindex',
        '--nostalldetect',
        '--nobanning',
        `--miningaddr=${options.miningAddress}`,
      ],
      datadir,
      ownsDatadir,
      rpcUser,
      rpcPass,
      readyMethod: 'getbestblockhash',
      readyTimeoutMs: options.readyTimeoutMs ?? 60_000,
      log,
      ...(options.rpcPort !== undefined ? { preferredPort: options.rpcPort } : {}),
      ...(options.stopOnSignal !== undefined ? { stopOnSignal: options.stopOnSignal } : {}),
    },
    options,
    // btcd has no generatetoaddress: `generate` pays --miningaddr.
    (client, blocks) => client.call('generate', [blocks]),
  );
}
