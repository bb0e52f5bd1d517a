/**
 * The SQLite store's durability off the event loop (src/store/wal-sync.ts): COMMIT writes the WAL
 * (`synchronous=NORMAL`), and a save resolves only after an fdatasync of the WAL that began after
 * its commit; saves committed while a sync runs wait for the next one; after a failed sync every
 * later save fails. fs.fdatasync is held back here so the test decides when a sync completes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openSqliteStore, type SqliteStore } from '../../src/store/index.js';
import { waitUntil } from '../helpers/wait.js';

const realFdatasync = fs.fdatasync.bind(fs);
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
let dir = '';
let store: SqliteStore | undefined;

function openTemp(): SqliteStore {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-walsync-'));
  store = openSqliteStore(path.join(dir, 'store.db'));
  return store;
}

afterEach(async () => {
  vi.restoreAllMocks();
  await store?.close().catch(() => undefined);
  store = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('the SQLite store syncs its WAL before a save resolves', () => {
  it('resolves a save only after its fdatasync, and a save committed meanwhile only after the next one', async () => {
    const s = openTemp();
    const held: (() => void)[] = [];
    const syncedFds: number[] = [];
    vi.spyOn(fs, 'fdatasync').mockImplementation(((fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => {
      syncedFds.push(fd);
      held.push(() => realFdatasync(fd, callback));
    }) as typeof fs.fdatasync);
    let firstDone = false;
    let secondDone = false;
    const first = s.putMeta('a', '1').then(() => (firstDone = true));
    await waitUntil(() => held.length === 1, 'the first commit to start its sync');
    const second = s.putMeta('b', '2').then(() => (secondDone = true));
    for (let i = 0; i < 3; i++) await turn(); // the second batch commits; its sync must wait
    expect([firstDone, secondDone, held.length]).toEqual([false, false, 1]);
    held[0]!();
    await first;
    expect(secondDone).toBe(false);
    await waitUntil(() => held.length === 2, 'the second sync to start');
    held[1]!();
    await second;
    // The descriptor synced is the WAL's.
    expect(fs.readlinkSync(`/proc/self/fd/${syncedFds[0]}`)).toBe(path.join(dir, 'store.db-wal'));
    vi.restoreAllMocks();
    await s.close();
    const reopened = (store = openSqliteStore(path.join(dir, 'store.db')));
    expect([await reopened.getMeta('a'), await reopened.getMeta('b')]).toEqual(['1', '2']);
  });

  it('fails a save whose sync fails, and every later one: the store must be reopened', async () => {
    const s = openTemp();
    vi.spyOn(fs, 'fdatasync').mockImplementation(((_fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => {
      setImmediate(() => callback(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })));
    }) as typeof fs.fdatasync);
    await expect(s.putMeta('a', '1')).rejects.toThrow(/SYNC_FAILED: the write-ahead log could not be made durable \(EIO/);
    vi.restoreAllMocks();
    await expect(s.putMeta('b', '2')).rejects.toThrow(/SYNC_FAILED/);
  });

  it("syncs the WAL SQLite writes when the database's path goes through a symlink", async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-walsync-'));
    fs.mkdirSync(path.join(dir, 'real'));
    fs.symlinkSync(path.join(dir, 'real'), path.join(dir, 'link'));
    const s = (store = openSqliteStore(path.join(dir, 'link', 'store.db')));
    const syncedFds: number[] = [];
    vi.spyOn(fs, 'fdatasync').mockImplementation(((fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => {
      syncedFds.push(fd);
      realFdatasync(fd, callback);
    }) as typeof fs.fdatasync);
    await s.putMeta('a', '1');
    expect(fs.readlinkSync(`/proc/self/fd/${syncedFds[0]}`)).toBe(path.join(fs.realpathSync(dir), 'real', 'store.db-wal'));
  });

  it('closes after the sync in flight: what was acknowledged is there after reopening', async () => {
    const s = openTemp();
    const saves = Array.from({ length: 50 }, (_, i) => s.putMeta(`k${i}`, String(i)));
    await s.close();
    await Promise.all(saves);
    const reopened = (store = openSqliteStore(path.join(dir, 'store.db')));
    expect(await reopened.getMeta('k49')).toBe('49');
  });
});
