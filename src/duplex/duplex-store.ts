/**
 * Where the duplex driver keeps its channel records, as it uses them today: synchronously, each
 * call durable when it returns, so a record is saved before any signature that depends on it
 * leaves the process. The records live in the side's one store (the Store port, src/store), and
 * `SqliteStore.duplexRecordsNow()` gives this face of it. Interim: once the driver awaits the
 * port's `saveDuplexRecords`/`deleteDuplexRecord`, this interface goes.
 */
import type { DuplexRecord } from './duplex-record.js';

export interface DuplexStore {
  /** Every record, in first-save order. */
  loadAll(): DuplexRecord[];
  /** Saves several records in one transaction (a rollover ends one channel and starts the next). */
  saveAll(records: readonly DuplexRecord[]): void;
  /** Forgets a record (an opening that was abandoned before this side signed anything). */
  delete(tempId: string): void;
}
