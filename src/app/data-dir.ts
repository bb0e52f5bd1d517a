/**
 * A side's data dir opened for use: locked to this process, its seed, and its one store, which
 * holds everything the side persists (Spilman channels, duplex records, the one wallet's state).
 *
 * Why one store and one lock: a seed used to get two wallets, one kept in payer.db (Spilman
 * funding) and one in duplex.db (duplex funding), and each could select the same coin. Now the
 * payer dir's store holds the wallet both use, and the payee dir's store holds side B's. Two
 * processes on one data dir (`paychan payer pay` and a duplex command at once) would still each
 * hold a copy of that wallet in memory, so the second is refused: {@link DataDirInUseError}.
 *
 * A data dir written before this keeps duplex records and a wallet state in `duplex.db`; the
 * first open imports them into the store in one commit (see {@link importLegacyDuplexDb}) and
 * renames the old file `duplex.db.imported-<date>`, never deletes it.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { decodeDuplexState, type LegacyDuplexRecord } from '../protocol/duplex-state-legacy.js';
import { decodeState, encodeState } from '../store/codec.js';
import { openStore } from '../store/open-store.js';
import { WALLET_META_KEY, type Store } from '../store/store.js';
import type { WalletState } from '../wallet/state.js';
import { Wallet } from '../wallet/wallet.js';
import { ensurePrivateDir, loadOrCreateInstanceId, loadOrCreateSeed } from './files.js';

/** The lock file in a data dir: the pid of the process using it. */
export const LOCK_FILE = 'lock';
/** The file the duplex side kept its records and wallet in, before the one store. */
export const LEGACY_DUPLEX_DB = 'duplex.db';
/** Meta key set in the import's own commit: its value is the name the old file was renamed to. */
const META_LEGACY_IMPORT = 'imported:duplex.db';

/** Another process (or another open in this one) uses the data dir. */
export class DataDirInUseError extends Error {
  readonly code = 'DATA_DIR_IN_USE';
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(`data dir ${dir} in use by pid ${pid}${pid === process.pid ? ' (this process)' : ''}; stop it first`);
    this.name = 'DataDirInUseError';
  }
}

export interface DataDir {
  readonly dir: string;
  readonly seed: Uint8Array;
  readonly store: Store;
  /** Closes the store (committing pending saves), then releases the lock. */
  close(): Promise<void>;
}

export interface OpenDataDirOptions {
  /** The store's location (a file path, or a URL naming its adapter: src/store/open-store.ts); default `<dir>/<defaultDb>`. */
  readonly dbFile?: string;
  /** `payer.db` or `payee.db`. */
  readonly defaultDb: string;
  readonly log: (line: string) => void;
}

/**
 * Locks `dir` (creating it, private), reads or creates its seed, opens its store and imports an
 * old duplex.db into it if there is one.
 * @throws DataDirInUseError if a live process (this one included) holds the data dir.
 * @throws StoreError, Error from the store or the file system; the lock is released then.
 */
export async function openDataDir(dir: string, options: OpenDataDirOptions): Promise<DataDir> {
  ensurePrivateDir(dir);
  const unlock = lockDataDir(dir);
  let store: Store | undefined;
  try {
    const seed = loadOrCreateSeed(path.join(dir, 'seed'));
    const location = options.dbFile ?? path.join(dir, options.defaultDb);
    // Only a store several instances share needs the instance's name (its channel leases).
    store = openStore(location, /^postgres(ql)?:/i.test(location) ? { owner: loadOrCreateInstanceId(dir), log: options.log } : {});
    await importLegacyDuplexDb(dir, store, seed, options.log);
    const opened = store;
    let closing: Promise<void> | undefined;
    return {
      dir,
      seed,
      store: opened,
      close: () =>
        (closing ??= (async () => {
          try {
            await opened.close();
          } finally {
            unlock();
          }
        })()),
    };
  } catch (err) {
    await store?.close().catch(() => undefined);
    unlock();
    throw err;
  }
}

/** The wallet state kept in `store`, if any. */
export async function loadWalletState(store: Store): Promise<WalletState | undefined> {
  const saved = await store.getMeta(WALLET_META_KEY);
  return saved === undefined ? undefined : decodeState<WalletState>(saved);
}

/** Saves the wallet's state in `store` (durable on resolve). */
export function saveWalletState(store: Store, wallet: Wallet): Promise<void> {
  return store.putMeta(WALLET_META_KEY, encodeState(wallet.state()));
}

/**
 * Takes the data dir's lock: creates `<dir>/lock` holding this pid and, on Linux, which process
 * that pid is (the boot id and the process's start time), atomically (written aside, then linked
 * into place, so the file is never seen empty). A lock whose process is gone is taken over: its
 * pid is not alive, or (pids are reused: after a reboot, or a container's restarted pid 1) the
 * process now under that pid is another one.
 * @returns the function that releases the lock (idempotent).
 * @throws DataDirInUseError if a live process holds it.
 */
