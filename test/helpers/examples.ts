/** Runs a program of examples/ with node, as a user does. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

/** Runs `node examples/<file>` until it exits (the client) or prints `ready` (a seller). */
export function runExample(file: string, args: string[], environment: NodeJS.ProcessEnv, ready?: RegExp, cwd = process.cwd()): Promise<{ child: ChildProcess; code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(cwd, 'examples', file), ...args], { cwd, env: environment, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let started = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`examples/${file} timed out:\n${output}`));
    }, 180_000);
    const onData = (c: Buffer) => {
      output += c.toString();
      if (ready && !started && ready.test(output)) {
        started = true;
        clearTimeout(timer);
        resolve({ child, code: null, output });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (started) return;
      if (ready) reject(new Error(`examples/${file} exited ${code}:\n${output}`));
      else resolve({ child, code, output });
    });
  });
}

