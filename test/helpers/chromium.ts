/**
 * Headless Chromium for tests of pages: Debian's `chromium` driven by playwright-core (no
 * browser download, ever). `.ci/run` installs the package; a test that needs it calls
 * `launchChromium()` and closes the browser in its `afterAll`.
 *
 * Screenshots and other artifacts a human may want to look at after a run go to
 * `test-artifacts/` at the checkout's root (`artifactPath(name)`), kept out of git.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_PATH = process.env.PAYCHAN_CHROMIUM ?? '/usr/bin/chromium';

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `no chromium at ${CHROMIUM_PATH}: install Debian's package (apt-get install chromium; .ci/run does) or set PAYCHAN_CHROMIUM`,
    );
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: FLAGS, headless: true });
}

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where a test keeps an artifact (a screenshot) for people to look at after the run. */
export function artifactPath(name: string): string {
  const dir = join(ROOT, 'test-artifacts');
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}
