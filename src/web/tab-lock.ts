/**
 * One tab at a time per payer store. Two tabs of the same origin share one IndexedDB store, but
 * each would pay from its own copy of the channel's state in memory: the second tab's payments
 * would sign totals that do not count the first tab's, the payee would refuse them as not
 * increasing, and the page's record would no longer be what the payee holds. So a payer holds an
 * exclusive Web Lock named after its store for as long as it is open (the browser releases it
 * when the tab closes or reloads, even on a crash), and a second tab is told so instead of paying.
 *
 * Why wait a little rather than fail at once: on a reload the new document may start before the
 * old one's lock is released.
 *
 * Browsers give Web Locks to secure contexts only (https, or http on localhost): a page served
 * over plain http from another host gets no lock, and two of its tabs are not kept apart.
 */

/** Thrown when another tab or window of this origin holds the payer's store. */
export class StoreInUseError extends Error {
  readonly code = 'STORE_IN_USE';
  constructor(storeName: string) {
    super(`the payer store "${storeName}" is in use by another tab or window of this site: pay from that one, or close it`);
    this.name = 'StoreInUseError';
  }
}

/**
 * The part of the Web Locks API used here (`navigator.locks`), spelled out rather than taken
 * from the DOM library: the package's types must check in a Node program without it.
 */
export interface TabLocks {
  request(name: string, options: { mode: 'exclusive'; signal: AbortSignal }, callback: (lock: unknown) => Promise<void>): Promise<unknown>;
}

/** How long a payer waits for a lock another document holds before giving up. */
export const TAB_LOCK_WAIT_MS = 3_000;

/**
 * Takes the store's lock; resolves with its release.
 * Where the browser has no Web Locks (older browsers, Node), resolves at once: one tab assumed.
 * @throws StoreInUseError (rejects) if another document holds it for longer than `waitMs`.
 */
export async function holdTabLock(storeName: string, locks: TabLocks | undefined = (globalThis as { navigator?: { locks?: TabLocks } }).navigator?.locks, waitMs = TAB_LOCK_WAIT_MS): Promise<() => void> {
  if (!locks) return () => undefined;
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const signal = AbortSignal.timeout(waitMs);
  await new Promise<void>((granted, refused) => {
    locks
      .request(`paychan-payer-store:${storeName}`, { mode: 'exclusive', signal }, () => {
        granted();
        return held;
      })
      .catch((err: unknown) => refused(signal.aborted ? new StoreInUseError(storeName) : err));
  });
  return release;
}
