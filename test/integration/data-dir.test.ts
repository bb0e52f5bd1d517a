/**
 * A data dir holds one store and one wallet (src/app/data-dir.ts): an old data dir (payer.db with
 * a wallet, duplex.db with records and a second wallet of the same seed) upgrades without loss,
 * and a second process on the same data dir is refused.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DataDirInUseError, LOCK_FILE, openDataDir, type DataDir } from '../../src/app/data-dir.js';
import { decodeDuplexState, type LegacyDuplexRecord } from '../../src/protocol/duplex-state-legacy.js';
import { decodeState, encodeState } from '../../src/store/codec.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { WALLET_META_KEY } from '../../src/store/store.js';
import { createWalletState, type WalletState } from '../../src/wallet/state.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SEED_HEX = '07'.repeat(32);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-datadir-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let dirs = 0;

/**
 * duplex.db exactly as paychan wrote it before the one store (the schema and statements of the
 * DuplexStore class this replaced): records as the codec's JSON, the wallet in duplex_meta.
 */
function writeOldDuplexDb(file: string, records: readonly LegacyDuplexRecord[], wallet: WalletState | undefined): void {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(`
    CREATE TABLE IF NOT EXISTS duplex_channels (temp_id TEXT PRIMARY KEY, channel_id TEXT, record TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS duplex_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  `);
  const save = db.prepare('INSERT INTO duplex_channels (temp_id, channel_id, record) VALUES (?, ?, ?) ON CONFLICT (temp_id) DO UPDATE SET channel_id = excluded.channel_id, record = excluded.record');
  for (const r of records) save.run(r.tempId, r.channelId ?? null, encodeState(r));
  if (wallet) db.prepare('INSERT OR REPLACE INTO duplex_meta (key, value) VALUES (?, ?)').run('wallet', encodeState(wallet));
  db.close();
}

/** A record as the duplex peer stored it before its machine (read back as the tagged state it stands for). */
function record(tempId: string, paidAtoBSat: bigint, channelId = `${'cc'.repeat(32)}:0`): LegacyDuplexRecord {
  return {
    tempId,
    channelId,
    role: 'A',
    phase: 'open',
    keyIndex: 0,
    terms: { network: 'regtest', keyA: new Uint8Array(33).fill(2), keyB: new Uint8Array(33).fill(3), scriptA: new Uint8Array([0, 20, ...new Array<number>(20).fill(1)]), scriptB: new Uint8Array([0, 20, ...new Array<number>(20).fill(2)]), contributionASat: 250_000n, contributionBSat: 0n, initialLocktime: 700, deltaBlocks: 6, stateFeeRateSatPerVb: 2 },
    fundingTxHex: '02000000',
    current: { index: 2, balanceASat: 250_000n - paidAtoBSat, balanceBSat: paidAtoBSat, sigA: new Uint8Array(64).fill(4), sigB: new Uint8Array(64).fill(5) },
    fundingFeeRateSatPerVb: 2,
    minFundingConfirmations: 1,
    fundingConfirmed: true,
    ownInputs: [{ txid: 'cc'.repeat(32), vout: 1, valueSat: 250_000n }],
    ownOutputs: [{ script: new Uint8Array([0, 20, ...new Array<number>(20).fill(9)]), valueSat: 1000n }],
    updates: 2,
    paidAtoBSat,
    paidBtoASat: 0n,
  };
}

/** A wallet state of the test seed as a side left it: synced to `height`, with reservations. */
function walletState(height: number, nextChannelIndex: number, reservations: WalletState['reservations']): WalletState {
  const state = createWalletState('regtest', 0, 20);
  state.syncedHeight = height;
  state.keys.nextChannelIndex = nextChannelIndex;
  state.keys.receive.nextIndex = height; // any distinct value per side
  state.reservations = [...reservations];
  return state;
}

