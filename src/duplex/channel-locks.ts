/**
 * Per-channel serialisation for the duplex driver: an operation under a channel's lock runs
 * once every earlier one on that channel has settled (either way).
 */

/**
 * Runs `fn` once whatever `queues` holds for `key` has settled (either way), and keeps its own
 * settling there for the next caller; the entry goes once nothing is queued behind it.
 */
export function chainAfter<T>(queues: Map<string, Promise<unknown>>, key: string, fn: () => Promise<T>): Promise<T> {
  const before = queues.get(key) ?? Promise.resolve();
  const run = before.then(fn, fn);
  const tail = run.catch(() => undefined);
  queues.set(key, tail);
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return run;
}

export class ChannelLocks {
  private readonly tails = new Map<string, Promise<unknown>>();
  private readonly holders = new Map<string, number>();

  /** Runs `fn` under `key`'s lock. `fn` must not take the same lock again (it would wait for itself). */
  locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    this.holders.set(key, (this.holders.get(key) ?? 0) + 1);
    return chainAfter(this.tails, key, fn).finally(() => {
      const left = (this.holders.get(key) ?? 1) - 1;
      if (left === 0) this.holders.delete(key);
      else this.holders.set(key, left);
    });
  }

  /** How many operations hold or wait for `key`'s lock. */
  queueLength(key: string): number {
    return this.holders.get(key) ?? 0;
  }
}
