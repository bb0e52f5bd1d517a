/**
 * Polls until `check` holds. `waiting` is said once, when the wait begins (it says what to do,
 * e.g. mine a block): a long wait is not a reason to print the same line again and again.
 */
export async function waitWithProgress(check: () => Promise<boolean> | boolean, waiting: string, log: (l: string) => void, timeoutMs = 30 * 60_000): Promise<void> {
  const started = Date.now();
  let said = false;
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`gave up after ${timeoutMs / 60_000} min: ${waiting}`);
    if (!said) {
      log(waiting);
      said = true;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
