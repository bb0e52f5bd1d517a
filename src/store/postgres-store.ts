/**
 * The {@link Store} port on PostgreSQL (the `pg` driver, loaded only when a postgres:// URL is
 * opened), with group commit and, for several payee instances on one database, per-channel
 * leases with fencing tokens (postgres-leases.ts).
 *
 * Group commit as in the SQLite adapter (sqlite-store.ts), shaped by an asynchronous driver: a
 * save stages its row in the open batch; one commit is in flight at a time on one dedicated
 * connection, and everything staged while it runs becomes the next batch, committed as soon as
 * it returns. So batches grow with load by themselves and commit strictly in order (the port's
 * ordering rule), and each promise resolves only after its batch's COMMIT (durable on resolve:
 * `synchronous_commit` is on unless the server's operator turned it off). A batch writes each
 * table with one statement over arrays (`unnest`), so a batch of payments of many channels is
 * one statement, one round trip and one WAL flush; a batch touching one table runs as a single
 * autocommit statement, several tables as BEGIN … COMMIT.
 *
 * Fencing: with leases on, every payee write carries the token of the channel's lease this
 * instance holds, and the statement writes only rows whose lease row still has that token,
 * locking it FOR SHARE until the commit: a takeover (which increments the token) waits for an
 * in-flight write and then fences every later one. A write that finds another token rejects with
 * `FENCED` and is not stored: the instance lost the channel and must drop it.
 *
 * The port's open is synchronous (open-store.ts); connecting and migrating happen in the
 * background and every call waits for them (`ready()` exposes that promise, so a composition
 * root can fail fast).
 */
import type { Pool, PoolClient, QueryConfig } from 'pg';
import { decodeState } from './codec.js';
import { checkChannelState, checkMeta, checkPayment, checkTempId, encodeChecked, encodeDuplexSave } from './checks.js';
import { DEADLOCK_RETRIES, isDeadlock } from './postgres-deadlock.js';
import { PgChannelLeases } from './postgres-leases.js';
import { migratePostgres } from './postgres-migrations.js';
import { closedError, StoreError } from './store-error.js';
import { decodeDuplexState } from '../protocol/duplex-state-legacy.js';
import type { PayeeState } from '../protocol/payee-machine.js';
import type { PayerState } from '../protocol/payer-machine.js';
import { withNewestPayment, withNewestSignedPayment, type Store, type StoredDuplexRecord, type StoredPayeeChannel, type StoredPayerChannel } from './store.js';

export interface PostgresStoreOptions {
  /** Connections in the pool (one of them is the writer); default 4. */
  readonly poolSize?: number;
  /** How long a commit waits for a lock held by another session before failing, ms; default 5000. */
  readonly lockTimeoutMs?: number;
  /**
   * How long one statement of a commit may run before it fails, ms; default 30,000. The server
   * enforces it (`statement_timeout`), and the driver too, {@link COMMIT_READ_GRACE_MS} later,
   * for a server that no longer answers at all (a hung or black-holed primary): the batch then
   * fails (COMMIT_FAILED, its channels halt as on any store failure) instead of hanging forever,
   * and the writer connection is replaced.
   */
  readonly statementTimeoutMs?: number;
  readonly log?: (line: string) => void;
  /**
   * This instance's name in the lease table: stable across restarts of one data dir (a restarted
   * instance takes its own leases back at once), different between instances. Default: random.
   */
  readonly owner?: string;
  /**
   * How long a lease lasts without renewal, ms; default 10,000, or the URL's `paychan_lease_ms`
   * parameter. A dead or paused instance's channels move after this long.
   */
  readonly leaseMs?: number;
}

/** How much longer than the statement timeout the driver waits for a reply before it gives up on the server. */
export const COMMIT_READ_GRACE_MS = 2000;

/** TCP keepalive probes start after this long idle: a dead peer is found without a statement waiting on it. */
const KEEPALIVE_IDLE_MS = 10_000;

/** Connecting to the server (a new pool connection, the writer's) fails after this long. */
const CONNECT_TIMEOUT_MS = 10_000;

