/**
 * Makes committed SQLite WAL frames durable off the event loop.
 *
 * Why: with `synchronous=FULL` SQLite fsyncs the WAL inside COMMIT, and better-sqlite3 commits
 * synchronously, so every commit blocked the event loop for one fsync (~0.1–0.4 ms here, far more
 * on a busy disk): payments and requests arriving meanwhile waited, and in front of an upstream
 * (`paychan proxy`) so did every answer coming back. With `synchronous=NORMAL` in WAL mode,
 * COMMIT only writes the frames (page cache); this class then runs `fdatasync` on the WAL file in
 * libuv's thread pool and resolves the batches committed before it started. Measured on the proxy
 * bench (docs/proxy.md) and the end-to-end bench (docs/design.md).
 *
 * Why it is as durable as FULL for everything acknowledged: a batch's promise resolves only after
 * an fdatasync of the WAL that began after its COMMIT returned, so its frames (and every earlier
 * frame: one file, written in order) are on stable storage; recovery replays the WAL up to the
 * first frame whose checksum fails, so a later frame lost in a power cut never hides an earlier
 * one. What NORMAL leaves to SQLite is synced by SQLite itself: the WAL before a checkpoint, the
 * database after it, the WAL header when the WAL is reused. A commit whose sync has not finished
 * is written but not acknowledged: after a crash it may be there or not, as any unacknowledged
 * save. The WAL file lives as long as the store's connection (SQLite deletes it only when the last
 * connection closes, and {@link close} runs first), so the descriptor always names it.
 *
 * One fdatasync at a time: the batches committed while one runs wait for the next, which covers
 * them all (group commit again, now across the thread boundary).
 *
 * After a failed fdatasync nothing written since can be trusted to reach the disk (Linux may drop
 * the dirty pages and report the error once): that batch and every later one fail with
 * `SYNC_FAILED` (written, durability unknown), and the store must be reopened.
 *
 * The WAL is named after the database's real path (symlinks resolved, as SQLite names it) and
 * opened when the store opens, so a store never syncs a file SQLite does not write.
 */
import fs from 'node:fs';
import { StoreError } from './store-error.js';

/** What waits for durability: a batch's settlement. */
export interface DurabilityWaiter {
  resolve(): void;
  reject(err: Error): void;
}

export class WalSync {
  private fd: number;
  private syncing = false;
  private waiting: DurabilityWaiter[] = [];
  private broken: StoreError | null = null;
  private idleWaiters: (() => void)[] = [];

  /**
   * @param databaseFile the database's path; its WAL is `realpath(databaseFile)-wal`, which SQLite
   *   has created by the time the store is open (WAL mode is set and the schema read).
   * @param onBroken told once, when a sync fails.
   * @throws StoreError NOT_DURABLE if the WAL cannot be opened.
   */
  constructor(databaseFile: string, private readonly onBroken: (err: StoreError) => void = () => undefined) {
    const walPath = `${fs.realpathSync(databaseFile)}-wal`;
    try {
      // Read-write: Windows flushes a file only through a handle with write access.
      this.fd = fs.openSync(walPath, 'r+');
    } catch (err) {
      throw new StoreError('NOT_DURABLE', `cannot open the write-ahead log ${walPath}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Settles `waiter` once everything committed to the WAL before this call is on stable storage. */
  after(waiter: DurabilityWaiter): void {
    if (this.broken) return waiter.reject(this.broken);
    this.waiting.push(waiter);
    if (!this.syncing) this.start();
  }

  /** Resolves when no fdatasync is running or waiting. */
  idle(): Promise<void> {
    if (!this.syncing) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Closes the WAL's descriptor; call after {@link idle}, before the database closes. */
  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  private start(): void {
    const batch = this.waiting;
    this.waiting = [];
    this.syncing = true;
    fs.fdatasync(this.fd, (err) => this.done(batch, err));
  }

  private done(batch: DurabilityWaiter[], err: Error | null): void {
    this.syncing = false;
    if (err && !this.broken) {
      this.broken = new StoreError('SYNC_FAILED', `the write-ahead log could not be made durable (${err.message}); reopen the store`, { cause: err });
      this.onBroken(this.broken);
    }
    for (const waiter of batch) {
      if (this.broken) waiter.reject(this.broken);
      else waiter.resolve();
    }
    if (this.waiting.length > 0) {
      if (this.broken) for (const waiter of this.waiting.splice(0)) waiter.reject(this.broken);
      else return this.start();
    }
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
