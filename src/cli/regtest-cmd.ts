/**
 * `paychan regtest start|stop|run|mine|fund|build` — a local regtest node for development.
 *
 * `start` launches `paychan regtest run` in the background: a small supervisor that starts
 * btcd on a kept datadir under $PAYCHAN_HOME/regtest, restores the saved chain (btcd itself
 * keeps none across restarts: see BlockArchive), mines the first 101 blocks to a faucet wallet,
 * writes node.json (RPC URL and credentials) for the other commands, saves blocks as they come,
 * and stops btcd when told to (or when it dies: btcd runs under a watchdog). It restarts on
 * the same RPC port and password when it can, so running payees and payers find it again.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BlockArchive } from '../chain/regtest/block-archive.js';
import { startBtcdRegtest } from '../chain/regtest/btcd-node.js';
import { ensureBtcd } from '../chain/regtest/btcd-build.js';
import { RpcClient } from '../chain/rpc-client.js';
import { connectBackend } from '../chain/connect.js';
import { secp256k1 } from '../crypto/index.js';
import { WalletKeys } from '../wallet/keys.js';
import { Wallet } from '../wallet/wallet.js';
import { ensurePrivateDir, loadOrCreateSeed, paychanHome } from '../app/files.js';
import { localFaucetSeedPath, localNodeInfoPath, readLocalNodeInfo, type LocalNodeInfo } from '../app/node-connection.js';
import { helpText, type CommandHelp } from './help.js';
import { amountSat, logger, parse, positiveInt, printJson, UsageError } from './options.js';

export const REGTEST_HELP = `paychan regtest — a local regtest node (btcd) for development

Usage:
  paychan regtest start          start the node in the background; prints its RPC URL and credentials
  paychan regtest stop           stop it
  paychan regtest mine N         mine N blocks (to the faucet wallet)
  paychan regtest fund ADDRESS AMOUNT
                                 send AMOUNT (satoshis, or e.g. 0.5btc) from the faucet, and mine it
  paychan regtest run            run the node in the foreground (what start runs)
  paychan regtest build          build the pinned btcd into ~/.cache/paychan (first use does this too)

The node keeps its chain in $PAYCHAN_HOME/regtest (default ~/.paychan/regtest), listens on
127.0.0.1 only, and is found there by the payee and payer commands when --rpc-url is not given.
Options: --json (machine-readable output), -h/--help.
`;

const JSON_LINE = '--json              machine-readable output (one JSON object on stdout)';

/** Each regtest subcommand's own help (`paychan regtest mine --help`). */
export const REGTEST_COMMANDS: Readonly<Record<string, CommandHelp>> = {
  start: {
    usage: 'start',
    about: 'start the local regtest node (btcd) in the background\nPrints its RPC URL and credentials; the chain is kept in $PAYCHAN_HOME/regtest.',
    options: JSON_LINE,
    example: 'paychan regtest start',
  },
  stop: { usage: 'stop', about: 'stop the local regtest node', options: JSON_LINE, example: 'paychan regtest stop' },
  mine: { usage: 'mine N', about: 'mine N blocks (to the faucet wallet)', options: JSON_LINE, example: 'paychan regtest mine 1' },
  fund: {
    usage: 'fund ADDRESS AMOUNT',
    about: 'send AMOUNT (satoshis, or e.g. 0.5btc) from the faucet to ADDRESS, and mine it',
    options: JSON_LINE,
    example: 'paychan regtest fund bcrt1q… 0.01btc',
  },
  run: { usage: 'run', about: "run the node in the foreground (what 'start' runs)", example: 'paychan regtest run' },
  build: { usage: 'build', about: "build the pinned btcd into the user cache ($PAYCHAN_CACHE_DIR, else\n$XDG_CACHE_HOME/paychan, else ~/.cache/paychan); the first use does this too", example: 'paychan regtest build' },
};

const regtestDir = () => path.join(paychanHome(), 'regtest');