/** Counters of what the store did since it was opened. */
export interface PostgresStoreStats {
  readonly requests: number;
  readonly commits: number;
  readonly rows: number;
  readonly failedCommits: number;
  /** Payee writes refused because another instance holds the channel's lease. */
  readonly fencedWrites: number;
}

interface ChannelRow {
  readonly state: string;
  readonly stateType: string;
  readonly channelId: string | null;
  readonly amountSat: string | null;
  /** The lease token a payee write is fenced by; null for payer rows. */
  readonly token: string | null;
}
interface PaymentRow {
  readonly total: string;
  readonly signature: Uint8Array;
  readonly token: string | null;
}
interface DuplexRow {
  readonly record: string;
  readonly channelId: string | null;
}

class Batch {
  readonly payee = new Map<string, ChannelRow>();
  readonly payments = new Map<string, PaymentRow>();
  readonly payer = new Map<string, ChannelRow>();
  readonly payerPayments = new Map<string, PaymentRow>();
  readonly duplex = new Map<string, DuplexRow | null>();
  readonly meta = new Map<string, string>();
  readonly counters: string[] = [];
  counterValues: number[] = [];
  /** Payee tempIds whose fenced write found another token (set by the commit). */
  fenced: Set<string> | null = null;
  readonly done: Promise<void>;
  resolve!: () => void;
  reject!: (err: Error) => void;

  constructor() {
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.done.catch(noop);
  }

  get rows(): number {
    return this.payee.size + this.payer.size + this.duplex.size + this.payments.size + this.payerPayments.size + this.meta.size + this.counters.length;
  }
}

/** One statement of a batch's commit; `after` reads what it returned. */
interface Statement {
  readonly text: string;
  readonly values?: unknown[];
  readonly after?: (rows: Record<string, unknown>[]) => void;
}

/** The lease tokens an instance holds, by payee tempId (postgres-leases.ts fills it). */
export interface LeaseTokens {
  /** The token held for `tempId`, or undefined if this instance does not hold its lease. */
  tokenOf(tempId: string): string | undefined;
  /** Told when a fenced write found another token: the lease is lost. */
  lost(tempId: string): void;
}

