/**
 * `npm run test:fuzz` — fuzzes the payee process over its real socket (see ./payee-fuzz.ts).
 *
 *   npm run test:fuzz                      100,000 frames, then the limit checks and probes
 *   npm run test:fuzz -- --quick           5,000 frames
 *   npm run test:fuzz -- --messages N --seed S --connections C --no-build --no-limits
 *
 * Builds first (the payee runs as `paychan payee serve` from dist/) unless --no-build. Progress
 * goes to stderr; the last line of stdout is the report as one JSON object. Exits 1 unless the
 * report is `ok` (no crash, no state changed by a rejected message, every frame answered with a
 * valid reply, every honest payment acknowledged, ...), 2 if the build or the setup failed.
 */
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { fuzzPayee } from './payee-fuzz.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string' },
    seed: { type: 'string' },
    connections: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    'no-limits': { type: 'boolean', default: false },
  },
});

const int = (name: string, value: string | undefined, fallback: number): number => {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) {
    process.stderr.write(`--${name} must be a non-negative integer, got ${value}\n`);
    process.exit(2);
  }
  return n;
};

const messages = int('messages', values.messages, values.quick ? 5_000 : 100_000);
const seed = int('seed', values.seed, Date.now() % 2 ** 31);
const connections = int('connections', values.connections, 8);
const log = (line: string) => process.stderr.write(`[fuzz] ${line}\n`);

if (!values['no-build']) {
  log('building (npm run build) — the payee runs from dist/');
  const built = spawnSync('npm', ['run', 'build'], { stdio: ['ignore', 2, 2] });
  if (built.status !== 0) {
    log('the build failed; fix it or pass --no-build to fuzz the dist/ that is there');
    process.exit(2);
  }
}

log(`seed ${seed}, ${messages} frames over ${connections} connections`);
try {
  const report = await fuzzPayee({ messages, seed, connections, limits: !values['no-limits'], log });
  for (const f of report.findings) log(`FINDING [${f.severity}] ${f.id} (${f.where}): ${f.evidence}`);
  log(report.ok ? 'ok' : 'NOT OK: see crashes, stateChanges, unanswered, honestFailures, unexpectedAccepts, unexpectedCloses, wrongCodes, invalidReplies, internalErrorReplies, decoderThrew, orphanRows, limits in the report');
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exit(report.ok ? 0 : 1);
} catch (err) {
  log(`the fuzz run failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(2);
}
