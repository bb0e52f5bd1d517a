/**
 * The {@link Store} port on SQLite (better-sqlite3), with group commit.
 *
 * Why group commit: every durable commit costs an fsync, and one fsync per payment would cap a
 * payee at a few hundred payments a second on a real disk. So a save only stages its row in
 * memory; one transaction, scheduled with `setImmediate`, writes everything staged in that
 * event-loop turn, and all their promises resolve once the WAL holding it is on stable storage
 * (durable on resolve). The fsync runs off the event loop (`synchronous=NORMAL` plus the store's
 * own fdatasync of the WAL in libuv's thread pool, one at a time: wal-sync.ts says why that is as
 * durable as FULL), so the loop verifies and answers meanwhile; saves made while a sync runs share
 * the next one, which makes batches grow with load by themselves. `groupCommitMaxDelayMs` can hold
 * a batch open longer (trading latency for fewer commits). Batches commit and resolve strictly in
 * order, which gives the port's ordering rule: a save is never durable before an earlier one.
 *
 * States are encoded when saved, not when committed: the row then holds the value as it was at
 * the call, and a state that cannot be encoded fails its own save instead of its whole batch.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { decodeState } from './codec.js';
import { migrate } from './migrations.js';
import { checkChannelState, checkMeta, checkPayment, checkTempId, encodeChecked, encodeDuplexSave } from './checks.js';
import { closedError, StoreError } from './store-error.js';
import { WalSync } from './wal-sync.js';
import { decodeDuplexState } from '../protocol/duplex-state-legacy.js';
import type { PayeeState } from '../protocol/payee-machine.js';
import type { PayerState } from '../protocol/payer-machine.js';
import { withNewestPayment, withNewestSignedPayment, type Store, type StoredDuplexRecord, type StoredPayeeChannel, type StoredPayerChannel } from './store.js';

export { isStoreError, STORE_ERROR_CODES, StoreError, type StoreErrorCode } from './store-error.js';

export interface SqliteStoreOptions {
  /**
   * How long a batch stays open for more saves after its first one, in ms. 0 (the default)
   * commits in the next turn of the event loop.
   */
  readonly groupCommitMaxDelayMs?: number;
  /**
   * How long a commit waits for another connection's lock (an operator's `sqlite3` shell), in
   * ms; default 5000. better-sqlite3 waits synchronously, blocking the event loop meanwhile.
   */
  readonly busyTimeoutMs?: number;
  /** Receives one line per notable event (schema upgrade, failed commit, loose permissions). */
  readonly log?: (line: string) => void;
}

/** Counters of what the store did since it was opened. */
export interface SqliteStoreStats {
  /** Save, putMeta and nextCounter calls accepted. */
  readonly requests: number;
  /** Transactions committed (one fsync each). */
  readonly commits: number;
  /** Rows written by those commits (saves of one key in one batch count once). */
  readonly rows: number;
  readonly failedCommits: number;
}

/** The connection settings the durability contract rests on, as SQLite reports them. */
export interface SqlitePragmas {
  /** `wal` (`memory` for `:memory:`). */
  readonly journalMode: string;
  /** 1 is NORMAL: the store syncs the WAL itself before a save resolves (wal-sync.ts). */
  readonly synchronous: number;
  readonly foreignKeys: boolean;
  readonly busyTimeoutMs: number;
}

/** A channel row as staged: the encoded state and the columns derived from it. */
interface ChannelRow {
  readonly state: string;
  readonly stateType: string;
  readonly channelId: string | null;
  readonly amountSat: string | null;
}

/** A duplex record as staged: its encoding and its channel id column. */
interface DuplexRow {
  readonly record: string;
  readonly channelId: string | null;
}

/** Everything staged for one transaction; `done` settles after it commits or fails. */
class Batch {
  readonly payee = new Map<string, ChannelRow>();
  /** Newest write per duplex record: a row to upsert, or null for a delete. */
  readonly duplex = new Map<string, DuplexRow | null>();
  readonly payer = new Map<string, ChannelRow>();
  /** Newest payment per payee channel in this batch: total (decimal) and signature. */
  readonly payments = new Map<string, { total: string; signature: Uint8Array }>();
  readonly payerPayments = new Map<string, { total: string; signature: Uint8Array }>();
  readonly meta = new Map<string, string>();
  /** Counter names, one per nextCounter call, in call order; values are set by the commit. */
  readonly counters: string[] = [];
  counterValues: number[] = [];
  readonly done: Promise<void>;
  resolve!: () => void;
  reject!: (err: Error) => void;

