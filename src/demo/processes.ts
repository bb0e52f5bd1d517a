/**
 * Running `paychan` commands as child processes for the demo: each prints one JSON line last on
 * stdout (with --json); progress goes to stderr and is relayed, prefixed, to our log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'paychan.js');

function relay(stream: NodeJS.ReadableStream, prefix: string, log: (l: string) => void): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.trim()) log(`${prefix}${line}`);
    }
  });
}

/** Runs `paychan ...args --json` to completion. @returns its JSON result and its pid. */
export function runPaychan(args: string[], log: (l: string) => void, env: NodeJS.ProcessEnv = process.env): Promise<{ result: Record<string, unknown>; pid: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => (out += c));
    relay(child.stderr, `  [pid ${child.pid}] `, log);
    child.on('error', reject);
    child.on('exit', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`paychan ${args[0]} ${args[1] ?? ''} exited with ${code}`));
      try {
        resolve({ result: JSON.parse(last) as Record<string, unknown>, pid: child.pid! });
      } catch {
        reject(new Error(`paychan ${args.join(' ')} printed no JSON: ${last}`));
      }
    });
  });
}

/** Starts a long-running `paychan ...args --json` and resolves with its first JSON line. */
export function startPaychan(args: string[], log: (l: string) => void, env: NodeJS.ProcessEnv = process.env): Promise<{ child: ChildProcess; ready: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env });
    relay(child.stderr, `  [pid ${child.pid}] `, log);
    let out = '';
    let ready = false;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => {
      out += c;
      const i = out.indexOf('\n');
      if (!ready && i >= 0) {
        ready = true;
        try {
          resolve({ child, ready: JSON.parse(out.slice(0, i)) as Record<string, unknown> });
        } catch (err) {
          reject(err as Error);
        }
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (!ready) reject(new Error(`paychan ${args.join(' ')} exited with ${code} before it was ready`));
    });
  });
}

/** SIGTERM, then wait for the exit. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
