/**
 * How a command that moved money and then stopped says so: what was paid (count and sats) is
 * printed with the error, never hidden behind it, and the exit code is non-zero. With --json,
 * stdout's last line is one object with the counts and the error's stable code.
 */
import { LinkClosedError } from '../transport/ws-client.js';
import { printJson } from './options.js';

/** A stable code for any error: its own `code` (protocol, Node system errors), else a class name. */
export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code !== '') return code;
  const cause = (err as { cause?: { code?: unknown } } | null)?.cause;
  if (typeof cause?.code === 'string' && cause.code !== '') return cause.code;
  if (err instanceof LinkClosedError) return 'LINK_CLOSED';
  return 'ERROR';
}

/** The wallet cannot fund `--capacity` (code INSUFFICIENT_FUNDS), saying where to send coins. */
export function insufficientFunds(balanceSat: bigint, capacitySat: bigint, address: string): Error {
  const message = `the wallet has ${balanceSat} sat spendable, less than --capacity ${capacitySat}; fund ${address} (on regtest: paychan regtest fund ADDRESS AMOUNT)`;
  return Object.assign(new Error(message), { code: 'INSUFFICIENT_FUNDS' });
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export interface Stopped {
  readonly json: boolean;
  /** What the command reports on success too (channel summary), for the JSON object. */
  readonly summary: object;
  /** The counts, e.g. { payments, paidNowSat, requestedPayments }. */
  readonly counts: Record<string, number | bigint>;
  /** One human line: "stopped after 3 of 10 payments (300 sat)". */
  readonly done: string;
  readonly error: unknown;
}

/**
 * The words that follow what was acknowledged when more was signed: the payee holds the
 * signature and may close with it, so the payer is exposed up to the signed total.
 * @returns "" when nothing beyond the acknowledged total is signed.
 */
export function signedBeyondAcked(signedSat: bigint, ackedSat: bigint): string {
  return signedSat > ackedSat ? `; ${signedSat} sat signed; the payee may claim up to that` : '';
}

/** Reports a run that stopped part way (or was refused whole); @returns the exit code, 1. */
export function reportStopped(r: Stopped): number {
  process.stderr.write(`paychan: ${r.done}: ${errorText(r.error)}\n`);
  if (r.json) printJson({ ...r.summary, ...r.counts, error: { code: errorCode(r.error), message: errorText(r.error) } });
  return 1;
}

/** An AbortSignal that fires on SIGINT/SIGTERM while `run` runs, so a run can report before it exits. */
export async function interruptible<T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const stop = (signal: string) => controller.abort(Object.assign(new Error(`interrupted (${signal})`), { code: 'INTERRUPTED' }));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    return await run(controller.signal);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

/**
 * `fetch()` rejects with a bare "fetch failed" TypeError; the reason (ECONNREFUSED, a DNS
 * failure, TLS) is in its `cause`. @returns an error naming the URL and that cause.
 */
export function fetchFailure(url: string, err: unknown): unknown {
  if (!(err instanceof TypeError) || err.cause === undefined) return err;
  const cause = err.cause as { code?: unknown; message?: unknown; errors?: { message?: unknown }[] };
  // Several addresses tried (localhost: ::1 and 127.0.0.1): an AggregateError, empty message.
  const message = typeof cause.message === 'string' && cause.message !== '' ? cause.message : (cause.errors ?? []).map((e) => String(e.message)).join('; ');
  const code = typeof cause.code === 'string' ? cause.code : undefined;
  const text = !code || message.includes(code) ? message : message ? `${code}: ${message}` : code;
  return new Error(`GET ${url} failed: ${text || err.message}`, { cause: err.cause });
}