  constructor() {
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // Each caller awaits its own promise chained on this one (see stage).
    this.done.catch(noop);
  }

  get rows(): number {
    return this.payee.size + this.payer.size + this.duplex.size + this.payments.size + this.payerPayments.size + this.meta.size + this.counters.length;
  }
}

interface PaymentRow {
  readonly temp_id: string;
  readonly total_sat: string;
  readonly signature: Uint8Array;
}

function paymentsOf(rows: readonly PaymentRow[]): Map<string, { totalSat: bigint; signature: Uint8Array }> {
  return new Map(rows.map((p) => [p.temp_id, { totalSat: BigInt(p.total_sat), signature: Uint8Array.from(p.signature) }]));
}

const SQL = {
  // The subquery gives a new row the next first-save position; ON CONFLICT leaves seq alone.
  upsertPayee: `INSERT INTO payee_channels (temp_id, seq, state, updated_at, channel_id, state_type, paid_sat)
    VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM payee_channels), ?, ?, ?, ?, ?)
    ON CONFLICT (temp_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at,
      channel_id = excluded.channel_id, state_type = excluded.state_type, paid_sat = excluded.paid_sat`,
  upsertPayer: `INSERT INTO payer_channels (temp_id, seq, state, updated_at, channel_id, state_type, acked_sat)
    VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM payer_channels), ?, ?, ?, ?, ?)
    ON CONFLICT (temp_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at,
      channel_id = excluded.channel_id, state_type = excluded.state_type, acked_sat = excluded.acked_sat`,
  upsertPayment: `INSERT INTO payee_payments (temp_id, total_sat, signature) VALUES (?, ?, ?)
    ON CONFLICT (temp_id) DO UPDATE SET total_sat = excluded.total_sat, signature = excluded.signature`,
  loadPayments: 'SELECT temp_id, total_sat, signature FROM payee_payments',
  upsertPayerPayment: `INSERT INTO payer_payments (temp_id, total_sat, signature) VALUES (?, ?, ?)
    ON CONFLICT (temp_id) DO UPDATE SET total_sat = excluded.total_sat, signature = excluded.signature`,
  loadPayerPayments: 'SELECT temp_id, total_sat, signature FROM payer_payments',
  upsertMeta: 'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
  nextCounter: `INSERT INTO counters (name, next) VALUES (?, 1)
    ON CONFLICT (name) DO UPDATE SET next = next + 1 RETURNING next - 1 AS value`,
  upsertDuplex: `INSERT INTO duplex_records (temp_id, seq, record, updated_at, channel_id)
    VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM duplex_records), ?, ?, ?)
    ON CONFLICT (temp_id) DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at, channel_id = excluded.channel_id`,
  deleteDuplex: 'DELETE FROM duplex_records WHERE temp_id = ?',
  loadDuplex: 'SELECT temp_id, record FROM duplex_records ORDER BY seq',
  loadPayee: 'SELECT temp_id, state FROM payee_channels ORDER BY seq',
  hasPayee: 'SELECT 1 FROM payee_channels WHERE temp_id = ?',
  loadPayer: 'SELECT temp_id, state FROM payer_channels ORDER BY seq',
  getMeta: 'SELECT value FROM meta WHERE key = ?',
} as const;

type Statements = { readonly [K in keyof typeof SQL]: BetterSqlite3Statement };
type BetterSqlite3Statement = Database.Statement<unknown[], unknown>;

interface Settings {
  readonly groupCommitMaxDelayMs: number;
  readonly busyTimeoutMs: number;
  readonly log: (line: string) => void;
}

/**
 * Opens (creating if needed) the store at `file`, or an in-memory one for `':memory:'`.
 * See {@link SqliteStore.open}.
 */
export function openSqliteStore(file: string, options: SqliteStoreOptions = {}): SqliteStore {
  return SqliteStore.open(file, options);
}

/** The SQLite adapter of the {@link Store} port; one instance should own a database file. */
export class SqliteStore implements Store {
  private batch: Batch | null = null;
  private cancelFlush: (() => void) | null = null;
  private closing: Promise<void> | null = null;
  private readonly counts = { requests: 0, commits: 0, rows: 0, failedCommits: 0 };
  private readonly stmts: Statements;
  private readonly commitBatch: (batch: Batch, now: number) => void;
  /** Makes each committed batch durable off the event loop; null for `:memory:`. */
  private readonly walSync: WalSync | null;

