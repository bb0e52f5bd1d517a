/**
 * The errors every {@link Store} adapter reports, with stable codes: a driver or an operator
 * reads the same code from SQLite, memory or PostgreSQL.
 */
export const STORE_ERROR_CODES = {
  STORE_CLOSED: 'the store is closed',
  COMMIT_FAILED: 'the batch could not be committed; none of its saves is stored',
  SCHEMA_TOO_NEW: 'the database was written by a newer paychan; upgrade paychan to open it',
  NOT_DURABLE: 'the database cannot run in the durable mode the store requires (SQLite: WAL journal; PostgreSQL: synchronous_commit on)',
  SYNC_FAILED: 'a batch was written but the disk refused to make it durable; it may or may not survive a power cut, and the store takes no more writes: reopen it',
  CORRUPT_ROW: 'a stored row cannot be decoded',
  FENCED: "another instance holds this channel's lease: the write was not stored; drop the channel",
  DRIVER_MISSING: "the database driver this store location needs is not installed",
} as const;

export type StoreErrorCode = keyof typeof STORE_ERROR_CODES;

/** An error of a store adapter, with a stable `code`; `cause` holds the driver's error, if any. */
export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    detail?: string,
    options?: { cause?: unknown },
  ) {
    super(`${code}: ${detail ?? STORE_ERROR_CODES[code]}`, options);
    this.name = 'StoreError';
  }
}

/** @returns true if `err` is a {@link StoreError} (with `code`, when given). */
export function isStoreError(err: unknown, code?: StoreErrorCode): err is StoreError {
  return err instanceof StoreError && (code === undefined || err.code === code);
}

export function closedError(what: string): StoreError {
  return new StoreError('STORE_CLOSED', `${what}: the store is closed`);
}
