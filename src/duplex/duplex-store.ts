/**
 * Where the duplex driver keeps its channel states: the port it needs, and that port over the
 * side's one store (the Store port, src/store), whose duplex records are these states.
 */
import type { DuplexChannelState } from '../protocol/duplex-state.js';
import type { Store } from '../store/store.js';

/**
 * Contract: `save` resolves once every state given is durable, all of them or none (a rollover
 * ends one channel and starts the next in one write), and saves become durable in the order
 * they were called; `delete` forgets a channel whose side signed nothing; `loadAll` returns
 * every stored state, oldest first. `loadAll` is synchronous: the peer reads it once, when it is
 * built (the peer's constructor is synchronous; an async factory would lift this).
 */
export interface DuplexStatePort {
  save(states: readonly DuplexChannelState[]): Promise<void>;
  delete(tempId: string): Promise<void>;
  loadAll(): readonly DuplexChannelState[];
}

/** The store's synchronous read of its duplex records (SqliteStore.duplexRecordsNow()). */
export interface DuplexRecordsNow {
  loadAll(): readonly DuplexChannelState[];
}

/** The port over the side's one store: writes through the Store port (durable on resolve), the first read through its synchronous face. */
export function duplexStatePort(store: Pick<Store, 'saveDuplexRecords' | 'deleteDuplexRecord'> & { duplexRecordsNow(): DuplexRecordsNow }): DuplexStatePort {
  const now = store.duplexRecordsNow();
  return {
    save: (states) => store.saveDuplexRecords(states),
    delete: (tempId) => store.deleteDuplexRecord(tempId),
    loadAll: () => now.loadAll(),
  };
}
