/**
 * The life cycle every regtest node shares, whatever the binary: pick a free port, start the
 * node under a watchdog, wait until its RPC answers, and stop it for certain.
 *
 * Readiness is observed, never assumed: we poll a cheap RPC until it answers (there is no fixed
 * sleep anywhere), give up after a timeout, and if the node dies or never answers, the error
 * carries the tail of the node's own output, which is where the reason is. Stopping is SIGTERM,
 * a wait for the exit, then SIGKILL. Nodes still running when this process exits or is
 * interrupted are killed by the handlers installed here; the watchdog (./watchdog.ts) covers
 * the deaths no handler sees (SIGKILL, a crashed test worker).
 */
import fs from 'node:fs/promises';
import net from 'node:net';
import { connectRpcBackend } from '../rpc-backend.js';
import { RpcClient } from '../rpc-client.js';
import { blockHashes, type RegtestNode } from './node.js';
import { spawnWatched, type WatchedProcess } from './watchdog.js';

/** How to start one node; the port is chosen here, so the arguments are a function of it. */
export interface LaunchSpec {
  /** Short name for messages, e.g. `btcd`. */
  readonly name: string;
  readonly command: string;
  readonly args: (rpcPort: number) => readonly string[];
  readonly datadir: string;
  /** Delete `datadir` on stop (and let the watchdog delete it if we die first). Never on a failed start. */
  readonly ownsDatadir: boolean;
  readonly rpcUser: string;
  readonly rpcPass: string;
  /** A read-only RPC that answers once the node is fully up. */
  readonly readyMethod: string;
  readonly readyTimeoutMs: number;
  readonly log: (line: string) => void;
  /** Try this RPC port first, if it is free. */
  readonly preferredPort?: number;
  /**
   * Stop the node when this process gets SIGINT/SIGTERM (default true). A caller that must do
   * something with the node before it stops (save its blocks) says false and stops it itself;
   * the node still dies with this process (exit handler, watchdog).
   */
  readonly stopOnSignal?: boolean;
}

/** A running node, ready for RPC. */
export interface LaunchedNode {
  readonly rpcUrl: string;
  readonly pid: number;
  /** For node-control calls (mining); long timeout, since mining many blocks takes a while. */
  readonly client: RpcClient;
  /** Stops the node, then deletes the datadir if owned. Idempotent. */
  stop(): Promise<void>;
}

const STOP_GRACE_MS = 10_000;
const OUTPUT_TAIL_CHARS = 3000;
/** Port races (another process grabbing our free port before the node binds it) are retried. */
const PORT_ATTEMPTS = 3;

/** Nodes that may still be running, for the exit and signal handlers. */
const live = new Set<LiveNode>();
interface LiveNode {
  readonly watched: WatchedProcess;
  pid: number | undefined;
  readonly stopOnSignal: boolean;
}
let handlersInstalled = false;

/**
 * Starts a node and waits until its RPC answers.
 * @throws Error naming the node, with the tail of its output, if it exits early or does not
 *   answer within `readyTimeoutMs`.
 */
export async function launchNode(spec: LaunchSpec): Promise<LaunchedNode> {
  for (let attempt = 1; ; attempt++) {
    try {
      const preferred = attempt === 1 && spec.preferredPort !== undefined && (await portFree(spec.preferredPort));
      return await launchOnce(spec, preferred ? spec.preferredPort! : await freePort());
    } catch (err) {
      if (!(err instanceof PortTakenError) || attempt >= PORT_ATTEMPTS) throw err;
      spec.log(`${spec.name}: RPC port was taken meanwhile; retrying on another`);
    }
  }
}

class PortTakenError extends Error {}

async function launchOnce(spec: LaunchSpec, port: number): Promise<LaunchedNode> {
  installExitHandlers();
  const watched = spawnWatched({
    command: spec.command,
    args: spec.args(port),
    ...(spec.ownsDatadir ? { cleanupDirOnOrphan: spec.datadir } : {}),
    graceMs: STOP_GRACE_MS,
  });
  const entry: LiveNode = { watched, pid: undefined, stopOnSignal: spec.stopOnSignal ?? true };
  live.add(entry);
  let tail = '';
  for (const stream of watched.output) {
    stream.on('data', (chunk: Buffer) => {
      tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
    });
  }
  // 'close', not 'exit': it comes after the output pipes are drained, so the tail is complete.
  const exited = new Promise<string>((resolve) =>
    watched.watchdog.once('close', (code, signal) => {
      live.delete(entry);
      resolve(signal ?? `exit code ${code}`);
    }),
  );
  let exitStatus: string | undefined;
  void exited.then((status) => (exitStatus = status));

  const rpcUrl = `http://127.0.0.1:${port}`;
  const client = new RpcClient({ url: rpcUrl, user: spec.rpcUser, pass: spec.rpcPass, timeoutMs: 300_000 });
  let terminating: Promise<void> | undefined;
  const terminate = (): Promise<void> =>
    (terminating ??= (async () => {
      client.close();
      if (exitStatus === undefined) {
        watched.watchdog.kill('SIGTERM');
        const timer = setTimeout(() => {
          watched.watchdog.kill('SIGKILL');
          if (entry.pid !== undefined) killQuietly(entry.pid, 'SIGKILL');
        }, STOP_GRACE_MS + 2000);
        await exited;
        clearTimeout(timer);
      }
      if (entry.pid !== undefined) await waitGone(entry.pid);
    })());
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await terminate();
      if (spec.ownsDatadir) await fs.rm(spec.datadir, { recursive: true, force: true });
      spec.log(`${spec.name}: stopped`);
    })());

  try {
    entry.pid = await Promise.race([watched.nodePid, exited.then((s) => Promise.reject(new Error(s)))]);
    await waitReady(spec, client, () => exitStatus);
  } catch (err) {
    const why = exitStatus !== undefined ? `exited (${exitStatus}) before its RPC answered` : `did not answer on ${rpcUrl} within ${spec.readyTimeoutMs} ms`;
    // The datadir stays: a retry reuses it, and the caller that made it removes it on failure.
    await terminate();
    if (/address already in use/i.test(tail)) throw new PortTakenError(`${spec.name}: port ${port} taken`);
    throw new Error(`${spec.name} ${why}. Its last output:\n${tail.trim() || '(none)'}`, { cause: err });
  }
  spec.log(`${spec.name}: ready at ${rpcUrl} (pid ${entry.pid}, datadir ${spec.datadir})`);
  return { rpcUrl, pid: entry.pid, client, stop };
}

