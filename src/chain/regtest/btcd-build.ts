/**
 * Builds the pinned btcd (and btcctl) from source with the local Go toolchain, once per checkout.
 *
 * Why build rather than download a release: `go install module@version` is verified against the
 * Go checksum database, so the binary provably comes from that tagged source, on every OS Go
 * supports, with nothing to host. The binaries go to `<cache>/btcd/<version>/`, where `<cache>`
 * is a user cache folder ({@link paychanCacheDir}), not the package's folder: a reinstall of
 * paychan (a fresh node_modules) keeps the build. They are installed into a scratch directory
 * first and renamed into place, so a binary that exists is a complete one and "both exist" is a sound "already built" test. Two
 * processes starting at once (e.g. `vitest` workers, or a test run next to the demo) serialize
 * on a lock file created with O_EXCL; the loser waits for the winner and then finds the binaries.
 */
import { execFile, spawn } from 'node:child_process';
import { constants as fsConstants, existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** The btcd release paychan is tested against. */
export const BTCD_VERSION = 'v0.26.0';
/** btcd v0.26.0's go.mod asks for this Go. */
const MIN_GO = { major: 1, minor: 25 };
const BUILD_TIMEOUT_MS = 10 * 60_000;
/** A lock older than this whose owner we cannot check is treated as abandoned. */
const STALE_LOCK_MS = BUILD_TIMEOUT_MS + 60_000;

/** Options for {@link ensureBtcd}. */
export interface EnsureBtcdOptions {
  /** Receives human-readable progress lines (no trailing newline). */
  readonly onProgress?: (line: string) => void;
}

/** Paths of the binaries {@link ensureBtcd} provides. */
export interface BtcdBinaries {
  readonly btcd: string;
  /**
   * btcctl from the same build. With `PAYCHAN_BTCD` set this is `PAYCHAN_BTCCTL`, or a `btcctl`
   * next to the given btcd, which may not exist (paychan itself never runs btcctl).
   */
  readonly btcctl: string;
}

/**
 * Returns btcd and btcctl binaries, building them with `go install` on first use.
 * Set `PAYCHAN_BTCD=/path/to/btcd` to use an existing binary and skip the build.
 * @returns absolute paths of the binaries.
 * @throws Error if `PAYCHAN_BTCD` points at no executable file, if `go` is missing or older
 *   than 1.25, if the build fails (the message ends with go's output), or if another process
 *   holds the build lock for longer than the build timeout.
 */
export async function ensureBtcd(options: EnsureBtcdOptions = {}): Promise<BtcdBinaries> {
  const progress = options.onProgress ?? (() => {});
  const override = process.env.PAYCHAN_BTCD;
  if (override !== undefined && override !== '') {
    const btcd = path.resolve(override);
    try {
      await fs.access(btcd, fsConstants.X_OK);
    } catch {
      throw new Error(`PAYCHAN_BTCD=${override}: no executable file there`);
    }
    const btcctl = process.env.PAYCHAN_BTCCTL ?? path.join(path.dirname(btcd), 'btcctl');
    return { btcd, btcctl: path.resolve(btcctl) };
  }

  const binDir = path.join(paychanCacheDir(), 'btcd', BTCD_VERSION);
  const binaries = { btcd: path.join(binDir, exe('btcd')), btcctl: path.join(binDir, exe('btcctl')) };
  const built = (): boolean => existsSync(binaries.btcd) && existsSync(binaries.btcctl);
  if (built()) return binaries;

  await fs.mkdir(path.dirname(binDir), { recursive: true });
  const release = await acquireLock(`${binDir}.lock`, built, progress);
  try {
    if (built()) return binaries; // the process we waited for built it
    await checkGo();
    progress(`building btcd ${BTCD_VERSION} with go install (first run only, ~1-2 min)...`);
    const started = Date.now();
    const scratch = await fs.mkdtemp(`${binDir}.tmp-`);
    try {
      await goInstall(scratch, progress);
      await fs.mkdir(binDir, { recursive: true });
      for (const name of [exe('btcd'), exe('btcctl')]) await fs.rename(path.join(scratch, name), path.join(binDir, name));
    } finally {
      await fs.rm(scratch, { recursive: true, force: true });
    }
    progress(`built btcd ${BTCD_VERSION} in ${Math.round((Date.now() - started) / 1000)} s: ${binDir}`);
    return binaries;
  } finally {
    await release();
  }
}

/**
 * Where paychan caches what it builds: `$PAYCHAN_CACHE_DIR` if set (the repository's tests point
 * it at the checkout's `.cache`, so CI builds once), else `$XDG_CACHE_HOME/paychan`, else
 * `~/.cache/paychan`.
 */
export function paychanCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PAYCHAN_CACHE_DIR) return path.resolve(env.PAYCHAN_CACHE_DIR);
  return path.join(env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache'), 'paychan');
}

