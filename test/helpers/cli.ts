/**
 * Runs the built `paychan` command (bin/paychan.js → dist/) as a child process, the way a user
 * does, with its own PAYCHAN_HOME.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const BIN = path.resolve('bin/paychan.js');

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The last stdout line parsed as JSON, if it is JSON. */
  readonly json: Record<string, unknown> | undefined;
}

/** Splits a README command line (`npx paychan payer pay 10 --count 100`) into arguments. */
export function argsOf(commandLine: string): string[] {
  const words = commandLine.trim().split(/\s+/);
  if (words[0] !== 'npx' || words[1] !== 'paychan') throw new Error(`not a paychan command: ${commandLine}`);
  return words.slice(2);
}

export function runCli(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 120_000, onSpawn?: (child: ChildProcess) => void): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    onSpawn?.(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const last = stdout.trim().split('\n').pop() ?? '';
      let json: Record<string, unknown> | undefined;
      try {
        json = JSON.parse(last) as Record<string, unknown>;
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr, json });
    });
  });
}

/** Starts a long-running command; resolves once a stdout line matches `ready`. */
export function startCli(args: string[], env: NodeJS.ProcessEnv, ready: RegExp, timeoutMs = 60_000): Promise<{ child: ChildProcess; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let done = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out waiting for ${ready} from paychan ${args.join(' ')}:\n${out}`));
    }, timeoutMs);
    const onData = (c: Buffer) => {
      out += c.toString();
      if (!done && ready.test(out)) {
        done = true;
        clearTimeout(timer);
        resolve({ child, output: () => out });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      if (!done) {
        clearTimeout(timer);
        reject(new Error(`paychan ${args.join(' ')} exited with ${code}:\n${out}`));
      }
    });
  });
}

export async function stopCli(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await exited;
}

/**
 * Awaits `run` while `mine` is called every 300 ms (a block each time, the README's "in terminal
 * 1: mine"), until `run` settles. A failing `mine` fails the call.
 */
export async function withMining<T>(run: Promise<T>, mine: () => Promise<unknown>): Promise<T> {
  let done = false;
  const miner = (async () => {
    while (!done) {
      await new Promise((r) => setTimeout(r, 300));
      if (!done) await mine();
    }
  })();
  try {
    return await run;
  } finally {
    done = true;
    await miner;
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/**
 * Ends a CLI test's world: the payee process (if one was started), the regtest node of its
 * PAYCHAN_HOME, and the home folder itself.
 */
export async function tearDownCliHome(home: string, env: NodeJS.ProcessEnv, payee?: { child: ChildProcess }): Promise<void> {
  if (payee) await stopCli(payee.child);
  await runCli(['regtest', 'stop'], env);
  fs.rmSync(home, { recursive: true, force: true });
}