/** What {@link connectLaunched} needs besides the launched node. */
export interface NodeDetails {
  readonly rpcUser: string;
  readonly rpcPass: string;
  readonly miningAddress: string;
  readonly datadir: string;
  readonly pollIntervalMs?: number;
  /** The node's mining RPC for `blocks` blocks; must answer with their hashes. */
  readonly mineCall: (client: RpcClient, blocks: number) => Promise<unknown>;
}

/**
 * Connects a backend to a launched node and wraps both as a {@link RegtestNode}; stops the node
 * if connecting fails.
 * @throws ChainBackendError if the backend cannot connect (e.g. the node is not on regtest).
 */
export async function connectLaunched(node: LaunchedNode, details: NodeDetails): Promise<RegtestNode> {
  try {
    const backend = await connectRpcBackend({
      url: node.rpcUrl,
      user: details.rpcUser,
      pass: details.rpcPass,
      network: 'regtest',
      ...(details.pollIntervalMs !== undefined ? { pollIntervalMs: details.pollIntervalMs } : {}),
    });
    let stopping: Promise<void> | undefined;
    return {
      rpcUrl: node.rpcUrl,
      rpcUser: details.rpcUser,
      rpcPass: details.rpcPass,
      backend,
      miningAddress: details.miningAddress,
      datadir: details.datadir,
      pid: node.pid,
      async mine(blocks: number): Promise<string[]> {
        if (!Number.isInteger(blocks) || blocks < 1) throw new RangeError(`cannot mine ${blocks} blocks`);
        return blockHashes(await details.mineCall(node.client, blocks), blocks, node.client.label);
      },
      stop(): Promise<void> {
        return (stopping ??= backend.close().then(() => node.stop()));
      },
    };
  } catch (err) {
    await node.stop();
    throw err;
  }
}

async function waitReady(spec: LaunchSpec, client: RpcClient, exitStatus: () => string | undefined): Promise<void> {
  const deadline = Date.now() + spec.readyTimeoutMs;
  let delayMs = 20;
  for (;;) {
    try {
      await client.call(spec.readyMethod);
      return;
    } catch (err) {
      // Connection refused until the RPC server binds; bitcoind answers -28 while loading.
      if (exitStatus() !== undefined) throw err;
      if (Date.now() > deadline) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    delayMs = Math.min(delayMs * 2, 250);
  }
}

/** Asks the OS for a free port on 127.0.0.1. The node binds it moments later (see PORT_ATTEMPTS). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

/** Whether `port` on 127.0.0.1 can be bound right now. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** The watchdog exits only after the node, so this is a formality unless we had to SIGKILL. */
async function waitGone(pid: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/**
 * On exit we can only act synchronously: signal every live node and its watchdog. On SIGINT
 * and SIGTERM we do the same, then, if no one else handles the signal, re-raise it so the
 * process still dies the way it would have without us.
 */
function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const killAll = (onSignal: boolean): void => {
    for (const { watched, pid, stopOnSignal } of live) {
      if (onSignal && !stopOnSignal) continue;
      if (pid !== undefined) killQuietly(pid, 'SIGTERM');
      watched.watchdog.kill('SIGTERM');
    }
  };
  process.on('exit', () => killAll(false));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const handler = (): void => {
      killAll(true);
      if (process.listenerCount(signal) === 1) {
        process.removeListener(signal, handler);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, handler);
  }
}

/**
 * Launches `spec` and connects to it as a {@link RegtestNode}; a failed start removes the datadir
 * if the node owned it (a successful one removes it on stop).
 * @throws as {@link launchNode} and {@link connectLaunched}.
 */
export async function launchAndConnect(
  spec: LaunchSpec,
  options: { readonly miningAddress: string; readonly pollIntervalMs?: number },
  mineCall: NodeDetails['mineCall'],
): Promise<RegtestNode> {
  let launched: LaunchedNode;
  try {
    launched = await launchNode(spec);
  } catch (err) {
    if (spec.ownsDatadir) await fs.rm(spec.datadir, { recursive: true, force: true });
    throw err;
  }
  return connectLaunched(launched, {
    rpcUser: spec.rpcUser,
    rpcPass: spec.rpcPass,
    miningAddress: options.miningAddress,
    datadir: spec.datadir,
    ...(options.pollIntervalMs !== undefined ? { pollIntervalMs: options.pollIntervalMs } : {}),
    mineCall,
  });
}