export function lockDataDir(dir: string): () => void {
  const file = path.join(dir, LOCK_FILE);
  const aside = `${file}.${process.pid}`;
  fs.writeFileSync(aside, `${process.pid} ${processIdentity(process.pid) ?? ''}\n`, { mode: 0o600 });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        fs.linkSync(aside, file);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = readLock(file);
      if (holder !== undefined && isAlive(holder.pid) && sameProcess(holder)) throw new DataDirInUseError(dir, holder.pid);
      // The holder died (or the file is not ours to read): take it over. Two processes taking
      // over one stale lock at the same instant is the one race left; they were started together
      // on a data dir whose last user was killed.
      if (attempt >= 2) throw new Error(`cannot take the lock ${file}`);
      fs.rmSync(file, { force: true });
    }
  } finally {
    fs.rmSync(aside, { force: true });
  }
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    if (readLock(file)?.pid === process.pid) fs.rmSync(file, { force: true });
  };
}

/** What a lock file says: the holder's pid, and which process that was (empty when unknown). */
function readLock(file: string): { pid: number; identity: string } | undefined {
  try {
    const [pidText = '', identity = ''] = fs.readFileSync(file, 'utf8').trim().split(/\s+/);
    const pid = Number(pidText);
    return Number.isSafeInteger(pid) && pid > 0 ? { pid, identity } : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the process now under the lock's pid is the one that wrote it (unknown: assume so). */
function sameProcess(holder: { pid: number; identity: string }): boolean {
  if (holder.identity === '') return true;
  const now = processIdentity(holder.pid);
  return now === undefined || now === holder.identity;
}

/**
 * Which process `pid` is, where the OS says (Linux): the boot id and the process's start time
 * in clock ticks since boot (field 22 of /proc/PID/stat, after the parenthesised command name).
 */
function processIdentity(pid: number): string | undefined {
  try {
    const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const startTicks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return boot && startTicks ? `${boot}:${startTicks}` : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

/**
 * Imports `<dir>/duplex.db`, as paychan wrote it before the one store, into `store`: its records
 * (in their order) and its wallet state, merged with the store's own wallet state if it has one,
 * in one commit. Then renames the file `duplex.db.imported-<date>` (with its -wal/-shm if any).
 * A crash between the commit and the rename is safe: the commit recorded the import, so the next
 * open only renames.
 *
 * Which wallet state wins when payer.db and duplex.db both hold one: neither, wholly. Both come
 * from one seed and the coins are on chain, so the newer sync's chain view is taken; but each
 * side's reservations (coins its channel funding holds) and unconfirmed spends are kept, and key
 * counters take the higher value (see `mergeWalletStates` in src/wallet/state.ts).
 * @returns how many records were imported (0 when there was nothing to import).
 */
export async function importLegacyDuplexDb(dir: string, store: Store, seed: Uint8Array, log: (line: string) => void): Promise<number> {
  const file = path.join(dir, LEGACY_DUPLEX_DB);
  if (!fs.existsSync(file)) return 0;
  const done = await store.getMeta(META_LEGACY_IMPORT);
  if (done !== undefined) {
    renameLegacy(file, done);
    return 0;
  }
  const legacy = readLegacyDuplexDb(file);
  const ours = await loadWalletState(store);
  const wallet = ours && legacy.wallet ? Wallet.mergeStates(seed, ours, legacy.wallet) : (legacy.wallet ?? ours);
  const target = `${file}.imported-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  const meta = new Map([[META_LEGACY_IMPORT, path.basename(target)]]);
  if (wallet) meta.set(WALLET_META_KEY, encodeState(wallet));
  // Stored as the tagged states they stand for (a corrupt record fails the import, whole).
  await store.saveDuplexRecords(legacy.records.map((r) => decodeDuplexState(r)), meta);
  renameLegacy(file, path.basename(target));
  log(`imported ${legacy.records.length} duplex record(s)${legacy.wallet ? (ours ? ' and merged its wallet state' : ' and its wallet state') : ''} from ${file}; kept it as ${target}`);
  return legacy.records.length;
}

/** What an old duplex.db holds: its records in save order and its wallet state. */
function readLegacyDuplexDb(file: string): { records: LegacyDuplexRecord[]; wallet: WalletState | undefined } {
  // Read-write, so SQLite recovers a WAL left by a killed process; closing checkpoints it.
  const db = new Database(file, { fileMustExist: true, timeout: 0 });
  try {
    // An older paychan still running on this data dir (it took no lock) would keep writing
    // newer states into the file after its import: leaving WAL mode needs every other
    // connection gone, so it is the check (and it checkpoints the WAL into the file).
    try {
      db.pragma('journal_mode = DELETE');
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
      throw new Error(`${file} is open in another process (an older paychan still running on this data dir?): stop it, then start again to import it`);
    }
    const tables = new Set(db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all() as string[]);
    const records = tables.has('duplex_channels') ? (db.prepare('SELECT record FROM duplex_channels ORDER BY rowid').pluck().all() as string[]).map((r) => decodeState<LegacyDuplexRecord>(r)) : [];
    const saved = tables.has('duplex_meta') ? (db.prepare('SELECT value FROM duplex_meta WHERE key = ?').pluck().get(WALLET_META_KEY) as string | undefined) : undefined;
    return { records, wallet: saved === undefined ? undefined : decodeState<WalletState>(saved) };
  } finally {
    db.close();
  }
}

function renameLegacy(file: string, targetName: string): void {
  const target = path.join(path.dirname(file), targetName);
  for (const suffix of ['-wal', '-shm']) if (fs.existsSync(file + suffix)) fs.renameSync(file + suffix, target + suffix);
  fs.renameSync(file, target);
  try {
    const fd = fs.openSync(path.dirname(file), 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Not every platform can fsync a directory; the import itself is committed either way.
  }
}
