/**
 * What the payer's links share, in Node (ws-client.ts) and in a page (browser-link.ts): the
 * reconnect backoff, the "closed for good" error and option checks. Browser-safe.
 */

export interface ReconnectOptions {
  /** First retry delay, ms. */
  readonly minDelayMs: number;
  /** Largest retry delay, ms. */
  readonly maxDelayMs: number;
}

export const DEFAULT_RECONNECT: ReconnectOptions = Object.freeze({ minDelayMs: 250, maxDelayMs: 30_000 });

/** The link is closed for good (by `close()`, or a drop with `reconnect: false`). */
export class LinkClosedError extends Error {
  constructor(message = 'the link to the payee is closed') {
    super(message);
    this.name = 'LinkClosedError';
  }
}

/**
 * "Equal jitter": half the exponential delay for sure, the other half at random, so retries
 * spread out but never come sooner than half the backoff.
 */
export function backoffDelay(attempt: number, { minDelayMs, maxDelayMs }: ReconnectOptions, random: () => number = Math.random): number {
  const capped = Math.min(maxDelayMs, minDelayMs * 2 ** Math.min(attempt, 30));
  return capped / 2 + random() * (capped / 2);
}

/** @throws RangeError unless 0 < minDelayMs ≤ maxDelayMs. */
export function checkReconnect(reconnect: ReconnectOptions | false): ReconnectOptions | false {
  if (reconnect && !(reconnect.minDelayMs > 0 && reconnect.maxDelayMs >= reconnect.minDelayMs)) {
    throw new RangeError('reconnect delays must satisfy 0 < minDelayMs ≤ maxDelayMs');
  }
  return reconnect;
}

/** @throws RangeError unless `value` is a positive safe integer. */
export function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}
