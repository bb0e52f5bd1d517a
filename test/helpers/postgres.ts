/**
 * A throwaway PostgreSQL server for tests, benches and the crash harness: Debian's binaries,
 * a fresh cluster in a temp dir, listening on 127.0.0.1 on a free port (and a Unix socket in that
 * dir), trust authentication, stopped and deleted at the end.
 *
 * Why a server per test file rather than one shared: test files run in parallel and each owns
 * its server's lifetime; an initdb costs ~1-2 s. Each contract run gets a fresh database
 * (`createDatabase`), which costs milliseconds.
 *
 * Root: `initdb` and `postgres` refuse to run as root (FACTS.md), so as root both run as the
 * `postgres` user (via `setpriv`, which execs: the pid we hold is the server's) in a dir chowned
 * to it. The server runs under the regtest node's watchdog (src/chain/regtest/watchdog.ts): if
 * this process dies, even by SIGKILL, the watchdog stops the server and deletes the dir; an exit
 * handler stops it on a normal exit too.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawnWatched, type WatchedProcess } from '../../src/chain/regtest/watchdog.js';

export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` (trust auth: no password). */
  readonly url: string;
  readonly port: number;
  /** The server's pid (the postmaster): tests pause or kill it through this. */
  readonly pid: number;
  /** Creates a fresh, empty database and returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /** Runs one SQL statement as the superuser (through `pg`) in `database` (a URL; default the `postgres` one), returning its rows. */
  query<R = Record<string, unknown>>(sql: string, params?: unknown[], database?: string): Promise<R[]>;
  /** Stops the server (fast shutdown) and deletes its dir. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Where Debian put PostgreSQL's binaries (the newest major installed), or undefined when none
 * is: callers skip with that reason. Never a hard-coded version.
 */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  let majors: string[];
  try {
    majors = fs.readdirSync(root).filter((d) => /^\d+$/.test(d));
  } catch {
    return undefined;
  }
  majors.sort((a, b) => Number(b) - Number(a));
  for (const major of majors) {
    const bin = path.join(root, major, 'bin');
    if (fs.existsSync(path.join(bin, 'initdb')) && fs.existsSync(path.join(bin, 'postgres'))) return bin;
  }
  return undefined;
}

/** Why PostgreSQL tests are skipped here, or undefined when they can run. */
export const POSTGRES_UNAVAILABLE: string | undefined = postgresBinDir() === undefined ? 'no PostgreSQL binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)' : undefined;

const live = new Set<{ watched: WatchedProcess; pid: number }>();
let exitHandlerInstalled = false;

/**
 * Starts a server. @throws Error with initdb's or the server's output if it cannot start.
 */
export async function startPostgres(): Promise<PostgresServer> {
  const bin = postgresBinDir();
  if (!bin) throw new Error(POSTGRES_UNAVAILABLE);
  const asRoot = process.getuid?.() === 0;
  const ids = asRoot ? { uid: idOf('-u'), gid: idOf('-g') } : undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-pg-'));
  const data = path.join(dir, 'data');
  try {
    if (ids) fs.chownSync(dir, ids.uid, ids.gid);
    execFileSync(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'], { stdio: 'pipe', ...(ids ?? {}) });
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    const out = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`initdb failed: ${out || String(err)}`);
  }
  installExitHandler();
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    try {
      return await launch(bin, dir, data, port, ids);
    } catch (err) {
      // Another process may have taken the port between freePort and the server's bind.
      if (attempt >= 3 || !/could not (bind|create listen)/i.test(String(err))) {
        fs.rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }
}

async function launch(bin: string, dir: string, data: string, port: number, ids: { uid: number; gid: number } | undefined): Promise<PostgresServer> {
  const serverArgs = [
    '-D', data, '-p', String(port), '-k', dir,
    '-c', 'listen_addresses=127.0.0.1',
    '-c', 'max_connections=300',
    // Durability as in production: fsync and synchronous_commit stay on (the store's contract).
    '-c', 'fsync=on', '-c', 'synchronous_commit=on',
    '-c', 'log_min_messages=warning',
  ];
  const watched = spawnWatched(
    ids
      ? { command: 'setpriv', args: [`--reuid=${ids.uid}`, `--regid=${ids.gid}`, '--clear-groups', '--', path.join(bin, 'postgres'), ...serverArgs], cleanupDirOnOrphan: dir, graceMs: 3000 }
      : { command: path.join(bin, 'postgres'), args: serverArgs, cleanupDirOnOrphan: dir, graceMs: 3000 },
  );
  let tail = '';
  for (const s of watched.output) s.on('data', (c: Buffer) => void (tail = (tail + c.toString()).slice(-4000)));
  let exited: string | undefined;
  const closed = new Promise<void>((resolve) => watched.watchdog.once('close', (code, signal) => ((exited = signal ?? `exit ${code}`), resolve())));
  const pid = await watched.nodePid;
  const entry = { watched, pid };
  live.add(entry);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const pg = await loadPg();
  // Ready when a connection is accepted (the server takes a moment to recover/start).
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited !== undefined) {
      live.delete(entry);
      throw new Error(`postgres exited (${exited}): ${tail}`);
    }
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.end();
      break;
    } catch {
      await client.end().catch(() => undefined);
      if (Date.now() > deadline) throw new Error(`postgres did not accept connections within 30 s: ${tail}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  let databases = 0;
  let stopping: Promise<void> | undefined;
  const query = async <R>(sql: string, params?: unknown[], database = url): Promise<R[]> => {
    const target = new URL(database);
    target.search = ''; // our own parameters (paychan_lease_ms) are no business of the driver's
    const client = new pg.Client({ connectionString: target.toString() });
    await client.connect();
    try {
      return (await client.query(sql, params)).rows as R[];
    } finally {
      await client.end();
    }
  };
  return {
    url,
    port,
    pid,
    query,
    async createDatabase(name = `t${process.pid}_${++databases}_${Date.now() % 1_000_000}`) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new RangeError(`bad database name ${name}`);
      await query(`CREATE DATABASE ${name}`);
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    stop: () =>
      (stopping ??= (async () => {
        if (exited === undefined) {
          // SIGINT is PostgreSQL's fast shutdown: it does not wait for clients to disconnect.
          try {
            process.kill(pid, 'SIGCONT'); // a test may have paused it
            process.kill(pid, 'SIGINT');
          } catch {
            // already gone
          }
          const timer = setTimeout(() => watched.watchdog.kill('SIGKILL'), 10_000);
          await closed;
          clearTimeout(timer);
        }
        live.delete(entry);
        fs.rmSync(dir, { recursive: true, force: true });
      })()),
  };
}

/** The `pg` driver (a dev dependency here; an optional peer of the package). */
async function loadPg(): Promise<typeof import('pg').default> {
  return (await import('pg')).default;
}

function idOf(flag: '-u' | '-g'): number {
  return Number.parseInt(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim(), 10);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** On a normal exit only synchronous work is possible: signal every live server (fast shutdown). */
function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  process.on('exit', () => {
    for (const { pid } of live) {
      try {
        process.kill(pid, 'SIGCONT');
        process.kill(pid, 'SIGINT');
      } catch {
        // gone
      }
    }
  });
}