const SQL = {
  // Only rows whose lease still has our token, the lease row locked until commit.
  upsertPayee: `WITH u AS (SELECT * FROM unnest($1::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[]) WITH ORDINALITY AS u(temp_id, state, channel_id, state_type, paid_sat, token, ord)),
    l AS (SELECT temp_id, token FROM channel_leases WHERE temp_id = ANY($1::text[]) ORDER BY temp_id FOR SHARE)
    INSERT INTO payee_channels (temp_id, state, updated_at, channel_id, state_type, paid_sat)
    SELECT u.temp_id, u.state, $2, u.channel_id, u.state_type, u.paid_sat FROM u JOIN l ON l.temp_id = u.temp_id AND l.token = u.token
    ORDER BY u.ord
    ON CONFLICT (temp_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at,
      channel_id = excluded.channel_id, state_type = excluded.state_type, paid_sat = excluded.paid_sat
    RETURNING temp_id`,
  upsertPayments: `WITH l AS (SELECT temp_id, token FROM channel_leases WHERE temp_id = ANY($1::text[]) ORDER BY temp_id FOR SHARE)
    INSERT INTO payee_payments (temp_id, total_sat, signature)
    SELECT u.temp_id, u.total, u.sig FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::bigint[]) AS u(temp_id, total, sig, token)
      JOIN l ON l.temp_id = u.temp_id AND l.token = u.token
    ON CONFLICT (temp_id) DO UPDATE SET total_sat = excluded.total_sat, signature = excluded.signature
    RETURNING temp_id`,
  upsertPayer: `INSERT INTO payer_channels (temp_id, state, updated_at, channel_id, state_type, acked_sat)
    SELECT u.temp_id, u.state, $2, u.channel_id, u.state_type, u.acked
    FROM unnest($1::text[], $3::text[], $4::text[], $5::text[], $6::bigint[]) WITH ORDINALITY AS u(temp_id, state, channel_id, state_type, acked, ord)
    ORDER BY u.ord
    ON CONFLICT (temp_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at,
      channel_id = excluded.channel_id, state_type = excluded.state_type, acked_sat = excluded.acked_sat`,
  upsertPayerPayments: `INSERT INTO payer_payments (temp_id, total_sat, signature)
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[])
    ON CONFLICT (temp_id) DO UPDATE SET total_sat = excluded.total_sat, signature = excluded.signature`,
  upsertDuplex: `INSERT INTO duplex_records (temp_id, record, updated_at, channel_id)
    SELECT u.temp_id, u.record, $2, u.channel_id FROM unnest($1::text[], $3::text[], $4::text[]) WITH ORDINALITY AS u(temp_id, record, channel_id, ord)
    ORDER BY u.ord
    ON CONFLICT (temp_id) DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at, channel_id = excluded.channel_id`,
  deleteDuplex: 'DELETE FROM duplex_records WHERE temp_id = ANY($1::text[])',
  upsertMeta: `INSERT INTO meta (key, value) SELECT * FROM unnest($1::text[], $2::text[])
    ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
  // One row per name with how many values the batch takes; `next` after is the end of its range.
  takeCounters: `INSERT INTO counters (name, next) SELECT * FROM unnest($1::text[], $2::bigint[])
    ON CONFLICT (name) DO UPDATE SET next = counters.next + excluded.next RETURNING name, next`,
  loadPayee: 'SELECT temp_id, state FROM payee_channels ORDER BY seq',
  hasPayee: 'SELECT 1 FROM payee_channels WHERE temp_id = $1',
  loadPayments: 'SELECT temp_id, total_sat, signature FROM payee_payments',
  loadPayeeOne: `SELECT c.temp_id, c.state, p.total_sat, p.signature FROM payee_channels c LEFT JOIN payee_payments p ON p.temp_id = c.temp_id
    WHERE c.temp_id = $1 OR c.channel_id = $1 ORDER BY c.seq LIMIT 1`,
  loadPayer: 'SELECT temp_id, state FROM payer_channels ORDER BY seq',
  loadPayerPayments: 'SELECT temp_id, total_sat, signature FROM payer_payments',
  loadDuplex: 'SELECT temp_id, record FROM duplex_records ORDER BY seq',
  getMeta: 'SELECT value FROM meta WHERE key = $1',
} as const;

type PgModule = typeof import('pg').default;

/**
 * Loads the optional `pg` driver. @throws StoreError `DRIVER_MISSING` when it is not installed.
 */
export async function loadPgDriver(): Promise<PgModule> {
  try {
    return (await import('pg')).default;
  } catch (err) {
    throw new StoreError('DRIVER_MISSING', 'postgres:// stores need the `pg` package: npm install pg@8', { cause: err });
  }
}

/** Opens the store at a `postgres://` (or `postgresql://`) URL. See {@link PostgresStore}. */
export function openPostgresStore(url: string, options: PostgresStoreOptions = {}): PostgresStore {
  return new PostgresStore(url, options);
}

/** The PostgreSQL adapter of the {@link Store} port. */
export class PostgresStore implements Store {
  private batch: Batch | null = null;
  private inFlight: Batch | null = null;
  private flushScheduled = false;
  private closing: Promise<void> | null = null;
  private writer: PoolClient | null = null;
  /** Always on: any PostgreSQL store may be one of several instances (docs/scale.md). */
  readonly leases: PgChannelLeases;
  private readonly counts = { requests: 0, commits: 0, rows: 0, failedCommits: 0, fencedWrites: 0 };
  private readonly opened: Promise<Pool>;
  private readonly settings: Required<Omit<PostgresStoreOptions, 'owner' | 'leaseMs'>>;
  /** The URL the driver gets: without our own parameters. */
  private readonly connectionUrl: string;
  private readonly flushNow = (): void => this.flush();

  /**
   * Starts connecting and migrating; calls wait for that.
   * @throws TypeError / RangeError for a URL that is not postgres:// or bad options.
   */
  constructor(
    readonly url: string,
    options: PostgresStoreOptions = {},
  ) {
    if (typeof url !== 'string' || !/^postgres(ql)?:\/\//i.test(url) || !URL.canParse(url)) throw new TypeError('openPostgresStore: url must be a postgres:// URL');
    const poolSize = options.poolSize ?? 4;
    if (!Number.isInteger(poolSize) || poolSize < 2 || poolSize > 100) throw new RangeError('poolSize must be an integer in 2..100');
    const lockTimeoutMs = options.lockTimeoutMs ?? 5000;
    if (!Number.isInteger(lockTimeoutMs) || lockTimeoutMs < 1 || lockTimeoutMs > 600_000) throw new RangeError('lockTimeoutMs must be an integer in 1..600000');
    const statementTimeoutMs = options.statementTimeoutMs ?? 30_000;
    if (!Number.isInteger(statementTimeoutMs) || statementTimeoutMs < 1 || statementTimeoutMs > 600_000) throw new RangeError('statementTimeoutMs must be an integer in 1..600000');
    this.settings = Object.freeze({ poolSize, lockTimeoutMs, statementTimeoutMs, log: options.log ?? noop });
    const parsed = new URL(url);
    const leaseParam = parsed.searchParams.get('paychan_lease_ms');
    parsed.searchParams.delete('paychan_lease_ms');
    this.connectionUrl = parsed.toString();
    const leaseMs = options.leaseMs ?? (leaseParam === null ? 10_000 : Number(leaseParam));
    if (!Number.isInteger(leaseMs) || leaseMs < 200 || leaseMs > 600_000) throw new RangeError('leaseMs (paychan_lease_ms) must be an integer in 200..600000');
    const owner = options.owner ?? `instance-${Math.random().toString(36).slice(2)}`;
    if (typeof owner !== 'string' || owner === '' || owner.length > 200) throw new TypeError('owner must be a non-empty string of at most 200 characters');
    this.opened = this.connect();
    this.leases = new PgChannelLeases(() => this.opened, owner, leaseMs, this.settings.log);
    this.opened.catch(noop); // reported by every call (and ready())
  }

  /**
   * Resolves once connected and migrated.
   * @throws StoreError `DRIVER_MISSING`, `SCHEMA_TOO_NEW`; the driver's error if unreachable.
   */
  async ready(): Promise<void> {
    await this.opened;
  }

  /** The pool, for the lease manager and the closer's leader lock (same database, same driver). */
  pool(): Promise<Pool> {
    return this.opened;
  }

  async loadPayeeChannels(): Promise<StoredPayeeChannel[]> {
    const pool = await this.settled();
    const [rows, payments] = await Promise.all([pool.query<{ temp_id: string; state: string }>(SQL.loadPayee), pool.query<PaymentRowDb>(SQL.loadPayments)]);
    const byId = paymentsOf(payments.rows);
    return rows.rows.map((r) => ({ tempId: r.temp_id, state: withNewestPayment(decodeRow<PayeeState>('payee_channels', r), byId.get(r.temp_id)) }));
  }

  /**
   * One payee channel by tempId or channel id (funding outpoint), with its newest payment, or
   * undefined: how an instance loads a channel another one opened.
   */
  async loadPayeeChannel(ref: string): Promise<StoredPayeeChannel | undefined> {
    const pool = await this.settled();
    const row = (await pool.query<{ temp_id: string; state: string; total_sat: string | null; signature: Buffer | null }>(SQL.loadPayeeOne, [ref])).rows[0];
    if (!row) return undefined;
    const payment = row.total_sat === null || row.signature === null ? undefined : { totalSat: BigInt(row.total_sat), signature: new Uint8Array(row.signature) };
    return { tempId: row.temp_id, state: withNewestPayment(decodeRow<PayeeState>('payee_channels', row), payment) };
  }

  /** Whether a payee row exists under `tempId` (Store.hasPayeeChannel), whichever instance wrote it; waits for saves already made. */
  async hasPayeeChannel(tempId: string): Promise<boolean> {
    const pool = await this.settled();
    return (await pool.query(SQL.hasPayee, [tempId])).rows.length > 0;
  }

  /** @throws TypeError (rejects) for an empty tempId or a bad signature; StoreError `FENCED` without the lease. */
  savePayeePayment(tempId: string, totalSat: bigint, signature: Uint8Array): Promise<void> {
    return this.stagePayee('savePayeePayment', tempId, () => {
      checkPayment('savePayeePayment', tempId, signature);
      const token = this.tokenFor('savePayeePayment', tempId);
      this.openBatch().payments.set(tempId, { total: totalSat.toString(), signature, token });
    });
  }

  /** @throws TypeError (rejects) for a state the codec cannot encode; StoreError `FENCED` without the lease. */
  savePayeeChannel(tempId: string, state: PayeeState): Promise<void> {
    return this.stagePayee('savePayeeChannel', tempId, () => {
      const row = channelRow('savePayeeChannel', tempId, state, 'paidSat' in state ? state.paidSat : null, null);
      const token = this.tokenFor('savePayeeChannel', tempId);
      this.openBatch().payee.set(tempId, token === null ? row : { ...row, token });
    });
  }

  async loadPayerChannels(): Promise<StoredPayerChannel[]> {
    const pool = await this.settled();
    const [rows, payments] = await Promise.all([pool.query<{ temp_id: string; state: string }>(SQL.loadPayer), pool.query<PaymentRowDb>(SQL.loadPayerPayments)]);
    const byId = paymentsOf(payments.rows);
    return rows.rows.map((r) => ({ tempId: r.temp_id, state: withNewestSignedPayment(decodeRow<PayerState>('payer_channels', r), byId.get(r.temp_id)) }));
  }

  savePayerPayment(tempId: string, totalSat: bigint, signature: Uint8Array): Promise<void> {
    return this.stage('savePayerPayment', () => {
      checkPayment('savePayerPayment', tempId, signature);
      this.openBatch().payerPayments.set(tempId, { total: totalSat.toString(), signature, token: null });
    });
  }

  savePayerChannel(tempId: string, state: PayerState): Promise<void> {
    return this.stage('savePayerChannel', () => {
      this.openBatch().payer.set(tempId, channelRow('savePayerChannel', tempId, state, 'ackedTotalSat' in state ? state.ackedTotalSat : null, null));
    });
  }

  async loadDuplexRecords(): Promise<StoredDuplexRecord[]> {
    const pool = await this.settled();
    return (await pool.query<{ temp_id: string; record: string }>(SQL.loadDuplex)).rows.map(decodeDuplexRow);
  }

  saveDuplexRecords(records: readonly StoredDuplexRecord[], meta?: ReadonlyMap<string, string>): Promise<void> {
    return this.stage('saveDuplexRecords', () => {
      const { rows, entries } = encodeDuplexSave(records, meta);
      const batch = this.openBatch();
      for (const r of rows) batch.duplex.set(r.tempId, { record: r.encoded, channelId: r.channelId });
      for (const [key, value] of entries) batch.meta.set(key, value);
    });
  }

  deleteDuplexRecord(tempId: string): Promise<void> {
    return this.stage('deleteDuplexRecord', () => {
      checkTempId('deleteDuplexRecord', tempId);
      this.openBatch().duplex.set(tempId, null);
    });
  }

  async getMeta(key: string): Promise<string | undefined> {
    const pool = await this.settled();
    return (await pool.query<{ value: string }>(SQL.getMeta, [key])).rows[0]?.value;
  }

  putMeta(key: string, value: string): Promise<void> {
    return this.stage('putMeta', () => {
      checkMeta(key, value);
      this.openBatch().meta.set(key, value);
    });
  }

  nextCounter(name: string): Promise<number> {
    if (typeof name !== 'string' || name === '') return Promise.reject(new TypeError('nextCounter: name must be a non-empty string'));
    if (this.closing) return Promise.reject(closedError('nextCounter'));
    const batch = this.openBatch();
    const index = batch.counters.push(name) - 1;
    this.counts.requests++;
    return batch.done.then(() => batch.counterValues[index]!);
  }

  /**
   * Commits pending saves, then closes the pool. Later calls reject with `STORE_CLOSED`.
   * @throws StoreError `COMMIT_FAILED` (rejects) if the pending saves could not be committed.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.leases.close();
      const last = this.batch ?? this.inFlight;
      this.flush();
      if (last) await last.done.catch(noop);
      let pool: Pool | undefined;
      try {
        pool = await this.opened;
      } catch {
        return; // never connected: nothing to close
      }
      // After the last batch: its writes were fenced by these leases.
      await this.leases.releaseAll().catch((err: unknown) => this.settings.log(`store: releasing leases failed: ${err instanceof Error ? err.message : String(err)}`));
      this.writer?.release();
      this.writer = null;
      await pool.end();
      if (last) await last.done;
    })();
    return this.closing;
  }

  stats(): PostgresStoreStats {
    return { ...this.counts };
  }

  private async connect(): Promise<Pool> {
    const pg = await loadPgDriver();
    // BIGINT (int8) comes back as a string by default, which is what we parse into bigint.
    // Keepalive: a connection whose server vanished (no FIN: a crashed host, a dropped route) is
    // found dead by the kernel rather than waited on forever.
    const pool = new pg.Pool({
      connectionString: this.connectionUrl,
      max: this.settings.poolSize,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_IDLE_MS,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    });
    pool.on('error', (err) => this.settings.log(`store: idle connection error: ${err.message}`));
    try {
      const outcome = await migratePostgres(pool);
      if (outcome.type === 'too-new') throw new StoreError('SCHEMA_TOO_NEW', `${redact(this.url)} has schema version ${outcome.found}; this paychan knows up to ${outcome.known}`);
      if (outcome.from !== outcome.to) this.settings.log(`store ${redact(this.url)}: schema version ${outcome.from} -> ${outcome.to}`);
      // The writer session sets synchronous_commit itself; fsync is the server's alone.
      const fsync = (await pool.query<{ s: string }>("SELECT current_setting('fsync') AS s")).rows[0]?.s;
      if (fsync !== 'on') throw new StoreError('NOT_DURABLE', `${redact(this.url)}: the server runs with fsync=${String(fsync)}; a commit would not be durable`);
      return pool;
    } catch (err) {
      await pool.end().catch(noop);
      throw err;
    }
  }

  private tokenFor(what: string, tempId: string): string {
    const token = this.leases.tokenOf(tempId);
    if (token === undefined) throw new StoreError('FENCED', `${what}(${tempId}): this instance does not hold the channel's lease`);
    return token;
  }

  /** A payee write: like {@link stage}, and, with leases on, rejects `FENCED` if its row was fenced off. */
  private stagePayee(what: string, tempId: string, put: () => void): Promise<void> {
    if (this.closing) return Promise.reject(closedError(what));
    try {
      checkTempId(what, tempId);
      put();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    this.counts.requests++;
    const batch = this.batch!;
    // One closure per fenced write: only this adapter in fenced mode pays it.
    return batch.done.then(() => {
      if (batch.fenced?.has(tempId)) throw new StoreError('FENCED', `${what}(${tempId}): another instance took the channel's lease; not stored`);
    });
  }

  private stage(what: string, put: () => void): Promise<void> {
    if (this.closing) return Promise.reject(closedError(what));
    try {
      put();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    this.counts.requests++;
    return this.batch!.done.then(noop);
  }

  private openBatch(): Batch {
    if (this.batch) return this.batch;
    const batch = (this.batch = new Batch());
    if (this.inFlight === null && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushNow);
    }
    return batch;
  }

  /** Starts committing the open batch unless a commit is in flight (its end starts the next). */
  private flush(): void {
    this.flushScheduled = false;
    if (this.inFlight !== null || this.batch === null) return;
    const batch = this.batch;
    this.batch = null;
    this.inFlight = batch;
    void this.commit(batch).then(() => {
      this.inFlight = null;
      if (this.batch !== null) this.flush();
    });
  }

  /** Commits one batch and settles it; never rejects. */
  private async commit(batch: Batch): Promise<void> {
    const statements = this.statementsOf(batch, Date.now());
    let client: PoolClient | null = null;
    try {
      client = await this.writerClient();
      const readTimeoutMs = this.settings.statementTimeoutMs + COMMIT_READ_GRACE_MS;
      // A deadlock with a lease takeover or renewal (they lock lease rows too) rolls the whole
      // transaction back: the upserts are idempotent, so it is run again rather than failing
      // (which would halt every channel of the batch).
      for (let attempt = 1; ; attempt++) {
        try {
          if (statements.length === 1) await run(client, statements[0]!, readTimeoutMs);
          else {
            await run(client, BEGIN, readTimeoutMs);
            try {
              for (const s of statements) await run(client, s, readTimeoutMs);
              await run(client, COMMIT, readTimeoutMs);
            } catch (err) {
              // After a read timeout the connection is dropped below (the server rolls back).
              if (isConnectionError(err)) throw err;
              await run(client, ROLLBACK, readTimeoutMs).catch(noop);
              throw err;
            }
          }
          break;
        } catch (err) {
          if (attempt >= DEADLOCK_RETRIES || !isDeadlock(err)) throw err;
          batch.fenced = null; // what the rolled-back attempt found fenced is found again
        }
      }
    } catch (err) {
      this.counts.failedCommits++;
      if (client !== null && isConnectionError(err)) this.dropWriter(err);
      const error = err instanceof StoreError ? err : new StoreError('COMMIT_FAILED', `${batch.rows} rows: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      this.settings.log(`store: ${error.message}`);
      batch.reject(error);
      return;
    }
    this.counts.commits++;
    this.counts.rows += batch.rows;
    if (batch.fenced !== null) {
      this.counts.fencedWrites += batch.fenced.size;
      this.settings.log(`store: ${batch.fenced.size} payee writes fenced off, not stored: another instance holds their channels`);
      for (const tempId of batch.fenced) this.leases.lost(tempId);
    }
    batch.resolve();
  }

  private async writerClient(): Promise<PoolClient> {
    if (this.writer) return this.writer;
    const pool = await this.opened;
    const client = await pool.connect();
    // Durable on resolve whatever the database's default: a COMMIT returns after its WAL flush.
    // A statement that runs longer than statement_timeout fails rather than holding every later batch.
    await client.query(`SET synchronous_commit = on; SET lock_timeout = ${this.settings.lockTimeoutMs}; SET statement_timeout = ${this.settings.statementTimeoutMs}`);
    client.on('error', (err) => this.dropWriter(err));
    this.writer = client;
    return client;
  }

  private dropWriter(err: unknown): void {
    const writer = this.writer;
    this.writer = null;
    writer?.release(err instanceof Error ? err : true);
  }

  /** The statements that write `batch`, one per table touched, in a fixed order. */
  private statementsOf(batch: Batch, now: number): Statement[] {
    const out: Statement[] = [];
    const fenced = (returned: Set<string>, keys: Iterable<string>): void => {
      for (const k of keys) {
        if (!returned.has(k)) (batch.fenced ??= new Set()).add(k);
      }
    };
    if (batch.payee.size > 0) {
      const ids = [...batch.payee.keys()];
      const rows = [...batch.payee.values()];
      const values: unknown[] = [ids, now, rows.map((r) => r.state), rows.map((r) => r.channelId), rows.map((r) => r.stateType), rows.map((r) => r.amountSat)];
      out.push({ text: SQL.upsertPayee, values: [...values, rows.map((r) => r.token)], after: (r) => fenced(new Set(r.map((x) => x['temp_id'] as string)), ids) });
    }
    if (batch.payments.size > 0) {
      const ids = [...batch.payments.keys()];
      const rows = [...batch.payments.values()];
      const values: unknown[] = [ids, rows.map((r) => r.total), rows.map((r) => r.signature)];
      out.push({ text: SQL.upsertPayments, values: [...values, rows.map((r) => r.token)], after: (r) => fenced(new Set(r.map((x) => x['temp_id'] as string)), ids) });
    }
    if (batch.payer.size > 0) {
      const rows = [...batch.payer.values()];
      out.push({ text: SQL.upsertPayer, values: [[...batch.payer.keys()], now, rows.map((r) => r.state), rows.map((r) => r.channelId), rows.map((r) => r.stateType), rows.map((r) => r.amountSat)] });
    }
    if (batch.payerPayments.size > 0) {
      const rows = [...batch.payerPayments.values()];
      out.push({ text: SQL.upsertPayerPayments, values: [[...batch.payerPayments.keys()], rows.map((r) => r.total), rows.map((r) => r.signature)] });
    }
    const deletes: string[] = [];
    const upserts: [string, DuplexRow][] = [];
    for (const [tempId, row] of batch.duplex) {
      if (row === null) deletes.push(tempId);
      else upserts.push([tempId, row]);
    }
    if (deletes.length > 0) out.push({ text: SQL.deleteDuplex, values: [deletes] });
    if (upserts.length > 0) out.push({ text: SQL.upsertDuplex, values: [upserts.map(([k]) => k), now, upserts.map(([, r]) => r.record), upserts.map(([, r]) => r.channelId)] });
    if (batch.meta.size > 0) out.push({ text: SQL.upsertMeta, values: [[...batch.meta.keys()], [...batch.meta.values()]] });
    if (batch.counters.length > 0) {
      const taken = new Map<string, number>();
      for (const name of batch.counters) taken.set(name, (taken.get(name) ?? 0) + 1);
      out.push({
        text: SQL.takeCounters,
        values: [[...taken.keys()], [...taken.values()]],
        after: (rows) => {
          // `next` is the end of the range this batch took: hand its values out in call order.
          const start = new Map(rows.map((r) => [r['name'] as string, Number(r['next']) - taken.get(r['name'] as string)!]));
          batch.counterValues = batch.counters.map((name) => {
            const v = start.get(name)!;
            start.set(name, v + 1);
            return v;
          });
        },
      });
    }
    return out;
  }

  /** Waits until saves made so far have committed or failed; returns the pool for the read. */
  private async settled(): Promise<Pool> {
    if (this.closing) throw closedError('read');
    const pending = (this.batch ?? this.inFlight)?.done;
    if (pending) await pending.catch(noop);
    if (this.closing) throw closedError('read');
    return this.opened;
  }
}

interface PaymentRowDb {
  readonly temp_id: string;
  readonly total_sat: string;
  readonly signature: Buffer;
}

const BEGIN: Statement = { text: 'BEGIN' };
const COMMIT: Statement = { text: 'COMMIT' };
const ROLLBACK: Statement = { text: 'ROLLBACK' };

/**
 * Runs one statement of a commit; the driver gives up on a reply after `readTimeoutMs` (its error
 * has no SQLSTATE: {@link isConnectionError} takes it as a broken connection, which is replaced).
 */
async function run(client: PoolClient, s: Statement, readTimeoutMs: number): Promise<void> {
  // `query_timeout` per query is the driver's (pg/lib/client.js); its type declarations lack it.
  const config: QueryConfig & { readonly query_timeout: number } = { text: s.text, values: s.values, query_timeout: readTimeoutMs };
  const result = await client.query(config);
  s.after?.(result.rows as Record<string, unknown>[]);
}

function noop(): void {}

function paymentsOf(rows: readonly PaymentRowDb[]): Map<string, { totalSat: bigint; signature: Uint8Array }> {
  return new Map(rows.map((p) => [p.temp_id, { totalSat: BigInt(p.total_sat), signature: new Uint8Array(p.signature) }]));
}

/** A broken connection (not a refused statement): the writer is replaced for the next batch. */
function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code !== 'string' || code.startsWith('08') || code.startsWith('57P');
}

/** The URL without its password, for logs and errors. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://…';
  }
}

function channelRow(what: string, tempId: string, state: { readonly type: string }, amountSat: bigint | null, token: string | null): ChannelRow {
  checkChannelState(what, tempId, state);
  const encoded = encodeChecked(what, tempId, state);
  const channelId = 'channel' in state ? (state.channel as { id: string }).id : null;
  return { state: encoded, stateType: state.type, channelId, amountSat: amountSat === null ? null : amountSat.toString(), token };
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

function decodeDuplexRow(row: { temp_id: string; record: string }): StoredDuplexRecord {
  try {
    const record = decodeState<unknown>(row.record);
    if (record === null || typeof record !== 'object' || (record as { tempId?: unknown }).tempId !== row.temp_id) throw new Error(`not the record of ${row.temp_id}`);
    return decodeDuplexState(record);
  } catch (err) {
    throw new StoreError('CORRUPT_ROW', `duplex_records ${row.temp_id}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}
