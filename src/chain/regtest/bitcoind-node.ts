/**
 * Starts a private Bitcoin Core (`bitcoind`) in regtest mode, for running the same tests against
 * the node users run in production. paychan never builds bitcoind: point `PAYCHAN_BITCOIND` at a
 * binary (version 24.0 or later) or have one on PATH.
 *
 * bitcoin.conf is read from the datadir only, so a fresh temp datadir means no user settings leak in.
 * Regtest Core accepts non-standard transactions unless told otherwise, hence
 * `-acceptnonstdtxn=0`; `-txindex=1` because the adapter requires it; no wallet (paychan signs
 * its own transactions; `-fallbackfee` only matters to a wallet and is set so one would load);
 * no P2P at all (`-listen=0`, no seeds, no discovery).
 */
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { launchAndConnect } from './launch.js';
import { checkRegtestAddress, type RegtestNode, type StartRegtestOptions } from './node.js';

/**
 * Finds a bitcoind binary: `PAYCHAN_BITCOIND` if set, else `bitcoind` on PATH.
 * @returns its path, or null if there is none (or `PAYCHAN_BITCOIND` names no executable).
 */
export function findBitcoind(): string | null {
  const override = process.env.PAYCHAN_BITCOIND;
  if (override !== undefined && override !== '') return isExecutable(override) ? path.resolve(override) : null;
  const names = process.platform === 'win32' ? ['bitcoind.exe'] : ['bitcoind'];
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    for (const name of names) {
      const candidate = path.join(dir, name);
      if (isExecutable(candidate)) return candidate;
    }
  }
  return null;
}

/**
 * Starts bitcoind on a free 127.0.0.1 port and connects a backend to it.
 * @returns the running node; call `stop()` when done.
 * @throws TypeError if `miningAddress` is not a regtest address.
 * @throws Error if no bitcoind is found, or it does not start or answer in time (the message
 *   includes the end of its output).
 * @throws ChainBackendError if the bitcoind is older than 24.0.
 */
export async function startBitcoindRegtest(options: StartRegtestOptions): Promise<RegtestNode> {
  checkRegtestAddress(options.miningAddress);
  const bitcoind = findBitcoind();
  if (bitcoind === null) {
    const override = process.env.PAYCHAN_BITCOIND;
    throw new Error(
      override ? `PAYCHAN_BITCOIND=${override}: no executable file there` : 'no bitcoind found: set PAYCHAN_BITCOIND=/path/to/bitcoind or put bitcoind on PATH',
    );
  }
  const log = options.log ?? (() => {});
  const ownsDatadir = options.datadir === undefined;
  const datadir = options.datadir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'paychan-bitcoind-')));
  await fs.mkdir(datadir, { recursive: true }); // bitcoind refuses a datadir that does not exist
  const rpcUser = 'paychan';
  const rpcPass = options.rpcPass ?? randomBytes(16).toString('hex');
  return launchAndConnect(
    {
      name: 'bitcoind',
      command: bitcoind,
      args: (port) => [
        '-regtest',
        `-datadir=${datadir}`,
        '-server=1',
        '-rpcbind=127.0.0.1',
        '-rpcallowip=127.0.0.1',
        `-rpcport=${port}`,
        `-rpcuser=${rpcUser}`,
        `-rpcpassword=${rpcPass}`,
        '-listen=0',
        '-dnsseed=0',
        '-fixedseeds=0',
        '-discover=0',
        '-txindex=1',
        '-acceptnonstdtxn=0',
        '-disablewallet=1',
        '-fallbackfee=0.0002',
        '-printtoconsole=1',
      ],
      datadir,
      ownsDatadir,
      rpcUser,
      rpcPass,
      // Answers -28 ("Loading block index...") until the node is usable.
      readyMethod: 'getblockchaininfo',
      readyTimeoutMs: options.readyTimeoutMs ?? 60_000,
      log,
      ...(options.rpcPort !== undefined ? { preferredPort: options.rpcPort } : {}),
      ...(options.stopOnSignal !== undefined ? { stopOnSignal: options.stopOnSignal } : {}),
    },
    options,
    (client, blocks) => client.call('generatetoaddress', [blocks, options.miningAddress]),
  );
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, fsConstants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}
