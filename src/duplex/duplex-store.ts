/**
 * Durable duplex channel records: one SQLite file (`duplex.db`, WAL, synchronous=FULL), one row
 * per channel holding its whole record as JSON, written in its own transaction before any
 * signature that depends on it leaves the process. Duplex updates are coarse (each one spends a
 * Δ of the channel's lifetime), so a commit per update costs nothing that matters; the Spilman
 * store's group commit is not needed here.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { decodeState, encodeState } from '../store/codec.js';
import type { DuplexRecord } from './duplex-record.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS duplex_channels (
  temp_id TEXT PRIMARY KEY,
  channel_id TEXT,
  record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS duplex_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

export class DuplexStore {
  private constructor(private readonly db: Database.Database) {}

  /** Opens (creating) the store at `file`; `:memory:` for tests that do not restart. */
  static open(file: string): DuplexStore {
    if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const db = new Database(file);
    if (file !== ':memory:') fs.chmodSync(file, 0o600);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec(SCHEMA);
    return new DuplexStore(db);
  }

  save(record: DuplexRecord): void {
    this.db.prepare('INSERT INTO duplex_channels (temp_id, channel_id, record) VALUES (?, ?, ?) ON CONFLICT (temp_id) DO UPDATE SET channel_id = excluded.channel_id, record = excluded.record').run(record.tempId, record.channelId ?? null, encodeState(record));
  }

  /** Saves several records in one transaction (a rollover ends one channel and starts the next). */
  saveAll(records: readonly DuplexRecord[]): void {
    this.db.transaction(() => records.forEach((r) => this.save(r)))();
  }

  /** Forgets a record (an opening that was abandoned before this side signed anything). */
  delete(tempId: string): void {
    this.db.prepare('DELETE FROM duplex_channels WHERE temp_id = ?').run(tempId);
  }

  loadAll(): DuplexRecord[] {
    return (this.db.prepare('SELECT record FROM duplex_channels ORDER BY rowid').all() as { record: string }[]).map((row) => decodeState<DuplexRecord>(row.record));
  }

  getMeta(key: string): string | undefined {
    return (this.db.prepare('SELECT value FROM duplex_meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }

  putMeta(key: string, value: string): void {
    this.db.prepare('INSERT OR REPLACE INTO duplex_meta (key, value) VALUES (?, ?)').run(key, value);
  }

  close(): void {
    this.db.close();
  }
}
