/**
 * Where the duplex driver keeps its channel states: the port it needs, and that port over the
 * side's one store (the Store port, src/store), whose duplex records are these states.
 */
import type { DuplexChannelState } from '../protocol/duplex-state.js';
import type { Store } from '../store/store.js';

/**
 * Contract: `save` resolves once every state given is durable, all of them or none (a rollover
 * ends one channel and starts the next in one write), and saves become durable in the order
 * they were called; `delete` forgets a channel whose side signed nothing; `loadAll` resolves
 * with every stored state, oldest first, after every save made before it. The peer reads it
 * once, when it is opened (`DuplexPeer.open`).
 */
export interface DuplexStatePort {
  save(states: readonly DuplexChannelState[]): Promise<void>;
  delete(tempId: string): Promise<void>;
  loadAll(): Promise<readonly DuplexChannelState[]>;
}

/** The port over the side's one store (the Store port: any adapter). */
export function duplexStatePort(store: Pick<Store, 'saveDuplexRecords' | 'deleteDuplexRecord' | 'loadDuplexRecords'>): DuplexStatePort {
  return {
    save: (states) => store.saveDuplexRecords(states),
    delete: (tempId) => store.deleteDuplexRecord(tempId),
    loadAll: () => store.loadDuplexRecords(),
  };
}
