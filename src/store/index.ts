/**
 * The store: the {@link Store} port and its contract, the state codec, and the SQLite adapter.
 * Drivers depend on the port; only the composition root (CLI, demo) picks an adapter.
 */
export type { Store, StoredPayeeChannel, StoredPayerChannel } from './store.js';
export { decodeState, encodeState } from './codec.js';
export {
  isStoreError,
  openSqliteStore,
  SqliteStore,
  STORE_ERROR_CODES,
  StoreError,
  type SqlitePragmas,
  type SqliteStoreOptions,
  type SqliteStoreStats,
  type StoreErrorCode,
} from './sqlite-store.js';
export { MIGRATIONS, SCHEMA_VERSION, type Migration } from './migrations.js';
