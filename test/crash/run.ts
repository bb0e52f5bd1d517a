/**
 * `npm run test:crash`: the crash harness at full size (defaults: 10 channels, ≥ 100,000
 * payments, ≥ 100 payee SIGKILLs), progress on stderr, ONE JSON line last on stdout:
 * `{"kills":…,"payments":…,"ackedLost":0,…}`. Exits 1 if anything acknowledged was lost or any
 * check failed, 2 for bad arguments.
 *
 *   npm run test:crash -- [--quick] [--channels N] [--payments N] [--kills N] [--seed N]
 *                         [--window N] [--max-amount SAT] [--capacity SAT] [--keep] [--quiet]
 *                         [--store sqlite|postgres] [--instances N]
 *
 * `--store postgres --instances 2`: two payee instances on one throwaway PostgreSQL, the payers
 * given both URLs, each kill of a random one (docs/scale.md). Default: one payee on SQLite.
 *
 * `--quick` is a short run (3 channels, 5,000 payments, 5 kills). Needs `npm run build` first
 * (the payee runs from dist/); the npm script does it.
 *
 *   npm run test:crash -- --scenario NAME|all
 *
 * runs instead the deterministic crash points of scenarios.ts (close-before-durable,
 * funding-broadcast-crash, handshake-crash); the JSON line is then
 * `{"ok":…,"scenarios":[{"scenario":…,"ok":…,"steps":[…]},…]}`.
 */
import { parseArgs } from 'node:util';
import { runCrashHarness, type CrashReport } from './harness.js';
import { randomSeed } from './prng.js';
import { runScenario, SCENARIOS, type ScenarioName, type ScenarioReport } from './scenarios.js';

const HELP = `usage: npm run test:crash -- [--quick] [--channels N] [--payments N] [--kills N] [--seed N]
                             [--window N] [--max-amount SAT] [--capacity SAT] [--keep] [--quiet] [--full-report]
                             [--store sqlite|postgres] [--instances N]
       npm run test:crash -- --scenario ${SCENARIOS.join('|')}|all
`;

function int(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`--${name} must be a non-negative integer, got ${value}`);
  return n;
}

function storeOf(value: string | undefined): 'sqlite' | 'postgres' {
  if (value === undefined || value === 'sqlite' || value === 'postgres') return value ?? 'sqlite';
  throw new RangeError(`--store must be sqlite or postgres, got ${value}`);
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: {
        quick: { type: 'boolean' },
        channels: { type: 'string' },
        payments: { type: 'string' },
        kills: { type: 'string' },
        seed: { type: 'string' },
        window: { type: 'string' },
        'max-amount': { type: 'string' },
        capacity: { type: 'string' },
        keep: { type: 'boolean' },
        quiet: { type: 'boolean' },
        'full-report': { type: 'boolean' },
        store: { type: 'string' },
        instances: { type: 'string' },
        scenario: { type: 'string', multiple: true },
        help: { type: 'boolean' },
      },
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n${HELP}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (args.scenario) return runScenarios(args.scenario, args.quiet === true);
  const quick = args.quick === true;
  let options;
  try {
    options = {
      channels: int('channels', args.channels, quick ? 3 : 10),
      payments: int('payments', args.payments, quick ? 5_000 : 100_000),
      kills: int('kills', args.kills, quick ? 5 : 100),
      seed: int('seed', args.seed, randomSeed()),
      window: args.window === undefined ? undefined : int('window', args.window, 0),
      maxAmountSat: args['max-amount'] === undefined ? undefined : int('max-amount', args['max-amount'], 0),
      capacitySat: args.capacity === undefined ? undefined : BigInt(int('capacity', args.capacity, 0)),
      keepDir: args.keep === true,
      store: storeOf(args.store),
      instances: int('instances', args.instances, 1),
    };
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n${HELP}`);
    return 2;
  }
  const quiet = args.quiet === true;
  const started = Date.now();
  const log = (line: string) => {
    if (!quiet || line.startsWith('FAIL')) process.stderr.write(`[crash +${((Date.now() - started) / 1000).toFixed(1)}s] ${line}\n`);
  };
  log(`seed ${options.seed}: ${options.channels} channels, ≥ ${options.payments} payments, ≥ ${options.kills} kills, ${options.instances} payee${options.instances > 1 ? 's' : ''} on ${options.store}`);
  let report: CrashReport;
  try {
    report = await runCrashHarness({ ...options, log });
  } catch (err) {
    // Bad options: the harness refuses them before starting anything.
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  if (!args['full-report']) {
    for (const ch of report.perChannel) {
      log(`channel ${ch.channelId} (${ch.variant}): ${ch.acknowledged} acknowledged, last ${ch.lastAckedSat} sat, stored ${ch.storedSat}, closed ${ch.closeTotalSat ?? '-'} in ${ch.closeTxid ?? '-'}`);
    }
  }
  const { perChannel, ...figures } = report;
  process.stdout.write(`${JSON.stringify(args['full-report'] ? report : { ...figures, perChannel: perChannel.length })}\n`);
  return report.ok && report.ackedLost === 0 ? 0 : 1;
}

async function runScenarios(names: string[], quiet: boolean): Promise<number> {
  const wanted = names.includes('all') ? [...SCENARIOS] : names;
  const unknown = wanted.filter((n) => !(SCENARIOS as readonly string[]).includes(n));
  if (unknown.length > 0) {
    process.stderr.write(`unknown scenario ${unknown.join(', ')}\n${HELP}`);
    return 2;
  }
  const log = (line: string) => {
    if (!quiet) process.stderr.write(`[crash] ${line}\n`);
  };
  const reports: ScenarioReport[] = [];
  for (const name of wanted as ScenarioName[]) reports.push(await runScenario(name, log));
  const ok = reports.every((r) => r.ok);
  process.stdout.write(`${JSON.stringify({ ok, scenarios: reports })}\n`);
  return ok ? 0 : 1;
}

process.exit(await main());