  /**
   * Opens the database at `file`: creates it with mode 0600 if missing (and fsyncs its
   * directory, so the new file itself survives a power cut), sets WAL, `synchronous=NORMAL` (the
   * store fsyncs the WAL itself: wal-sync.ts), `foreign_keys=ON` and the busy timeout, and
   * applies the schema migrations.
   * @throws TypeError / RangeError for a bad path or option.
   * @throws StoreError `SCHEMA_TOO_NEW` if a newer paychan wrote the database; `NOT_DURABLE` if
   *   SQLite refuses WAL there (e.g. a network filesystem).
   * @throws Error from the file system or SQLite (unreadable file, not a database).
   */
  static open(file: string, options: SqliteStoreOptions = {}): SqliteStore {
    if (typeof file !== 'string' || file === '') throw new TypeError('openSqliteStore: file must be a path or ":memory:"');
    const settings = checkOptions(options);
    const inMemory = file === ':memory:';
    if (!inMemory) createPrivateFile(file, settings.log);
    const db = new Database(file);
    try {
      configure(db, inMemory, settings.busyTimeoutMs);
      const outcome = migrate(db);
      if (outcome.type === 'too-new') {
        throw new StoreError('SCHEMA_TOO_NEW', `${file} has schema version ${outcome.found}; this paychan knows up to ${outcome.known}`);
      }
      if (outcome.from !== outcome.to) settings.log(`store ${file}: schema version ${outcome.from} -> ${outcome.to}`);
      if (!inMemory) tightenSidecarFiles(file, settings.log);
      return new SqliteStore(db, settings);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  private constructor(
    private readonly db: Database.Database,
    private readonly settings: Settings,
  ) {
    this.walSync = db.memory ? null : new WalSync(db.name, (err) => settings.log(`store: ${err.message}`));
    this.stmts = Object.fromEntries(Object.entries(SQL).map(([name, sql]) => [name, db.prepare(sql)])) as Statements;
    const s = this.stmts;
    this.commitBatch = db.transaction((batch: Batch, now: number) => {
      for (const [tempId, r] of batch.payee) s.upsertPayee.run(tempId, r.state, now, r.channelId, r.stateType, r.amountSat);
      // forEach, not for-of: no entry array and iterator result per payment (one closure a batch).
      batch.payments.forEach((p, tempId) => s.upsertPayment.run(tempId, p.total, p.signature));
      batch.payerPayments.forEach((p, tempId) => s.upsertPayerPayment.run(tempId, p.total, p.signature));
      for (const [tempId, r] of batch.payer) s.upsertPayer.run(tempId, r.state, now, r.channelId, r.stateType, r.amountSat);
      for (const [tempId, r] of batch.duplex) {
        if (r) s.upsertDuplex.run(tempId, r.record, now, r.channelId);
        else s.deleteDuplex.run(tempId);
      }
      for (const [key, value] of batch.meta) s.upsertMeta.run(key, value);
      batch.counterValues = batch.counters.map((name) => (s.nextCounter.get(name) as { value: number }).value);
    }).immediate; // IMMEDIATE: take the write lock at BEGIN, so a busy database fails before any work
  }

  /** Every payee channel, in first-save order; waits for saves already made to commit first. */
  async loadPayeeChannels(): Promise<StoredPayeeChannel[]> {
    await this.settled();
    const rows = this.stmts.loadPayee.all() as { temp_id: string; state: string }[];
    const payments = paymentsOf(this.stmts.loadPayments.all() as PaymentRow[]);
    return rows.map((r) => ({ tempId: r.temp_id, state: withNewestPayment(decodeRow<PayeeState>('payee_channels', r), payments.get(r.temp_id)) }));
  }

  /** Whether a payee row exists under `tempId` (Store.hasPayeeChannel); waits for saves already made. */
  async hasPayeeChannel(tempId: string): Promise<boolean> {
    await this.settled();
    return this.stmts.hasPayee.get(tempId) !== undefined;
  }

  /** @throws TypeError (rejects) for an empty tempId or a signature that is not 64 bytes. */
  savePayeePayment(tempId: string, totalSat: bigint, signature: Uint8Array): Promise<void> {
    return this.stagePayment('savePayeePayment', false, tempId, totalSat, signature);
  }

  /** @throws TypeError (rejects) for an empty tempId or a state the codec cannot encode. */
  savePayeeChannel(tempId: string, state: PayeeState): Promise<void> {
    return this.stage('savePayeeChannel', () => {
      const row = channelRow('savePayeeChannel', tempId, state, 'paidSat' in state ? state.paidSat : null);
      this.openBatch().payee.set(tempId, row);
    });
  }

  /** Every payer channel, in first-save order; waits for saves already made to commit first. */
  async loadPayerChannels(): Promise<StoredPayerChannel[]> {
    await this.settled();
    const rows = this.stmts.loadPayer.all() as { temp_id: string; state: string }[];
    const payments = paymentsOf(this.stmts.loadPayerPayments.all() as PaymentRow[]);
    return rows.map((r) => ({ tempId: r.temp_id, state: withNewestSignedPayment(decodeRow<PayerState>('payer_channels', r), payments.get(r.temp_id)) }));
  }

  /** @throws TypeError (rejects) for an empty tempId or a signature that is not 64 bytes. */
  savePayerPayment(tempId: string, totalSat: bigint, signature: Uint8Array): Promise<void> {
    return this.stagePayment('savePayerPayment', true, tempId, totalSat, signature);
  }

  /** @throws TypeError (rejects) for an empty tempId or a state the codec cannot encode. */
  savePayerChannel(tempId: string, state: PayerState): Promise<void> {
    return this.stage('savePayerChannel', () => {
      const row = channelRow('savePayerChannel', tempId, state, 'ackedTotalSat' in state ? state.ackedTotalSat : null);
      this.openBatch().payer.set(tempId, row);
    });
  }

  /** Every duplex record, in first-save order; waits for saves already made to commit first. */
  async loadDuplexRecords(): Promise<StoredDuplexRecord[]> {
    await this.settled();
    return this.readDuplexRecords();
  }

  /**
   * Stages the records and meta values into one batch, so they commit in one transaction.
   * @throws TypeError (rejects) for a record without a tempId, one the codec cannot encode, or a
   *   bad meta entry; nothing is staged then.
   */
  saveDuplexRecords(records: readonly StoredDuplexRecord[], meta?: ReadonlyMap<string, string>): Promise<void> {
    return this.stage('saveDuplexRecords', () => this.stageDuplex(records, meta));
  }

  /** @throws TypeError (rejects) for an empty tempId. */
  deleteDuplexRecord(tempId: string): Promise<void> {
    return this.stage('deleteDuplexRecord', () => {
      checkTempId('deleteDuplexRecord', tempId);
      this.openBatch().duplex.set(tempId, null);
    });
  }

  /** The committed value of `key`, after saves already made have committed. */
  async getMeta(key: string): Promise<string | undefined> {
    await this.settled();
    const row = this.stmts.getMeta.get(key) as { value: string } | undefined;
    return row?.value;
  }

  /** @throws TypeError (rejects) if key or value is not a string (key non-empty). */
  putMeta(key: string, value: string): Promise<void> {
    return this.stage('putMeta', () => {
      checkMeta(key, value);
      this.openBatch().meta.set(key, value);
    });
  }

  /**
   * Reserves the next value of counter `name` in the same batch as the saves around it, so it
   * is durable, and ordered with them, when it resolves.
   * @throws TypeError (rejects) for an empty name.
   */
  nextCounter(name: string): Promise<number> {
    if (typeof name !== 'string' || name === '') return Promise.reject(new TypeError('nextCounter: name must be a non-empty string'));
    if (this.closing) return Promise.reject(closedError('nextCounter'));
    const batch = this.openBatch();
    const index = batch.counters.push(name) - 1;
    this.counts.requests++;
    return batch.done.then(() => batch.counterValues[index]!);
  }

  /**
   * Commits pending saves, then closes the database. Later calls of any method reject with
   * `STORE_CLOSED`; calling close again returns the same promise.
   * @throws StoreError `COMMIT_FAILED` (rejects) if the pending saves could not be committed;
   *   the database is closed anyway.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const pending = this.batch;
      this.flush();
      // The commits written so far made durable (or failed) before the WAL's descriptor closes.
      await this.walSync?.idle();
      this.walSync?.close();
      this.db.close();
      if (pending) await pending.done;
    })();
    return this.closing;
  }

  /** What the store did since it was opened (commits, rows), for tests and metrics. */
  stats(): SqliteStoreStats {
    return { ...this.counts };
  }

  /**
   * The durability settings as the connection reports them.
   * @throws StoreError `STORE_CLOSED` after close.
   */
  pragmas(): SqlitePragmas {
    if (this.closing) throw closedError('pragmas');
    return {
      journalMode: this.db.pragma('journal_mode', { simple: true }) as string,
      synchronous: this.db.pragma('synchronous', { simple: true }) as number,
      foreignKeys: this.db.pragma('foreign_keys', { simple: true }) === 1,
      busyTimeoutMs: this.db.pragma('busy_timeout', { simple: true }) as number,
    };
  }

  /** Validates and encodes every record (and meta entry) first, then stages them all. */
  private stageDuplex(records: readonly StoredDuplexRecord[], meta?: ReadonlyMap<string, string>): void {
    const { rows, entries } = encodeDuplexSave(records, meta);
    const batch = this.openBatch();
    for (const r of rows) batch.duplex.set(r.tempId, { record: r.encoded, channelId: r.channelId });
    for (const [key, value] of entries) batch.meta.set(key, value);
  }

  private readDuplexRecords(): StoredDuplexRecord[] {
    const rows = this.stmts.loadDuplex.all() as { temp_id: string; record: string }[];
    return rows.map((r) => decodeDuplexRow(r));
  }

  /** What {@link stage} does for a payment, without its closure: this runs once per payment. */
  private stagePayment(what: string, payer: boolean, tempId: string, totalSat: bigint, signature: Uint8Array): Promise<void> {
    if (this.closing) return Promise.reject(closedError(what));
    try {
      checkPayment(what, tempId, signature);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const batch = this.openBatch();
    (payer ? batch.payerPayments : batch.payments).set(tempId, { total: totalSat.toString(), signature });
    return this.staged();
  }

  /** Runs `put` (which validates and stages a row) and returns its batch's promise. */
  private stage(what: string, put: () => void): Promise<void> {
    if (this.closing) return Promise.reject(closedError(what));
    try {
      put();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return this.staged();
  }

  /** The promise of a call that staged its row in the open batch. */
  private staged(): Promise<void> {
    this.counts.requests++;
    // One promise per call, chained on the batch's: calls resolve in call order, and a caller
    // that ignores its rejection gets its own unhandled-rejection report.
    return this.batch!.done.then(noop);
  }

  /** The batch being filled, opening one (and scheduling its commit) if there is none. */
  private openBatch(): Batch {
    if (this.batch) return this.batch;
    const batch = (this.batch = new Batch());
    const delay = this.settings.groupCommitMaxDelayMs;
    if (delay === 0) {
      const handle = setImmediate(() => this.flush());
      this.cancelFlush = () => clearImmediate(handle);
    } else {
      const handle = setTimeout(() => this.flush(), delay);
      this.cancelFlush = () => clearTimeout(handle);
    }
    return batch;
  }

  /**
   * Commits the open batch (if any) in one transaction and settles its promise.
   * @returns the StoreError the batch failed with, if it failed.
   */
  private flush(): StoreError | undefined {
    const batch = this.batch;
    if (!batch) return undefined;
    this.batch = null;
    this.cancelFlush?.();
    this.cancelFlush = null;
    try {
      this.commitBatch(batch, Date.now());
    } catch (err) {
      // The transaction was rolled back: nothing of this batch is stored, so every save fails.
      this.counts.failedCommits++;
      const error = new StoreError('COMMIT_FAILED', `${batch.rows} rows: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      this.settings.log(`store: ${error.message}`);
      batch.reject(error);
      return error;
    }
    this.counts.commits++;
    this.counts.rows += batch.rows;
    // Written; resolved once the WAL is on stable storage (at once for :memory:).
    if (this.walSync) this.walSync.after(batch);
    else batch.resolve();
    return undefined;
  }

  /** Waits until saves made so far have committed or failed, so reads see them. */
  private async settled(): Promise<void> {
    if (this.closing) throw closedError('read');
    const pending = this.batch?.done;
    if (pending) await pending.catch(() => undefined);
    if (this.closing) throw closedError('read');
  }
}

function noop(): void {}

function decodeDuplexRow(row: { temp_id: string; record: string }): StoredDuplexRecord {
  let record: unknown;
  try {
    record = decodeState<unknown>(row.record);
  } catch (err) {
    throw new StoreError('CORRUPT_ROW', `duplex_records ${row.temp_id}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (record === null || typeof record !== 'object' || (record as { tempId?: unknown }).tempId !== row.temp_id) {
    throw new StoreError('CORRUPT_ROW', `duplex_records ${row.temp_id}: not the record of ${row.temp_id}`);
  }
  try {
    return decodeDuplexState(record);
  } catch (err) {
    throw new StoreError('CORRUPT_ROW', `duplex_records ${row.temp_id}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

function checkOptions(options: SqliteStoreOptions): Settings {
  const delay = options.groupCommitMaxDelayMs ?? 0;
  if (!Number.isFinite(delay) || delay < 0 || delay > 60_000) throw new RangeError('groupCommitMaxDelayMs must be in 0..60000');
  const busy = options.busyTimeoutMs ?? 5000;
  if (!Number.isInteger(busy) || busy < 0 || busy > 600_000) throw new RangeError('busyTimeoutMs must be an integer in 0..600000');
  const log = options.log ?? (() => {});
  if (typeof log !== 'function') throw new TypeError('log must be a function');
  return Object.freeze({ groupCommitMaxDelayMs: delay, busyTimeoutMs: busy, log });
}

/** Validates and encodes a channel save; `amountSat` fills the operator column. */
function channelRow(what: string, tempId: string, state: { readonly type: string }, amountSat: bigint | null): ChannelRow {
  checkChannelState(what, tempId, state);
  const encoded = encodeChecked(what, tempId, state);
  const channelId = 'channel' in state ? (state.channel as { id: string }).id : null;
  return { state: encoded, stateType: state.type, channelId, amountSat: amountSat === null ? null : amountSat.toString() };
}

function decodeRow<T>(table: string, row: { temp_id: string; state: string }): T {
  let state: unknown;
  try {
    state = decodeState<unknown>(row.state);
  } catch (err) {
    throw new StoreError('CORRUPT_ROW', `${table} ${row.temp_id}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (state === null || typeof state !== 'object' || typeof (state as { type?: unknown }).type !== 'string') {
    throw new StoreError('CORRUPT_ROW', `${table} ${row.temp_id}: not a channel state`);
  }
  return state as T;
}

function configure(db: Database.Database, inMemory: boolean, busyTimeoutMs: number): void {
  db.pragma(`busy_timeout = ${busyTimeoutMs}`);
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (!inMemory && mode !== 'wal') throw new StoreError('NOT_DURABLE', `${db.name}: journal_mode is ${String(mode)}, not wal`);
  // NORMAL: COMMIT writes the WAL without an fsync on the event loop; the store's WalSync makes
  // each batch durable before it resolves, and SQLite syncs around checkpoints itself.
  db.pragma('synchronous = NORMAL');
  const sync = db.pragma('synchronous', { simple: true });
  if (sync !== 1) throw new StoreError('NOT_DURABLE', `${db.name}: synchronous is ${String(sync)}, not NORMAL (1)`);
  db.pragma('foreign_keys = ON');
}

/**
 * Creates `file` with mode 0600 if it does not exist (channel states hold signatures worth
 * money), fsyncing it and its directory so the new entry is durable; warns about an existing
 * file that others can read.
 */
function createPrivateFile(file: string, log: (line: string) => void): void {
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const mode = fs.statSync(file).mode & 0o777;
    if ((mode & 0o077) !== 0) log(`store ${file}: mode ${mode.toString(8)} lets other users read channel states; chmod 600 it`);
    return;
  }
  try {
    fs.fchmodSync(fd, 0o600); // exactly 0600 whatever the umask
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fsyncDirectory(path.dirname(path.resolve(file)));
}

function fsyncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some platforms cannot fsync a directory (Windows); SQLite syncs it too where it can.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * SQLite creates -wal and -shm with the database file's mode; tighten them anyway in case they
 * were left behind by another program with a looser one.
 */
function tightenSidecarFiles(file: string, log: (line: string) => void): void {
  for (const suffix of ['-wal', '-shm']) {
    const sidecar = file + suffix;
    try {
      if ((fs.statSync(sidecar).mode & 0o077) !== 0) fs.chmodSync(sidecar, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log(`store ${sidecar}: cannot chmod 600: ${String(err)}`);
    }
  }
}
