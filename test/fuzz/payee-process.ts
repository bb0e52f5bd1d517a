/**
 * The payee under attack, as users run it: `paychan payee serve` (the built bin/paychan.js) in
 * its own process, with its own data directory and SQLite store. A crash is an exit the fuzzer
 * did not ask for; it is counted, and the payee is started again on the same store and port so
 * the run can go on (and the restart itself is checked: the state must come back).
 *
 * Its channel states are read two ways: the in-memory view over HTTP (`GET /v1/channels/:id`,
 * funded channels only), and the durable view straight from its SQLite file (every channel,
 * proposals included), through a read-only connection (WAL allows a concurrent reader).
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { toHex } from '../../src/protocol/bytes.js';
import { freePort, startCli, stopCli } from '../helpers/cli.js';

export interface PayeeProcessOptions {
  readonly rpcUrl: string;
  readonly rpcUser: string;
  readonly rpcPass: string;
  /** PAYCHAN_HOME and the payee's data directory go here. */
  readonly dir: string;
  readonly log?: (line: string) => void;
}

/** `GET /v1/channels/:id`'s body (sats as JSON numbers). */
export interface ChannelSummary {
  readonly channelId: string;
  readonly state: string;
  readonly capacitySat: number;
  readonly paidSat: number;
}

export interface StoredRow {
  readonly tempId: string;
  /** The stored state (src/store/codec.ts encoding). */
  readonly state: string;
  readonly stateType: string;
  /** The newest stored payment, if the store keeps payments apart from states (`payee_payments`). */
  readonly payment: { readonly totalSat: string; readonly signature: string } | null;
}

/** Log lines that mean the payee hit something it did not expect. */
const TROUBLE = /internal error|service\.receive failed|halted|uncaught|unhandled/i;

export class PayeeProcess {
  private child!: ChildProcess;
  private output: () => string = () => '';
  private stopping = false;
  private restarting: Promise<void> | null = null;
  /** Unrequested exits, with their code/signal and the end of the output. */
  readonly crashes: { code: number | null; signal: string | null; tail: string }[] = [];
  /** Output of earlier incarnations (after crashes). */
  private previousOutput = '';
  url = '';
  wsUrl = '';

  private constructor(
    private readonly options: PayeeProcessOptions,
    readonly port: number,
  ) {}

  static async start(options: PayeeProcessOptions): Promise<PayeeProcess> {
    const p = new PayeeProcess(options, await freePort());
    await p.spawn();
    return p;
  }

  get dataDir(): string {
    return path.join(this.options.dir, 'payee');
  }

  get dbPath(): string {
    return path.join(this.dataDir, 'payee.db');
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private async spawn(): Promise<void> {
    const o = this.options;
    const args = ['payee', 'serve', '--rpc-url', o.rpcUrl, '--rpc-user', o.rpcUser, '--rpc-pass', o.rpcPass, '--data-dir', this.dataDir, '--listen', `127.0.0.1:${this.port}`, '--json'];
    const { child, output } = await startCli(args, { ...process.env, PAYCHAN_HOME: o.dir }, /"wsUrl"/);
    this.child = child;
    this.output = output;
    const info = JSON.parse(output().split('\n').find((l) => l.includes('"wsUrl"'))!) as { url: string; wsUrl: string };
    this.url = info.url;
    this.wsUrl = info.wsUrl;
    child.once('exit', (code, signal) => {
      if (this.stopping) return;
      const tail = this.output().slice(-4000);
      this.crashes.push({ code, signal, tail });
      o.log?.(`PAYEE CRASHED (code ${code}, signal ${signal}):\n${tail}`);
      this.previousOutput += this.output();
      this.restarting = this.spawn().catch((err: unknown) => o.log?.(`restarting the payee failed: ${String(err)}`));
    });
  }

  /** Waits for a restart after a crash, if one is under way. */
  async settled(): Promise<void> {
    while (this.restarting) {
      const r = this.restarting;
      await r;
      if (this.restarting === r) this.restarting = null;
    }
  }

  /** Everything the payee printed (all incarnations). */
  allOutput(): string {
    return this.previousOutput + this.output();
  }

  /** Log lines that show trouble (internal errors, halted channels). */
  troubleLines(): string[] {
    return this.allOutput()
      .split('\n')
      .filter((l) => TROUBLE.test(l));
  }

  /** Resident memory of the payee process, MiB (Linux /proc; NaN elsewhere). */
  rssMiB(): number {
    try {
      const status = fs.readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
      return Math.round(kb / 1024);
    } catch {
      return NaN;
    }
  }

  /** The payee's log lines grouped by shape (numbers, hex and quoted text blanked), most frequent first. */
  logShapes(max = 12): Record<string, number> {
    const counts = new Map<string, number>();
    for (const line of this.allOutput().split('\n')) {
      if (!line.trim() || line.startsWith('{') || /^\s+at /.test(line)) continue; // JSON, stack frames
      const shape = line
        .replace(/[0-9a-f]{16,}/g, '…')
        .replace(/\d+/g, '#')
        .replace(/"[^"]*"/g, '"…"')
        .slice(0, 100);
      counts.set(shape, (counts.get(shape) ?? 0) + 1);
    }
    return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]).slice(0, max));
  }

  /** True while the process runs. */
  alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The in-memory view of a funded channel; null if the payee says 404. */
  async summary(channelId: string): Promise<ChannelSummary | null> {
    const res = await fetch(`${this.url}/v1/channels/${channelId}`);
    if (res.status === 404) return null;
    if (!res.ok) throw new Error(`GET /v1/channels/${channelId}: HTTP ${res.status}`);
    return (await res.json()) as ChannelSummary;
  }

  /** The durable view: every stored channel row, and the key counter. */
  readStore(): { rows: Map<string, StoredRow>; keyCounter: number } {
    const db = new Database(this.dbPath, { readonly: true, fileMustExist: true });
    try {
      const payments = new Map<string, { totalSat: string; signature: string }>();
      if (db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'payee_payments'").get()) {
        for (const p of db.prepare('SELECT temp_id, total_sat, signature FROM payee_payments').all() as { temp_id: string; total_sat: string; signature: Uint8Array }[]) {
          payments.set(p.temp_id, { totalSat: p.total_sat, signature: toHex(p.signature) });
        }
      }
      const rows = new Map<string, StoredRow>();
      for (const row of db.prepare('SELECT temp_id, state, state_type FROM payee_channels').all() as { temp_id: string; state: string; state_type: string }[]) {
        rows.set(row.temp_id, { tempId: row.temp_id, state: row.state, stateType: row.state_type, payment: payments.get(row.temp_id) ?? null });
      }
      const counter = db.prepare("SELECT next FROM counters WHERE name = 'payee-channel-key'").get() as { next: number } | undefined;
      return { rows, keyCounter: counter?.next ?? 0 };
    } finally {
      db.close();
    }
  }

  /** The values of every series of the metric `name` on the payee's /metrics page (any labels). */
  async metricValues(name: string): Promise<number[]> {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    return text
      .split('\n')
      .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
      .map((l) => Number(l.split(' ').pop()));
  }

  /** Stops the payee (SIGTERM) and starts it again on the same store and port. */
  async restart(): Promise<void> {
    this.stopping = true;
    await this.settled();
    await stopCli(this.child, 'SIGTERM');
    this.previousOutput += this.output();
    this.stopping = false;
    await this.spawn();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.settled();
    await stopCli(this.child, 'SIGTERM');
  }
}
