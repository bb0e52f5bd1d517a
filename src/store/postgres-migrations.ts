/**
 * The PostgreSQL store's schema, as numbered migrations tracked in a table of their own
 * (`paychan_schema`), applied in one transaction under an advisory lock: several payee instances
 * starting at once against one database migrate it once, and a database written by a newer
 * paychan is recognised and left alone (as the SQLite store's `user_version`, migrations.ts).
 *
 * Same tables and meaning as SQLite's schema version 5 (migration 1 here is that shape): one row
 * per channel with the codec's encoding of its newest state, the newest payment apart from it
 * (the hot path writes that small row only), meta, counters, duplex records. Amounts are BIGINT
 * (21e14 sat fits in 63 bits); the driver returns them as strings, read back as bigint. Released
 * migrations are never edited; a change is a new entry at the end.
 */
import type { Pool, PoolClient } from 'pg';

export interface PgMigration {
  readonly version: number;
  readonly description: string;
  readonly sql: string;
}

export const PG_MIGRATIONS: readonly PgMigration[] = Object.freeze([
  {
    version: 1,
    description: 'payee and payer channels with their newest payments, meta, counters, duplex records',
    sql: `
      CREATE TABLE payee_channels (
        temp_id    TEXT   NOT NULL PRIMARY KEY,
        -- first-save order: from a sequence on insert, untouched by an update
        seq        BIGINT NOT NULL GENERATED ALWAYS AS IDENTITY UNIQUE,
        state      TEXT   NOT NULL,
        updated_at BIGINT NOT NULL,
        -- derived from state for operators and on-demand loading: funding txid:vout, type, paidSat
        channel_id TEXT,
        state_type TEXT   NOT NULL,
        paid_sat   BIGINT
      );
      CREATE INDEX payee_channels_channel_id ON payee_channels (channel_id);
      CREATE TABLE payee_payments (
        temp_id   TEXT   NOT NULL PRIMARY KEY,
        total_sat BIGINT NOT NULL,
        signature BYTEA  NOT NULL
      );
      CREATE TABLE payer_channels (
        temp_id    TEXT   NOT NULL PRIMARY KEY,
        seq        BIGINT NOT NULL GENERATED ALWAYS AS IDENTITY UNIQUE,
        state      TEXT   NOT NULL,
        updated_at BIGINT NOT NULL,
        channel_id TEXT,
        state_type TEXT   NOT NULL,
        acked_sat  BIGINT
      );
      CREATE INDEX payer_channels_channel_id ON payer_channels (channel_id);
      CREATE TABLE payer_payments (
        temp_id   TEXT   NOT NULL PRIMARY KEY,
        total_sat BIGINT NOT NULL,
        signature BYTEA  NOT NULL
      );
      CREATE TABLE meta (
        key   TEXT NOT NULL PRIMARY KEY,
        value TEXT NOT NULL
      );
      CREATE TABLE counters (
        name TEXT   NOT NULL PRIMARY KEY,
        next BIGINT NOT NULL CHECK (next >= 0)
      );
      CREATE TABLE duplex_records (
        temp_id    TEXT   NOT NULL PRIMARY KEY,
        seq        BIGINT NOT NULL GENERATED ALWAYS AS IDENTITY UNIQUE,
        record     TEXT   NOT NULL,
        updated_at BIGINT NOT NULL,
        channel_id TEXT
      );
      CREATE INDEX duplex_records_channel_id ON duplex_records (channel_id);
    `,
  },
  {
    version: 2,
    description: 'channel leases: one writer per payee channel, fenced by a token',
    sql: `
      -- A payee instance writes a channel only while it holds the channel's lease; token grows on
      -- every takeover and every fenced write checks it (docs/scale.md).
      CREATE TABLE channel_leases (
        temp_id    TEXT        NOT NULL PRIMARY KEY,
        owner      TEXT        NOT NULL,
        token      BIGINT      NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
      );
      CREATE INDEX channel_leases_owner ON channel_leases (owner);
    `,
  },
]);

export const PG_SCHEMA_VERSION: number = PG_MIGRATIONS.length;

/** An arbitrary constant of ours: the advisory lock key migrations run under. */
const MIGRATION_LOCK_KEY = 0x70617963; // "payc"

export type PgMigrationOutcome = { readonly type: 'migrated'; readonly from: number; readonly to: number } | { readonly type: 'too-new'; readonly found: number; readonly known: number };

/**
 * Brings the database to {@link PG_SCHEMA_VERSION} in one transaction, serialized across
 * processes by a transaction-scoped advisory lock.
 * @throws the driver's error if a migration fails (rolled back: the old schema stays).
 */
export async function migratePostgres(pool: Pool): Promise<PgMigrationOutcome> {
  const client: PoolClient = await pool.connect();
  try {
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
      await client.query('CREATE TABLE IF NOT EXISTS paychan_schema (version INTEGER NOT NULL PRIMARY KEY, description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())');
      const found = Number((await client.query<{ v: number | null }>('SELECT max(version) AS v FROM paychan_schema')).rows[0]?.v ?? 0);
      if (found > PG_SCHEMA_VERSION) {
        await client.query('ROLLBACK');
        return { type: 'too-new', found, known: PG_SCHEMA_VERSION };
      }
      for (const m of PG_MIGRATIONS) {
        if (m.version <= found) continue;
        await client.query(m.sql);
        await client.query('INSERT INTO paychan_schema (version, description) VALUES ($1, $2)', [m.version, m.description]);
      }
      await client.query('COMMIT');
      return { type: 'migrated', from: found, to: PG_SCHEMA_VERSION };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  } finally {
    client.release();
  }
}