function exe(name: string): string {
  return process.platform === 'win32' ? `${name}.exe` : name;
}

async function checkGo(): Promise<void> {
  const hint = `btcd ${BTCD_VERSION} is built from source and needs Go ${MIN_GO.major}.${MIN_GO.minor} or later (https://go.dev/dl/); or set PAYCHAN_BTCD=/path/to/btcd to use a btcd you already have`;
  let out: string;
  try {
    out = await new Promise<string>((resolve, reject) =>
      execFile('go', ['version'], { timeout: 30_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
    );
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? '`go` is not on PATH' : `\`go version\` failed: ${(err as Error).message}`;
    throw new Error(`${why}. ${hint}`, { cause: err });
  }
  const match = /go(\d+)\.(\d+)/.exec(out);
  if (!match) throw new Error(`cannot read the Go version from "${out.trim()}". ${hint}`);
  const major = Number(match[1]);
  const minor = Number(match[2]);
  if (major < MIN_GO.major || (major === MIN_GO.major && minor < MIN_GO.minor)) {
    throw new Error(`found Go ${major}.${minor}, which is too old. ${hint}`);
  }
}

function goInstall(gobin: string, progress: (line: string) => void): Promise<void> {
  const args = ['install', `github.com/btcsuite/btcd@${BTCD_VERSION}`, `github.com/btcsuite/btcd/cmd/btcctl@${BTCD_VERSION}`];
  return new Promise((resolve, reject) => {
    const child = spawn('go', args, { env: { ...process.env, GOBIN: gobin }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      output = (output + text).slice(-4000);
      // go prints "go: downloading <module>" lines on a cold module cache: worth showing.
      for (const line of text.split('\n')) if (line.startsWith('go: downloading')) progress(line);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const started = Date.now();
    const heartbeat = setInterval(() => progress(`still building btcd (${Math.round((Date.now() - started) / 1000)} s)...`), 20_000);
    const timeout = setTimeout(() => child.kill('SIGKILL'), BUILD_TIMEOUT_MS);
    child.on('error', (err) => {
      clearInterval(heartbeat);
      clearTimeout(timeout);
      reject(new Error(`could not run go: ${err.message}`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      clearInterval(heartbeat);
      clearTimeout(timeout);
      if (code === 0) resolve();
      else reject(new Error(`go ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${output.trim()}`));
    });
  });
}

/**
 * Takes the build lock, or waits while another live process holds it. Returns early (with a
 * no-op release) if `done()` becomes true while waiting.
 */
async function acquireLock(lockPath: string, done: () => boolean, progress: (line: string) => void): Promise<() => Promise<void>> {
  let announced = false;
  const deadline = Date.now() + STALE_LOCK_MS;
  for (;;) {
    try {
      const handle = await fs.open(lockPath, 'wx'); // O_CREAT | O_EXCL: exactly one winner
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return () => fs.rm(lockPath, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (done()) return async () => {};
    if (await lockIsStale(lockPath)) {
      await fs.rm(lockPath, { force: true });
      continue;
    }
    if (!announced) {
      progress(`another process is building btcd ${BTCD_VERSION}; waiting for it (lock ${lockPath})...`);
      announced = true;
    }
    if (Date.now() > deadline) throw new Error(`gave up waiting for the btcd build lock ${lockPath}; delete it if no build is running`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Stale = its owner process is gone (same machine), or it is old and names no owner. */
async function lockIsStale(lockPath: string): Promise<boolean> {
  let text: string;
  let ageMs: number;
  try {
    text = await fs.readFile(lockPath, 'utf8');
    ageMs = Date.now() - (await fs.stat(lockPath)).mtimeMs;
  } catch {
    return false; // vanished meanwhile: the next attempt to create it decides
  }
  const pid = Number.parseInt(text, 10);
  if (!Number.isInteger(pid) || pid <= 0) return ageMs > 10_000; // owner crashed before writing its pid
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
