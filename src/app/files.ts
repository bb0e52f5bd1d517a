/**
 * Where paychan keeps things on disk, and the seed files that hold the keys at rest.
 *
 * Layout under `$PAYCHAN_HOME` (default `~/.paychan`): `regtest/` (the development node started by
 * `paychan regtest start`), `payee/` and `payer/` (each a data dir: a `seed`, one SQLite store
 * `payee.db`/`payer.db` and, while a process uses it, a `lock`; see data-dir.ts). Seeds are
 * 32 random bytes in hex, in files created with mode 0600 in directories created with 0700.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fromHex, toHex } from '../protocol/bytes.js';

export function paychanHome(): string {
  return process.env.PAYCHAN_HOME || path.join(os.homedir(), '.paychan');
}

/** Creates `dir` (and parents) private to this user if it does not exist. */
export function ensurePrivateDir(dir: string): string {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/**
 * Reads the secret at `file`, creating it (mode 0600, `fresh` random hex) if there is none.
 * @throws Error if the file is readable by others.
 */
function loadOrCreateSecret(file: string, freshBytes: number): string {
  ensurePrivateDir(path.dirname(file));
  try {
    fs.writeFileSync(file, `${toHex(randomBytes(freshBytes))}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const mode = fs.statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) throw new Error(`${file} is readable by other users (mode ${mode.toString(8)}); run: chmod 600 ${file}`);
  return fs.readFileSync(file, 'utf8').trim();
}

/**
 * Reads the seed at `file`, creating a fresh one (mode 0600) if there is none.
 * @throws Error if the file exists but is not a 32-byte hex seed, or is readable by others.
 */
export function loadOrCreateSeed(file: string): Uint8Array {
  const hex = loadOrCreateSecret(file, 32);
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${file} does not hold a 32-byte hex seed`);
  return fromHex(hex);
}

/** Where a payee keeps the token its admin routes require (`Authorization: Bearer <token>`). */
export function adminTokenFile(dataDir: string): string {
  return path.join(dataDir, 'admin-token');
}

/**
 * The payee's admin token, created (mode 0600) at first start.
 * @throws Error if the file is readable by others or holds fewer than 32 characters.
 */
export function loadOrCreateAdminToken(dataDir: string): string {
  const file = adminTokenFile(dataDir);
  const token = loadOrCreateSecret(file, 24);
  if (!/^\S{32,}$/.test(token)) throw new Error(`${file} must hold a token of at least 32 characters without spaces`);
  return token;
}

/**
 * This data dir's name among the instances sharing one store (their channel leases), created at
 * first use: stable across restarts (a restarted instance takes its own leases back at once),
 * different for every data dir (`<dir>/instance-id`, 16 random bytes in hex).
 */
export function loadOrCreateInstanceId(dataDir: string): string {
  return `paychan-${loadOrCreateSecret(path.join(dataDir, 'instance-id'), 16)}`;
}
