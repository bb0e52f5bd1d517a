/** Polls until `check` holds, printing `waiting` every 10 s (people need to know to mine). */
export async function waitWithProgress(check: () => Promise<boolean> | boolean, waiting: string, log: (l: string) => void, timeoutMs = 30 * 60_000): Promise<void> {
  const started = Date.now();
  let lastSaid = 0;
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`gave up after ${timeoutMs / 60_000} min: ${waiting}`);
    if (Date.now() - lastSaid >= 10_000) {
      log(waiting);
      lastSaid = Date.now();
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
