/**
 * What the duplex driver's calls wait for: the peer's answers, keyed `<tempId>:<what>`
 * (`countersign:<i>`, `request:<id>`, `opened`, `closed`, `rolled`, `resumed`). A step settles
 * the key its input answers; a wait fails after its timeout, or never (null) for work queued
 * until the peer returns.
 */
type Waiter = { key: string; resolve: (value: unknown) => void; reject: (err: Error) => void; timer: NodeJS.Timeout };

export class AnswerWaiters {
  private readonly waiters = new Map<string, Waiter>();

  /** @param defaultTimeoutMs how long a wait lasts unless told otherwise. */
  constructor(private readonly defaultTimeoutMs: number) {}

  /** A promise {@link settle} resolves; it fails after `timeoutMs` (null: never). */
  wait<T>(key: string, what: string, timeoutMs: number | null = this.defaultTimeoutMs): Promise<T> {
    const answer = new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          if (timeoutMs === null) return;
          if (this.waiters.get(waiter.key) === waiter) this.waiters.delete(waiter.key);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
        },
        timeoutMs ?? 2 ** 31 - 1,
      );
      if (timeoutMs === null) timer.unref();
      const waiter: Waiter = { key, resolve: resolve as (v: unknown) => void, reject, timer };
      this.waiters.set(key, waiter);
    });
    // A waiter can fail before its caller awaits it (the opening's answer times out while the
    // opening still syncs the wallet; a resume's countersignature is rejected while the caller
    // still awaits the resume's answer): the caller sees the failure when it awaits; the process
    // must not die of an unhandled rejection meanwhile.
    answer.catch(() => undefined);
    return answer;
  }

  settle(key: string, value: unknown, error?: Error): void {
    const waiter = this.waiters.get(key);
    if (!waiter) return;
    this.waiters.delete(key);
    clearTimeout(waiter.timer);
    if (error) waiter.reject(error);
    else waiter.resolve(value);
  }

  /** Drops a waiter whose call failed before anything was sent. */
  unwait(key: string): void {
    const waiter = this.waiters.get(key);
    if (!waiter) return;
    this.waiters.delete(key);
    clearTimeout(waiter.timer);
  }

  /** The answer awaited under `from` will come under `to` (a pay request moved to a rollover's new channel). */
  move(from: string, to: string): void {
    const waiter = this.waiters.get(from);
    if (!waiter) return;
    this.waiters.delete(from);
    waiter.key = to;
    this.waiters.set(to, waiter);
  }

  has(key: string): boolean {
    return this.waiters.has(key);
  }

  /** Fails every wait of channel `tempId` but its queued pay requests (they wait for the peer's return). */
  rejectChannel(tempId: string, error: Error): void {
    for (const key of [...this.waiters.keys()]) if (key.startsWith(`${tempId}:`) && !key.startsWith(`${tempId}:request:`)) this.settle(key, undefined, error);
  }
}