function faucetKeys(): { seed: Uint8Array; keys: WalletKeys } {
  const seed = loadOrCreateSeed(localFaucetSeedPath());
  return { seed, keys: WalletKeys.fromSeed(seed, 'regtest') };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function runningNode(): LocalNodeInfo | null {
  const info = readLocalNodeInfo();
  return info && alive(info.supervisorPid) ? info : null;
}

function requireNode(): LocalNodeInfo {
  const info = runningNode();
  if (!info) throw Object.assign(new Error('no local regtest node is running: start one with paychan regtest start'), { code: 'NO_NODE' });
  return info;
}

/**
 * The node's RPC port and password, kept across restarts: a payee or payer that was talking to
 * the node before `regtest stop` / `regtest start` reaches it again without being restarted.
 */
const identityPath = () => path.join(regtestDir(), 'rpc.json');

function loadIdentity(): { port?: number; pass: string } {
  try {
    const saved = JSON.parse(fs.readFileSync(identityPath(), 'utf8')) as { port?: unknown; pass?: unknown };
    if (typeof saved.pass === 'string' && /^[0-9a-f]{32}$/.test(saved.pass)) {
      return { pass: saved.pass, ...(Number.isInteger(saved.port) ? { port: saved.port as number } : {}) };
    }
  } catch {
    // none yet, or unreadable: a new identity
  }
  return { pass: randomBytes(16).toString('hex') };
}

/** Lines the supervisor writes to node.log that `start` relays to the user. */
const PROGRESS_PREFIX = 'progress: ';

/**
 * The supervisor. btcd wipes its regtest database on every start, so the chain is kept by a
 * {@link BlockArchive} in the datadir: followed as blocks arrive, saved once more before the
 * node stops, and submitted again after it starts, before anything can mine.
 */
async function run(log: (l: string) => void): Promise<number> {
  ensurePrivateDir(regtestDir());
  const { keys } = faucetKeys();
  const miningAddress = keys.address('receive', 0).address;
  const datadir = ensurePrivateDir(path.join(regtestDir(), 'btcd'));
  const identity = loadIdentity();
  // We stop the node ourselves on a signal, after saving its last blocks.
  const node = await startBtcdRegtest({ miningAddress, datadir, log, rpcPass: identity.pass, ...(identity.port !== undefined ? { rpcPort: identity.port } : {}), stopOnSignal: false });
  const rpc = new RpcClient({ url: node.rpcUrl, user: node.rpcUser, pass: node.rpcPass, timeoutMs: 120_000 });
  let unsubscribe = (): void => {};
  try {
    fs.writeFileSync(identityPath(), JSON.stringify({ port: Number(new URL(node.rpcUrl).port), pass: identity.pass }), { mode: 0o600 });
    const archive = BlockArchive.open(path.join(datadir, 'chain.blocks'));
    await archive.replay(rpc, (line) => log(`${PROGRESS_PREFIX}${line}`));
    const tip = await node.backend.getTip();
    if (tip.height < 101) {
      log(`mining ${101 - tip.height} blocks so the faucet has a mature coinbase`);
      await node.mine(101 - tip.height);
    }
    const save = (): Promise<void> => archive.follow(rpc).catch((err: unknown) => log(`saving blocks failed: ${err instanceof Error ? err.message : String(err)}`));
    await save();
    unsubscribe = node.backend.subscribeTips(() => void save());
    const info: LocalNodeInfo = { rpcUrl: node.rpcUrl, rpcUser: node.rpcUser, rpcPass: node.rpcPass, pid: node.pid, supervisorPid: process.pid, miningAddress, datadir };
    fs.writeFileSync(localNodeInfoPath(), JSON.stringify(info, null, 2), { mode: 0o600 });
    log(`regtest node ready at ${node.rpcUrl}`);
    const why = await new Promise<string>((resolve) => {
      process.once('SIGTERM', () => resolve('stopping'));
      process.once('SIGINT', () => resolve('stopping'));
      // btcd killed on its own: go too, so `regtest start` starts it again (the blocks are saved).
      const check = setInterval(() => {
        if (!alive(node.pid)) {
          clearInterval(check);
          resolve(`btcd (pid ${node.pid}) exited; stopping`);
        }
      }, 1000);
    });
    log(why);
    unsubscribe();
    if (alive(node.pid)) await save();
    log(`saved ${archive.height} blocks`);
    return 0;
  } finally {
    unsubscribe();
    fs.rmSync(localNodeInfoPath(), { force: true });
    rpc.close();
    await node.stop();
  }
}

/** The text of `file` after byte `offset`, up to its last newline. */
function completeLinesFrom(file: string, offset: number): string {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    if (size <= offset) return '';
    const buf = Buffer.alloc(size - offset);
    fs.readSync(fd, buf, 0, buf.length, offset);
    const end = buf.lastIndexOf(0x0a);
    return end < 0 ? '' : buf.subarray(0, end + 1).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

async function start(json: boolean, log: (l: string) => void): Promise<number> {
  const existing = runningNode();
  if (!existing) {
    ensurePrivateDir(regtestDir());
    fs.rmSync(localNodeInfoPath(), { force: true });
    await ensureBtcd({ onProgress: log });
    const bin = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'paychan.js');
    const logPath = path.join(regtestDir(), 'node.log');
    const out = fs.openSync(logPath, 'a', 0o600);
    let logOffset = fs.fstatSync(out).size;
    const child = spawn(process.execPath, [bin, 'regtest', 'run'], { detached: true, stdio: ['ignore', out, out], env: process.env });
    child.unref();
    log('starting the regtest node…');
    // Restoring a long saved chain takes a while: the wait lasts as long as it makes progress.
    const WAIT_MS = 120_000;
    let deadline = Date.now() + WAIT_MS;
    while (!runningNode()) {
      const fresh = completeLinesFrom(logPath, logOffset);
      logOffset += Buffer.byteLength(fresh);
      for (const line of fresh.split('\n')) {
        if (!line.startsWith(PROGRESS_PREFIX)) continue;
        process.stderr.write(`${line.slice(PROGRESS_PREFIX.length)}\n`);
        deadline = Date.now() + WAIT_MS;
      }
      if (!alive(child.pid!)) throw new Error(`the regtest node failed to start; see ${logPath}`);
      if (Date.now() > deadline) throw new Error(`the regtest node did not start within ${WAIT_MS / 1000} s; see ${logPath}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const info = requireNode();
  if (json) printJson({ rpcUrl: info.rpcUrl, rpcUser: info.rpcUser, rpcPass: info.rpcPass, network: 'regtest', datadir: info.datadir, alreadyRunning: existing !== null });
  else {
    log(existing ? 'a regtest node is already running' : 'regtest node started');
    log(`  RPC URL:   ${info.rpcUrl}`);
    log(`  RPC user:  ${info.rpcUser}`);
    log(`  RPC pass:  ${info.rpcPass}`);
    log(`  chain:     ${info.datadir}`);
    log('Other paychan commands find it on their own; stop it with: paychan regtest stop');
  }
  return 0;
}

async function stop(json: boolean, log: (l: string) => void): Promise<number> {
  const info = runningNode();
  if (!info) {
    log('no local regtest node is running');
    if (json) printJson({ stopped: false });
    return 0;
  }
  process.kill(info.supervisorPid, 'SIGTERM');
  // The supervisor saves the blocks it has not saved yet before it stops the node.
  const deadline = Date.now() + 120_000;
  while (alive(info.supervisorPid) || alive(info.pid)) {
    if (Date.now() > deadline) throw new Error(`the regtest node (pid ${info.pid}) did not stop within 120 s; see ${path.join(regtestDir(), 'node.log')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  log('regtest node stopped');
  if (json) printJson({ stopped: true });
  return 0;
}

/**
 * Blocks per `generate` call. One call for N blocks would keep btcd mining after this command
 * is killed; in batches, a stopped command leaves at most one batch behind, and we can report
 * progress between them.
 */
export const MINE_BATCH = 50;
/**
 * The most blocks one `regtest mine` takes. Regtest blocks mined several a second carry
 * timestamps that run ahead of the clock (each must be later than the median of the 11 before
 * it), and once they are two hours ahead btcd rejects its own blocks ("block timestamp too far
 * in the future"). Nothing paychan does needs more blocks at once.
 */
export const MAX_MINE = 10_000;

async function mine(blocks: number, json: boolean, log: (l: string) => void): Promise<number> {
  if (blocks > MAX_MINE) {
    throw new UsageError(`regtest mine takes at most ${MAX_MINE} blocks at a time (asked for ${blocks}): btcd stamps fast-mined regtest blocks ahead of the clock and rejects them once they are two hours ahead`);
  }
  const info = requireNode();
  const rpc = new RpcClient({ url: info.rpcUrl, user: info.rpcUser, pass: info.rpcPass, timeoutMs: 120_000 });
  // A signal stops the mining between batches (the node finishes the batch it is on).
  let stoppedBy: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    stoppedBy ??= signal;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let mined = 0;
  try {
    while (mined < blocks && stoppedBy === undefined) {
      const batch = Math.min(MINE_BATCH, blocks - mined);
      await rpc.call('generate', [batch]);
      mined += batch;
      if (blocks > MINE_BATCH) process.stderr.write(`mined ${mined}/${blocks} blocks\n`);
    }
    const tip = (await rpc.call('getblockcount')) as number;
    if (stoppedBy !== undefined) {
      process.stderr.write(`paychan: stopped by ${stoppedBy} after ${mined} of ${blocks} block(s); height ${tip}\n`);
      // Like every stopped run, --json still gets its one object (what was mined, and why not all).
      if (json) printJson({ mined, height: tip, requestedBlocks: blocks, stopped: stoppedBy, error: { code: 'INTERRUPTED', message: `interrupted (${stoppedBy})` } });
      return stoppedBy === 'SIGINT' ? 130 : 143;
    }
    if (json) printJson({ mined: blocks, height: tip });
    else log(`mined ${blocks} block(s); height ${tip}`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    rpc.close();
  }
  return 0;
}

async function fund(address: string, amount: bigint, json: boolean, log: (l: string) => void): Promise<number> {
  const info = requireNode();
  const backend = await connectBackend(info.rpcUrl, { user: info.rpcUser, pass: info.rpcPass, network: 'regtest' });
  const rpc = new RpcClient({ url: info.rpcUrl, user: info.rpcUser, pass: info.rpcPass, timeoutMs: 120_000 });
  try {
    const { seed } = faucetKeys();
    const faucet = await Wallet.open({ seed, network: 'regtest', backend, secp: secp256k1() });
    await faucet.sync();
    if (faucet.balance().confirmedSat < amount + 10_000n) {
      log('the faucet is low; mining 101 blocks');
      await rpc.call('generate', [101]);
      await faucet.sync();
    }
    const sent = await faucet.send(address, amount, 2);
    await rpc.call('generate', [1]);
    if (json) printJson({ txid: sent.txid, address, amountSat: amount, confirmations: 1 });
    else log(`sent ${amount} sat to ${address} in ${sent.txid} (mined, 1 confirmation)`);
  } finally {
    rpc.close();
    await backend.close();
  }
  return 0;
}

export async function regtestCommand(argv: string[]): Promise<number> {
  const p = parse(argv, {});
  const [sub, ...args] = p.positionals;
  const log = logger(p);
  if (p.flag('help') || sub === undefined || sub === 'help') {
    process.stdout.write(helpText('regtest', REGTEST_HELP, REGTEST_COMMANDS, sub === 'help' ? args[0] : sub));
    return 0;
  }
  switch (sub) {
    case 'start':
      return start(p.flag('json'), log);
    case 'run':
      return run(log);
    case 'stop':
      return stop(p.flag('json'), log);
    case 'mine':
      return mine(positiveInt('N', args[0]), p.flag('json'), log);
    case 'fund': {
      if (args.length !== 2) throw new UsageError('usage: paychan regtest fund ADDRESS AMOUNT');
      return fund(args[0]!, amountSat('AMOUNT', args[1]), p.flag('json'), log);
    }
    case 'build': {
      const bins = await ensureBtcd({ onProgress: log });
      if (p.flag('json')) printJson({ btcd: bins.btcd });
      else process.stdout.write(`${bins.btcd}\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown regtest command '${sub}'`);
  }
}