describe('data dir', () => {
  let dir: string;
  const opened: DataDir[] = [];
  const open = async (defaultDb = 'payer.db', log: (line: string) => void = () => undefined): Promise<DataDir> => {
    const d = await openDataDir(dir, { defaultDb, log });
    opened.push(d);
    return d;
  };
  beforeEach(() => {
    dir = path.join(tmp, `dir-${++dirs}`);
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.writeFileSync(path.join(dir, 'seed'), `${SEED_HEX}\n`, { mode: 0o600 });
  });
  afterEach(async () => {
    await Promise.allSettled(opened.splice(0).map((d) => d.close()));
  });

  describe('upgrade of a data dir written before the one store', () => {
    const spilmanReservation = { txid: 'ab'.repeat(32), hex: '02000000', inputs: ['aa'.repeat(32) + ':0'] };
    const duplexReservation = { txid: 'duplex:t1', hex: '', inputs: ['bb'.repeat(32) + ':1'] };
    const records = [record('t2', 5n, 'dd'.repeat(32) + ':0'), record('t1', 7n)];
    /** What the store gives back: the tagged states the old records stand for. */
    const states = records.map((r) => decodeDuplexState(r));

    it('imports duplex.db (records in order, wallet merged) in one commit, and keeps the old file renamed', async () => {
      // payer.db as PayerApp left it: the Spilman wallet, older sync, more channel keys handed out.
      const payer = openSqliteStore(path.join(dir, 'payer.db'));
      await payer.putMeta(WALLET_META_KEY, encodeState(walletState(110, 4, [spilmanReservation])));
      await payer.putMeta('current-channel', 'x');
      await payer.close();
      writeOldDuplexDb(path.join(dir, 'duplex.db'), records, walletState(120, 1, [duplexReservation]));

      const log: string[] = [];
      const d = await open('payer.db', (line) => log.push(line));
      expect(await d.store.loadDuplexRecords()).toEqual(states);
      const wallet = decodeState<WalletState>((await d.store.getMeta(WALLET_META_KEY))!);
      // The newer sync's chain view, both sides' reservations, the higher key counters.
      expect(wallet.syncedHeight).toBe(120);
      expect(wallet.reservations).toEqual([spilmanReservation, duplexReservation]);
      expect(wallet.keys.nextChannelIndex).toBe(4);
      expect(wallet.keys.receive.nextIndex).toBe(120);
      expect(await d.store.getMeta('current-channel')).toBe('x');
      // The old file is renamed, never deleted, and still holds what it held.
      const kept = fs.readdirSync(dir).filter((f) => f.startsWith('duplex.db'));
      expect(kept).toHaveLength(1);
      expect(kept[0]).toMatch(/^duplex\.db\.imported-\d{4}-\d\d-\d\dT[\d-]+Z$/);
      const old = new Database(path.join(dir, kept[0]!), { readonly: true });
      expect(old.prepare('SELECT temp_id FROM duplex_channels ORDER BY rowid').pluck().all()).toEqual(['t2', 't1']);
      old.close();
      expect(log).toEqual([expect.stringMatching(/^imported 2 duplex record\(s\) and merged its wallet state from .*duplex\.db; kept it as .*duplex\.db\.imported-/)]);

      // A later open imports nothing again.
      await d.close();
      await d.store.close(); // harmless: already closed by d.close()
      const again = await open();
      expect(await again.store.loadDuplexRecords()).toEqual(states);
    });

    it('refuses to import a duplex.db another process still has open (an older paychan still running), changing nothing', async () => {
      const file = path.join(dir, 'duplex.db');
      writeOldDuplexDb(file, [record('t1', 5n)], undefined);
      const running = new Database(file); // the old version's connection, still open: it read its records at start
      running.prepare('SELECT count(*) FROM duplex_channels').get();
      try {
        await expect(open()).rejects.toThrow(/duplex\.db is open in another process \(an older paychan still running on this data dir\?\)/);
        expect(fs.existsSync(file)).toBe(true);
        expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
      } finally {
        running.close();
      }
      const d = await open();
      expect((await d.store.loadDuplexRecords()).map((r) => r.tempId)).toEqual(['t1']);
      await d.close();
    });

    it('takes duplex.db wallet as it is when the store has none (the payee dir, side B)', async () => {
      const state = walletState(50, 2, [duplexReservation]);
      writeOldDuplexDb(path.join(dir, 'duplex.db'), records, state);
      const d = await open('payee.db');
      expect(decodeState<WalletState>((await d.store.getMeta(WALLET_META_KEY))!)).toEqual(state);
      expect(await d.store.loadDuplexRecords()).toEqual(states);
      expect(fs.existsSync(path.join(dir, 'payee.db'))).toBe(true);
    });

    it('imports an empty or wallet-less duplex.db, and leaves a data dir without one alone', async () => {
      writeOldDuplexDb(path.join(dir, 'duplex.db'), [], undefined);
      const d = await open();
      expect(await d.store.loadDuplexRecords()).toEqual([]);
      expect(await d.store.getMeta(WALLET_META_KEY)).toBeUndefined();
      expect(fs.existsSync(path.join(dir, 'duplex.db'))).toBe(false);
    });

    it('only renames after a crash between the import commit and the rename: what the side saved since stays', async () => {
      writeOldDuplexDb(path.join(dir, 'duplex.db'), records, undefined);
      const first = await open();
      const renamed = fs.readdirSync(dir).find((f) => f.startsWith('duplex.db.imported-'))!;
      await first.store.saveDuplexRecords([decodeDuplexState(record('t1', 99n))]); // the channel moved on
      await first.close();
      fs.renameSync(path.join(dir, renamed), path.join(dir, 'duplex.db')); // as if the rename never happened
      const second = await open();
      expect((await second.store.loadDuplexRecords()).map((r) => ('paidAtoBSat' in r ? r.paidAtoBSat : -1n))).toEqual([5n, 99n]);
      expect(fs.existsSync(path.join(dir, 'duplex.db'))).toBe(false);
      expect(fs.existsSync(path.join(dir, renamed))).toBe(true);
    });
  });

  describe('one process per data dir', () => {
    /** Runs a second process that opens the data dir; resolves with what it printed and its exit code. */
    async function openInOtherProcess(): Promise<{ out: string; code: number | null }> {
      const script = `import { openDataDir } from './src/app/data-dir.ts';
        try { const d = await openDataDir(${JSON.stringify(dir)}, { defaultDb: 'payer.db', log: () => {} }); await d.close(); console.log('opened'); }
        catch (e) { console.log(e.code + ' ' + e.message); process.exitCode = 3; }`;
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
      const [code] = (await once(child, 'close')) as [number | null];
      return { out: out.trim(), code };
    }

    it('refuses a second process while one holds the data dir, with the holder’s pid', async () => {
      const d = await open();
      expect(await openInOtherProcess()).toEqual({ out: `DATA_DIR_IN_USE data dir ${dir} in use by pid ${process.pid}; stop it first`, code: 3 });
      // Nothing of the refused process changed the holder's lock or store.
      expect(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8').split(' ')[0]).toBe(String(process.pid));
      await d.store.putMeta('k', 'v');
      await d.close();
      expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
      expect(await openInOtherProcess()).toEqual({ out: 'opened', code: 0 });
    });

    it('refuses a second open in the same process', async () => {
      await open();
      const err = await openDataDir(dir, { defaultDb: 'payer.db', log: () => undefined }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DataDirInUseError);
      expect(String(err)).toContain(`in use by pid ${process.pid} (this process)`);
    });

    it('takes over the lock of a process that died holding it', async () => {
      const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
      const [code] = (await once(child, 'close')) as [number | null];
      expect(code).toBe(0);
      fs.writeFileSync(path.join(dir, LOCK_FILE), `${child.pid}\n`);
      const d = await open();
      expect(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8').split(' ')[0]).toBe(String(process.pid));
      await d.close();
    });

    it('takes over a lock whose pid now belongs to another process (a reused pid: a reboot, a container’s pid 1 restarted)', async () => {
      // Written by an earlier process that had this process's pid: same pid, another start time.
      const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
      fs.writeFileSync(path.join(dir, LOCK_FILE), `${process.pid} ${boot}:1\n`);
      const d = await open();
      const [pid, identity] = fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8').trim().split(' ');
      expect(pid).toBe(String(process.pid));
      expect(identity).toMatch(new RegExp(`^${boot}:[0-9]+$`));
      expect(identity).not.toBe(`${boot}:1`);
      await d.close();
    });
  });
});
