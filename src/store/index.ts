/**
 * The store: the {@link Store} port and its contract, the state codec, and its adapters (SQLite,
 * memory).
 * Drivers depend on the port; only the composition root (CLI, demo) picks an adapter.
 */
export type { Store, StoredDuplexRecord, StoredPayeeChannel, StoredPayerChannel } from './store.js';
export { WALLET_META_KEY } from './store.js';
export { MemoryDatabase, MemoryStore } from './memory-store.js';
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
