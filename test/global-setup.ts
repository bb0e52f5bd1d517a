/**
 * vitest globalSetup: builds the pinned btcd once, before any test file runs, so parallel
 * workers never race to build it (ensureBtcd's lock would make them wait, but each would then
 * spend its hook timeout waiting) and the build's progress is printed once, where people see it.
 */
import { ensureBtcd } from '../src/chain/regtest/btcd-build.js';

export default async function setup(): Promise<void> {
  await ensureBtcd({ onProgress: (line) => process.stderr.write(`[paychan] ${line}\n`) });
}
