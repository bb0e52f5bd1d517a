/**
 * A run of equal payments on one channel (`paychan payer pay AMOUNT --count N`), pipelined, that
 * either is refused whole before anything is signed or says exactly what it paid when it stops
 * part way: money already moved must never be hidden behind the error that stopped the rest.
 */
import type { PayerClient } from './payer-client.js';

export interface PayRun {
  /** Payments the payee acknowledged during this run. */
  readonly payments: number;
  /** What those payments added, satoshis. */
  readonly paidSat: bigint;
  /** The newest total the payee acknowledged on the channel. */
  readonly ackedTotalSat: bigint;
  /**
   * The newest total the payer signed on the channel: above `ackedTotalSat` when payments were
   * in flight as the run stopped, and the payee may close with the highest signed one.
   */
  readonly signedTotalSat: bigint;
  /** Why the run stopped before `count` payments; absent when all were acknowledged. */
  readonly error?: Error;
}

export interface PayRunOptions {
  /** Stops issuing payments and stops waiting for acknowledgements (e.g. on SIGINT). */
  readonly signal?: AbortSignal;
  /** Most payments in flight at once. Default 1,000 (the client's own default bound). */
  readonly window?: number;
}

/**
 * Pays `amountSat` `count` times. Nothing is signed unless all `count` payments can be made
 * (the protocol's own rule, {@link PayerClient.checkPayments}); once paying, the first failure
 * stops the run and the result carries it with what was acknowledged until then.
 * @throws CannotPayError before paying anything when the run cannot be paid whole.
 */
export async function payRepeatedly(client: PayerClient, amountSat: bigint, count: number, options: PayRunOptions = {}): Promise<PayRun> {
  client.checkPayments(amountSat, count);
  const window = options.window ?? 1000;
  let inFlight = 0;
  let wake: (() => void) | null = null;
  let payments = 0;
  let error: Error | undefined;
  const signal = options.signal;
  const stopped = () => error ?? (signal?.aborted ? abortError(signal) : undefined);
  const onAbort = () => wake?.();
  signal?.addEventListener('abort', onAbort, { once: true });
  /** Resolves when a payment settles or the run is aborted. */
  const settled = () => new Promise<void>((resolve) => (wake = resolve));
  try {
    for (let i = 0; i < count && !stopped(); i++) {
      inFlight++;
      client.pay(amountSat).then(
        () => {
          payments++;
          inFlight--;
          wake?.();
        },
        (err: unknown) => {
          error ??= err instanceof Error ? err : new Error(String(err));
          inFlight--;
          wake?.();
        },
      );
      while (inFlight >= window && !signal?.aborted) await settled();
    }
    // The ones in flight are acknowledged or fail with the client (an abort stops the wait).
    while (inFlight > 0 && !signal?.aborted) await settled();
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  const s = client.state;
  const ackedTotalSat = s && 'ackedTotalSat' in s ? s.ackedTotalSat : 0n;
  const signedTotalSat = s && 'signedTotalSat' in s ? s.signedTotalSat : ackedTotalSat;
  const why = payments < count ? (stopped() ?? new Error('stopped')) : undefined;
  return { payments, paidSat: amountSat * BigInt(payments), ackedTotalSat, signedTotalSat, ...(why ? { error: why } : {}) };
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('interrupted');
}

/**
 * What a set of channels gained while in use (paying for HTTP requests may move from a used-up
 * channel to a new one): the acknowledged totals now, less those when each was first seen.
 */
export class PaidTally {
  private readonly start = new Map<PayerClient, bigint>();

  /** Starts counting `client` (once); @returns it. */
  track(client: PayerClient): PayerClient {
    if (!this.start.has(client)) this.start.set(client, ackedOf(client));
    return client;
  }

  paidSat(): bigint {
    let sum = 0n;
    for (const [client, from] of this.start) sum += ackedOf(client) - from;
    return sum;
  }
}

function ackedOf(client: PayerClient): bigint {
  const s = client.state;
  return s && 'ackedTotalSat' in s ? s.ackedTotalSat : 0n;
}
