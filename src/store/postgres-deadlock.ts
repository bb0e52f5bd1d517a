/**
 * Deadlocks on PostgreSQL: the writer (FOR SHARE on lease rows), lease takeovers and renewals
 * all lock lease rows. They lock in temp_id order, which keeps them apart; what is left (rows
 * locked across two statements of one transaction) Postgres breaks by aborting one side with
 * 40P01, having changed nothing: that side runs again.
 */

/** How many times a statement or transaction that lost a deadlock is run in all. */
export const DEADLOCK_RETRIES = 4;

/** Postgres aborted the statement to break a deadlock (SQLSTATE 40P01). */
export function isDeadlock(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '40P01';
}

/** Runs `statement`, again when Postgres aborted it to break a deadlock. */
export async function retryDeadlock<T>(statement: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await statement();
    } catch (err) {
      if (attempt >= DEADLOCK_RETRIES || !isDeadlock(err)) throw err;
    }
  }
}
