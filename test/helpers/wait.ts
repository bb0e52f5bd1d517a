/**
 * Waiting in tests: on a condition, polled with a bound, never on a fixed sleep. A bound that
 * runs out fails the test with what it waited for; the interval only sets how soon a condition
 * that already holds is noticed (regtest and local sockets answer in milliseconds).
 */

/**
 * Polls `check` every 50 ms until it is true.
 * @throws Error naming `what` when it is still false after `timeoutMs`.
 */
export async function waitUntil(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
