/**
 * The package as an adopter gets it: `npm pack`, then `npm install --omit=dev <tarball>` into an
 * empty folder (no dev dependencies: no hono, no express, no @types beyond paychan's own), then
 * - the tarball holds LICENSE, README, docs/ (the README links into it), examples/ and the
 *   dashboard's page files;
 * - a file using the public API type-checks with `strict` and `skipLibCheck: false`;
 * - the installed `paychan --version` answers, and its `regtest start` runs a node;
 * - examples/http-seller.js and examples/paying-client.js, copied out of the installed package
 *   into the adopter's folder, sell and pay five calls against that node.
 * The install compiles better-sqlite3 from source (1.5–3 min on 2 busy cores): hence the hook's
 * timeout. btcd comes from $PAYCHAN_CACHE_DIR (the checkout's .cache, see vitest.config.ts).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runExample } from '../helpers/examples.js';
import { freePort, stopCli, withMining } from '../helpers/cli.js';

const run = promisify(execFile);
/** The dashboard's page, read at start by dist/app/dashboard/dashboard-routes.js from src/ (docs/dashboard.md). */
const DASHBOARD_ASSETS = ['index.html', 'dashboard.js', 'dashboard.css', 'favicon.svg'].map((f) => `src/app/dashboard/assets/${f}`);
const TSC = path.resolve('node_modules/typescript/bin/tsc');
const INSTALL_TIMEOUT_MS = 10 * 60_000;

let dir: string;
let app: string;
let packed: string[];
let env: NodeJS.ProcessEnv;

/** The installed `paychan` command. */
async function paychan(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [path.join(app, 'node_modules/paychan/bin/paychan.js'), ...args], { cwd: app, env, timeout: 120_000 });
  return stdout;
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-package-'));
  app = path.join(dir, 'app');
  fs.mkdirSync(app);
  // The tarball packs dist/ as `npm test` built it just before vitest. Not `prepare` again: a
  // rebuild rewrites dist/ under the other e2e tests' processes, which run from it (a CLI process
  // once loaded a half-written module and failed).
  if (!fs.existsSync('dist/index.js')) throw new Error('dist/ is not built: run npm run build (npm test does) first');
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { timeout: INSTALL_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 });
  const [info] = JSON.parse(stdout.slice(stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  packed = info!.files.map((f) => f.path);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'adopter', private: true, type: 'module' }));
  await run('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', path.join(dir, info!.filename)], { cwd: app, timeout: INSTALL_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 });
  env = { ...process.env, PAYCHAN_HOME: path.join(dir, 'home'), PAYCHAN_LISTEN: `127.0.0.1:${await freePort()}`, PORT: String(await freePort()) };
}, INSTALL_TIMEOUT_MS + 60_000);

afterAll(async () => {
  if (env) await paychan('regtest', 'stop').catch(() => undefined);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('the packed package, installed without dev dependencies', () => {
  it('holds LICENSE, README, the docs the README links to, and the examples', () => {
    for (const file of ['LICENSE', 'README.md', 'docs/design.md', 'docs/http-402.md', 'docs/duplex.md', 'docs/x402.md', 'examples/paying-client.js', 'dist/index.d.ts', 'dist/payer.js', 'dist/payer.d.ts', 'dist/payee.js', 'dist/regtest.js', 'docs/dashboard.md', ...DASHBOARD_ASSETS]) expect(packed).toContain(file);
    const readme = fs.readFileSync('README.md', 'utf8');
    for (const [, link] of readme.matchAll(/\]\(((?:docs|examples)\/[^)#]*)/g)) expect(packed.some((p) => p === link || p.startsWith(link!)), link).toBe(true);
    expect(fs.existsSync(path.join(app, 'node_modules/hono')), 'hono is an optional peer').toBe(false);
  });

  it('type-checks a program using the public API with strict and skipLibCheck: false', async () => {
    fs.mkdirSync(path.join(app, 'src'));
    fs.writeFileSync(path.join(app, 'src/uses-paychan.ts'), USES_PAYCHAN);
    fs.writeFileSync(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', lib: ['ES2022'], module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, noEmit: true, types: ['node'] }, include: ['src'] }),
    );
    const checked = await run(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: app, timeout: 300_000 }).then(
      () => '',
      (err: { stdout?: string }) => err.stdout ?? String(err),
    );
    expect(checked).toBe('');
  }, 330_000);

  it('paychan --version, and the examples sell and pay against the node of regtest start', async () => {
    expect((await paychan('--version')).trim()).toBe(JSON.parse(fs.readFileSync('package.json', 'utf8')).version);
    await paychan('regtest', 'start');
    const address = (await paychan('payer', 'address')).trim().split('\n')[0]!;
    await paychan('regtest', 'fund', address, '0.01btc');
    fs.mkdirSync(path.join(app, 'examples'));
    for (const file of ['http-seller.js', 'paying-client.js']) fs.copyFileSync(path.join(app, 'node_modules/paychan/examples', file), path.join(app, 'examples', file));
    const seller = await runExample('http-seller.js', [], env, /selling jokes on port \d+/, app);
    try {
      const client = await withMining(runExample('paying-client.js', [`http://127.0.0.1:${env.PORT}/joke`], env, undefined, app), () => paychan('regtest', 'mine', '1'));
      expect(client.code, client.output).toBe(0);
      expect(client.output.trim().split('\n')).toEqual(Array(5).fill('200 {"joke":"A satoshi walks into a bar."}'));
    } finally {
      await stopCli(seller.child);
    }
  }, 300_000);
});

/** What an adopter writes against the public types (never run: type-checked only). */
const USES_PAYCHAN = `import type { IncomingMessage, ServerResponse } from 'node:http';
import { createPayee, createPayer, paywallHono, type ChannelListRow, type Payee, type Payer } from 'paychan';
import { PayerClient, nobleSecp256k1, type PayerChain } from 'paychan/payer';
import { createPayee as createPayeeToo } from 'paychan/payee';
import { startRegtestNode } from 'paychan/regtest';

export async function main(): Promise<void> {
  const payee: Payee = await createPayee({ dataDir: './payee', node: 'http://user:pass@127.0.0.1:18334', payoutAddress: 'bcrt1q…', listen: '127.0.0.1:0' });
  const priced: (req: IncomingMessage, res: ServerResponse, next: () => void) => void = payee.paywall(10);
  const hono = payee.paywallHono(10n);
  const rows: ChannelListRow[] = payee.channels();
  const payer: Payer = await createPayer({ capacitySat: 100_000, maxPriceSat: 50n });
  const res: Response = await payer.fetch('http://localhost:3000/joke');
  const client = await payer.channelFor(payee.wsUrl);
  const paid: bigint = client.state?.type === 'Open' ? client.state.ackedTotalSat : 0n;
  console.log(priced, hono, rows.length, res.status, client.channel.id, paid, paywallHono(payee.app.paywall, { priceSat: () => 1n }));
  const chain: PayerChain | null = null;
  console.log(PayerClient.name, nobleSecp256k1.name, chain, createPayeeToo === createPayee, typeof startRegtestNode);
  await payer.close();
  await payee.close();
}
`;
