/**
 * The one table of store adapters: a side's data location names its adapter, as a chain URL
 * names its backend (src/chain/connect.ts). Adding an adapter is its one file implementing the Store port
 * plus one line here, and one call of the contract suite in test/integration/store.test.ts.
 */
import { MemoryStore } from './memory-store.js';
import { openPostgresStore } from './postgres-store.js';
import { openSqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';

/** What a composition root knows about the process opening a store. */
export interface OpenStoreOptions {
  /**
   * This instance's stable name (its data dir's), for stores several instances share: its
   * channel leases (store.ts, ChannelLeases). Ignored by single-process stores.
   */
  readonly owner?: string;
  readonly log?: (line: string) => void;
}

type StoreOpener = (location: string, options: OpenStoreOptions) => Store;

/** URL scheme → adapter. A location without a scheme is a SQLite file path. */
const ADAPTERS: Readonly<Record<string, StoreOpener>> = {
  'sqlite:': (location) => openSqliteStore(location.slice('sqlite:'.length)),
  // Nothing survives the process: tests and throwaway demos only.
  'memory:': () => new MemoryStore(),
  // Several payee instances on one database (docs/scale.md); the `pg` driver loads on first use.
  'postgres:': (location, options) => openPostgresStore(location, options),
  'postgresql:': (location, options) => openPostgresStore(location, options),
};

/** The schemes {@link openStore} knows, for help texts and errors. */
export const STORE_SCHEMES: readonly string[] = Object.freeze(Object.keys(ADAPTERS));

/**
 * Opens the store at `location`: `sqlite:FILE` or a plain file path (SQLite), `memory:`,
 * `postgres://…` (PostgreSQL: connects in the background; its calls wait for that).
 * @throws TypeError for a location with a scheme no adapter serves (the message lists the known
 *   ones); whatever the adapter throws opening it.
 */
export function openStore(location: string, options: OpenStoreOptions = {}): Store {
  if (typeof location !== 'string' || location === '') throw new TypeError('store location must be a file path or a URL');
  const scheme = /^([a-z][a-z0-9+.-]*:)(?!\\)/i.exec(location)?.[1]?.toLowerCase();
  // A Windows drive letter (C:\…) or a bare path is a file, not a scheme.
  if (scheme === undefined || /^[a-z]:$/i.test(scheme)) return openSqliteStore(location);
  const open = ADAPTERS[scheme];
  if (!open) throw new TypeError(`no store adapter for ${scheme} locations; known: ${STORE_SCHEMES.join(', ')} or a file path`);
  return open(location, options);
}
