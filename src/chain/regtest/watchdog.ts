/**
 * Starts a node binary under a tiny watchdog process so the node never outlives us.
 *
 * The problem: a test worker that crashes, or is SIGKILLed by its runner, runs no exit handlers,
 * and a btcd it started would keep running (and keep its temp datadir) forever. Linux's
 * PR_SET_PDEATHSIG is not reachable from Node and does not exist elsewhere, and polling our pid
 * from the node is impossible (btcd has no such option). So we put a small Node process between
 * us and the node: its stdin is a pipe from us, and the kernel closes that pipe when we die, for
 * whatever reason. On end-of-file the watchdog stops the node (SIGTERM, then SIGKILL after a
 * grace period), deletes the temp datadir if asked to, and exits. It also forwards SIGTERM and
 * SIGINT, and exits with the node's status when the node exits by itself, so to the caller the
 * watchdog behaves like the node. The node's own pid arrives on the watchdog's fd 3, so callers
 * can check that the node itself, not just the watchdog, is gone.
 *
 * The watchdog's script is inline source run with `node -e`, so it works the same from the
 * TypeScript sources (tsx) and from the compiled `dist/`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';

/** What {@link spawnWatched} starts. */
export interface WatchedSpawnOptions {
  readonly command: string;
  readonly args: readonly string[];
  /** Deleted (recursively) by the watchdog once the node has exited, if we died first. */
  readonly cleanupDirOnOrphan?: string;
  /** Between SIGTERM and SIGKILL when the watchdog stops the node itself; default 5000 ms. */
  readonly graceMs?: number;
}

/** A node running under a watchdog. */
export interface WatchedProcess {
  /** The watchdog; signal it to stop the node. It exits only after the node has. */
  readonly watchdog: ChildProcess;
  /** The node's pid, once the watchdog has spawned it. */
  readonly nodePid: Promise<number>;
  /** The node's stdout and stderr, interleaved (the node's log often goes here too). */
  readonly output: Readable[];
}

const WATCHDOG_SOURCE = `
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const { command, args, cleanupDir, graceMs } = JSON.parse(process.argv[1]);
const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'] });
let orphaned = false;
let killTimer;
function stop() {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  killTimer = killTimer || setTimeout(() => child.kill('SIGKILL'), graceMs);
}
child.on('spawn', () => { try { fs.writeSync(3, child.pid + '\\n'); } catch {} });
child.on('error', (err) => { process.stderr.write('watchdog: cannot start ' + command + ': ' + err.message + '\\n'); process.exit(127); });
child.on('exit', (code, signal) => {
  clearTimeout(killTimer);
  if (orphaned && cleanupDir) { try { fs.rmSync(cleanupDir, { recursive: true, force: true }); } catch {} }
  process.exit(code !== null ? code : 128 + (require('node:os').constants.signals[signal] || 0));
});
process.stdin.on('end', () => { orphaned = true; stop(); });
process.stdin.on('error', () => { orphaned = true; stop(); });
process.stdin.resume();
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, stop);
`;

/**
 * Spawns `command` under a watchdog that stops it when this process dies.
 * @returns the watchdog process and the node's pid (as a promise).
 */
export function spawnWatched(options: WatchedSpawnOptions): WatchedProcess {
  const config = JSON.stringify({
    command: options.command,
    args: options.args,
    cleanupDir: options.cleanupDirOnOrphan ?? null,
    graceMs: options.graceMs ?? 5000,
  });
  const watchdog = spawn(process.execPath, ['-e', WATCHDOG_SOURCE, config], {
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    // Our NODE_OPTIONS may load test tooling or open an inspector port; the watchdog needs neither.
    env: { ...process.env, NODE_OPTIONS: undefined },
  });
  const pidPipe = watchdog.stdio[3] as Readable;
  const nodePid = new Promise<number>((resolve, reject) => {
    let text = '';
    pidPipe.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const pid = Number.parseInt(text, 10);
      if (text.includes('\n') && Number.isInteger(pid)) resolve(pid);
    });
    pidPipe.on('error', () => {});
    pidPipe.on('close', () => reject(new Error(`${options.command} did not start`)));
    watchdog.on('error', reject);
  });
  nodePid.catch(() => {}); // observed by callers that care; never an unhandled rejection
  return { watchdog, nodePid, output: [watchdog.stdout as Readable, watchdog.stderr as Readable] };
}
