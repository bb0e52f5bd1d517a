/**
 * Durable duplex channel states: one SQLite file (`duplex.db`, WAL, synchronous=FULL), one row
 * per channel holding its whole state as JSON, written in its own transaction before any
 * signature that depends on it leaves the process. Duplex updates are coarse (each one spends a
 * Δ of the channel's lifetime), so a commit per update costs nothing that matters; the Spilman
 * store's group commit is not needed here. Rows written by the older peer (a record with a
 * `phase`) are read as the tagged state they stand for (duplex-state-legacy.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { channelIdOf, type DuplexChannelState } from '../protocol/duplex-state.js';
import { decodeDuplexState } from '../protocol/duplex-state-legacy.js';
import { decodeState, encodeState } from '../store/codec.js';

/**
 * Where the duplex driver keeps its channel states. Contract: `save` resolves once every state
 * given is durable, all of them or none (a rollover ends one channel and starts the next in one
 * write); saves resolve in the order they were called; `delete` forgets a channel whose side
 * signed nothing; `loadAll` returns every stored state, oldest first. `loadAll` is synchronous:
 * the peer reads it once, when it is built.
 */
export interface DuplexStatePort {
  save(states: readonly DuplexChannelState[]): Promise<void>;
  delete(tempId: string): Promise<void>;
  loadAll(): readonly DuplexChannelState[];
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS duplex_channels (
  temp_id TEXT PRIMARY KEY,
  channel_id TEXT,
  record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS duplex_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

export class DuplexStore implements DuplexStatePort {
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

  private saveOne(state: DuplexChannelState): void {
    this.db
      .prepare('INSERT INTO duplex_channels (temp_id, channel_id, record) VALUES (?, ?, ?) ON CONFLICT (temp_id) DO UPDATE SET channel_id = excluded.channel_id, record = excluded.record')
      .run(state.tempId, channelIdOf(state), encodeState(state));
  }

  /** Saves several states in one transaction (durable when it resolves: synchronous=FULL). */
  save(states: readonly DuplexChannelState[]): Promise<void> {
    this.db.transaction(() => states.forEach((s) => this.saveOne(s)))();
    return Promise.resolve();
  }

  /** Forgets a channel (an opening that was abandoned before this side signed anything). */
  delete(tempId: string): Promise<void> {
    this.db.prepare('DELETE FROM duplex_channels WHERE temp_id = ?').run(tempId);
    return Promise.resolve();
  }

  loadAll(): DuplexChannelState[] {
    return (this.db.prepare('SELECT record FROM duplex_channels ORDER BY rowid').all() as { record: string }[]).map((row) => decodeDuplexState(decodeState<unknown>(row.record)));
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
