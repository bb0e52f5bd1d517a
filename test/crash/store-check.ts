/**
 * Reads what the payee's store holds: the harness's view of "durably stored". SQLite with no
 * payee running; PostgreSQL at any time (its readers see every committed write, and the other
 * instances keep running there).
 *
 * Two readers:
 * - {@link readPayeeStore} opens the store the way the payee does (`openSqliteStore`,
 *   `loadPayeeChannels`): the authoritative reading, used at the end of the stream.
 * - {@link peekPayeeStore} opens the database file read-only, right after a SIGKILL, before the
 *   next payee starts. A read-only connection never checkpoints or deletes the WAL, so the next
 *   payee recovers exactly the files the killed one left behind (its own crash recovery is what is
 *   being tested); the regular store would fold the WAL into the database when it closes.
 */
import Database from 'better-sqlite3';
import type { PayeeState } from '../../src/protocol/payee-machine.js';
import { decodeState } from '../../src/store/codec.js';
import { loadPgDriver } from '../../src/store/postgres-store.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { withNewestPayment } from '../../src/store/store.js';

/** One payee channel as stored. */
export interface StoredChannel {
  readonly tempId: string;
  /** Funding outpoint `txid:vout`, once the payee knows it. */
  readonly channelId: string | null;
  readonly stateType: PayeeState['type'];
  /** The newest payment total stored (0 before any payment). */
  readonly paidSat: bigint;
  /** The close transaction's id, in Closing and Closed. */
  readonly closeTxid: string | null;
}

/** The stored channels, keyed by channel id (channels without one are left out). */
export type StoreView = ReadonlyMap<string, StoredChannel>;

function view(rows: readonly { tempId: string; state: PayeeState }[]): StoreView {
  const out = new Map<string, StoredChannel>();
  for (const { tempId, state } of rows) {
    if (!('channel' in state)) continue;
    out.set(state.channel.id, {
      tempId,
      channelId: state.channel.id,
      stateType: state.type,
      paidSat: 'paidSat' in state ? state.paidSat : 0n,
      closeTxid: state.type === 'Closing' ? state.close.txid : state.type === 'Closed' ? state.closeTxid : null,
    });
  }
  return out;
}

/** Opens the store as the payee does, reads every channel, closes it. */
export async function readPayeeStore(dbFile: string): Promise<StoreView> {
  const store = openSqliteStore(dbFile);
  try {
    return view(await store.loadPayeeChannels());
  } finally {
    await store.close();
  }
}

/** Reads every channel through a read-only connection that leaves the files as they are. */
export function peekPayeeStore(dbFile: string): StoreView {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT temp_id, state FROM payee_channels ORDER BY seq').all() as { temp_id: string; state: string }[];
    // Payments are stored apart from the state (see the store's payee_payments): merge as the store does.
    const payments = new Map(
      (db.prepare('SELECT temp_id, total_sat, signature FROM payee_payments').all() as { temp_id: string; total_sat: string; signature: Uint8Array }[]).map((p) => [
        p.temp_id,
        { totalSat: BigInt(p.total_sat), signature: Uint8Array.from(p.signature) },
      ]),
    );
    return view(rows.map((r) => ({ tempId: r.temp_id, state: withNewestPayment(decodeState<PayeeState>(r.state), payments.get(r.temp_id)) })));
  } finally {
    db.close();
  }
}

/**
 * Reads every payee channel committed in the PostgreSQL database at `url`, merging payments as
 * the store does, through a plain connection (no lease: a reader takes nothing from the payees).
 */
export async function peekPostgresStore(url: string): Promise<StoreView> {
  const pg = await loadPgDriver();
  const target = new URL(url);
  target.search = '';
  const client = new pg.Client({ connectionString: target.toString() });
  await client.connect();
  try {
    // One snapshot for both tables: a payment committed between two reads cannot be half-seen.
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    const rows = (await client.query<{ temp_id: string; state: string }>('SELECT temp_id, state FROM payee_channels ORDER BY seq')).rows;
    const payments = new Map(
      (await client.query<{ temp_id: string; total_sat: string; signature: Buffer }>('SELECT temp_id, total_sat, signature FROM payee_payments')).rows.map((p) => [
        p.temp_id,
        { totalSat: BigInt(p.total_sat), signature: new Uint8Array(p.signature) },
      ]),
    );
    await client.query('COMMIT');
    return view(rows.map((r) => ({ tempId: r.temp_id, state: withNewestPayment(decodeState<PayeeState>(r.state), payments.get(r.temp_id)) })));
  } finally {
    await client.end();
  }
}
