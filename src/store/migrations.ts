/**
 * The SQLite store's schema, as numbered migrations tracked in `PRAGMA user_version`.
 *
 * Why numbered, append-only migrations rather than `CREATE TABLE IF NOT EXISTS`: a database
 * written by an older paychan is brought forward step by step, in one transaction (a failed
 * upgrade leaves the old schema intact), and a database written by a newer paychan is
 * recognised and left untouched instead of being half-understood. Released migrations are never
 * edited; a schema change is a new entry at the end of {@link MIGRATIONS}.
 *
 * The tables keep each channel as one row holding its newest state (the codec's JSON), plus a
 * few columns copied out of the state for operators (`sqlite3` inspection) and for a future
 * PostgreSQL adapter: they are derived data, rewritten with every save, never read back.
 */
import type BetterSqlite3 from 'better-sqlite3';

export interface Migration {
  /** 1, 2, 3, ...: the `user_version` the database has after this migration. */
  readonly version: number;
  readonly description: string;
  readonly sql: string;
}

/**
 * Every schema change, oldest first. Tables are STRICT, so a column holds only its declared type
 * (an amount stays decimal TEXT, never a lossy REAL).
 */
export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    description: 'payee and payer channels, meta, counters',
    sql: `
      CREATE TABLE payee_channels (
        temp_id    TEXT    NOT NULL PRIMARY KEY,
        -- first-save order: set on insert, never changed by an update
        seq        INTEGER NOT NULL UNIQUE,
        state      TEXT    NOT NULL,
        -- ms since the Unix epoch of the commit that wrote this state
        updated_at INTEGER NOT NULL,
        -- derived from state: funding txid:vout once known, the state's type, paidSat (decimal)
        channel_id TEXT,
        state_type TEXT    NOT NULL,
        paid_sat   TEXT
      ) STRICT;
      CREATE INDEX payee_channels_channel_id ON payee_channels (channel_id);

      CREATE TABLE payer_channels (
        temp_id    TEXT    NOT NULL PRIMARY KEY,
        seq        INTEGER NOT NULL UNIQUE,
        state      TEXT    NOT NULL,
        updated_at INTEGER NOT NULL,
        channel_id TEXT,
        state_type TEXT    NOT NULL,
        -- the total the payee acknowledged as stored (ackedTotalSat), decimal
        acked_sat  TEXT
      ) STRICT;
      CREATE INDEX payer_channels_channel_id ON payer_channels (channel_id);

      CREATE TABLE meta (
        key   TEXT NOT NULL PRIMARY KEY,
        value TEXT NOT NULL
      ) STRICT;

      CREATE TABLE counters (
        name TEXT    NOT NULL PRIMARY KEY,
        -- the next value to hand out
        next INTEGER NOT NULL CHECK (next >= 0)
      ) STRICT;
    `,
  },
  {
    version: 2,
    description: 'payee payments: the newest payment of a channel, without re-encoding its state',
    sql: `
      -- One row per channel: the newest payment total and the payer's signature. Loading takes it
      -- over the state's own paidSat when higher (totals only grow), so a payment costs a small
      -- upsert instead of re-encoding the whole channel state.
      CREATE TABLE payee_payments (
        temp_id   TEXT NOT NULL PRIMARY KEY,
        total_sat TEXT NOT NULL,
        signature BLOB NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 3,
    description: 'payer payments: the newest signed payment of a channel, without its state',
    sql: `
      CREATE TABLE payer_payments (
        temp_id   TEXT NOT NULL PRIMARY KEY,
        total_sat TEXT NOT NULL,
        signature BLOB NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 4,
    description: 'drop unfunded proposals: openings take cookies and hold nothing before the funding',
    sql: `
      -- Stored by paychan before opening cookies (docs/design.md, "Openings without state"), a
      -- stranger could fill this table with them; none can be funded under the new protocol.
      DELETE FROM payee_channels WHERE state_type IN ('AwaitingRefundRequest', 'AwaitingFunding', 'Abandoned');
    `,
  },
  {
    version: 5,
    description: 'duplex records: one store per data dir for Spilman, duplex and the wallet',
    sql: `
      -- Was a table of its own file (duplex.db, imported once by src/app/data-dir.ts). One row
      -- per duplex channel: the codec's encoding of its record, opaque to SQL.
      CREATE TABLE duplex_records (
        temp_id    TEXT    NOT NULL PRIMARY KEY,
        seq        INTEGER NOT NULL UNIQUE,
        record     TEXT    NOT NULL,
        updated_at INTEGER NOT NULL,
        -- derived from the record: funding txid:vout once known
        channel_id TEXT
      ) STRICT;
      CREATE INDEX duplex_records_channel_id ON duplex_records (channel_id);
    `,
  },
]);

/** The schema version this code writes: the last migration's. */
export const SCHEMA_VERSION: number = MIGRATIONS.length;

/** What {@link migrate} found and did. */
export type MigrationOutcome =
  /** The database is at {@link SCHEMA_VERSION} now (`from === to` when nothing was needed). */
  | { readonly type: 'migrated'; readonly from: number; readonly to: number }
  /** The database was written by newer code; nothing was changed. */
  | { readonly type: 'too-new'; readonly found: number; readonly known: number };

/**
 * Brings `db` to {@link SCHEMA_VERSION} in one IMMEDIATE transaction (so two processes opening
 * the same new file cannot both run migration 1).
 * @returns `too-new` without touching the database if its version is above ours.
 * @throws SqliteError if a migration fails; the transaction is rolled back and the database
 *   keeps its previous schema.
 */
export function migrate(db: BetterSqlite3.Database): MigrationOutcome {
  const run = db.transaction((): MigrationOutcome => {
    const from = db.pragma('user_version', { simple: true }) as number;
    if (from > SCHEMA_VERSION) return { type: 'too-new', found: from, known: SCHEMA_VERSION };
    for (const m of MIGRATIONS) if (m.version > from) db.exec(m.sql);
    // user_version lives in the database header, so this write commits or rolls back with the DDL.
    if (from !== SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
    return { type: 'migrated', from, to: SCHEMA_VERSION };
  });
  return run.immediate();
}
