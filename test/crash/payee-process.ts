/**
 * The payee as the crash harness runs it: `paychan payee serve` as a child process on a fixed
 * port and data directory, so every incarnation serves the same store at the same URL and the
 * payers' links reconnect to it by themselves.
 *
 * Kills are SIGKILL (no shutdown code runs: whatever was not durable is gone); a kill waits until
 * the process is reaped, so the store can be inspected with no payee running. An exit the harness
 * did not cause is recorded (a payee that dies on its own is a failure of the run).
 */
import type { ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { startCli, stopCli } from '../helpers/cli.js';

export interface PayeeProcessOptions {
  readonly rpcUrl: string;
  readonly rpcUser: string;
  readonly rpcPass: string;
  readonly dataDir: string;
  readonly port: number;
  readonly env: NodeJS.ProcessEnv;
  /** More arguments of `payee serve` (e.g. `--db postgres://…`). */
  readonly extraArgs?: readonly string[];
  /** Time allowed for one start, ms. Default 60,000. */
  readonly startTimeoutMs?: number;
}

/** How many incarnations' output is kept for a failure report. */
const KEPT_OUTPUTS = 4;

export class PayeeProcess {
  private child: ChildProcess | null = null;
  private output: (() => string) | null = null;
  private readonly pastOutputs: string[] = [];
  /** Children this object killed or stopped: their exit is expected. */
  private readonly ended = new WeakSet<ChildProcess>();
  /** Processes started (the first start included). */
  starts = 0;
  /** Wall time of each start until the payee said it listens, ms. */
  readonly startMs: number[] = [];
  /** Exits the harness did not cause: "pid N: code/signal", with the tail of its output. */
  readonly unexpectedExits: string[] = [];

  constructor(private readonly options: PayeeProcessOptions) {}

  get port(): number {
    return this.options.port;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.options.port}/v1/ws`;
  }

  get running(): boolean {
    const c = this.child;
    return c !== null && c.exitCode === null && c.signalCode === null;
  }

  /**
   * Starts a payee and resolves once it listens.
   * @returns how long the start took, ms.
   * @throws Error if one is already running, or the payee exits or stays silent before listening.
   */
  async start(): Promise<number> {
    if (this.running) throw new Error('a payee is already running');
    const o = this.options;
    const args = ['payee', 'serve', '--rpc-url', o.rpcUrl, '--rpc-user', o.rpcUser, '--rpc-pass', o.rpcPass, '--data-dir', o.dataDir, '--listen', `127.0.0.1:${o.port}`, ...(o.extraArgs ?? [])];
    const t0 = performance.now();
    const started = await startCli(args, o.env, /payee listening/, o.startTimeoutMs ?? 60_000);
    const ms = performance.now() - t0;
    this.starts++;
    this.startMs.push(ms);
    const child = started.child;
    this.child = child;
    this.output = started.output;
    child.once('exit', (code, signal) => {
      this.keepOutput(started.output());
      if (!this.ended.has(child)) this.unexpectedExits.push(`payee pid ${child.pid} exited on its own (code ${code}, signal ${signal}):\n${tail(started.output())}`);
    });
    return ms;
  }

  /** SIGKILLs the payee and resolves once the process is gone (no-op if none runs). */
  async kill(): Promise<void> {
    await this.end('SIGKILL');
  }

  /** Stops the payee gracefully (SIGTERM: it drains and closes its store). */
  async stop(): Promise<void> {
    await this.end('SIGTERM');
  }

  /** The output of the running payee and of the last few before it, for failure reports. */
  recentOutput(): string {
    const current = this.running && this.output ? [this.output()] : [];
    return [...this.pastOutputs, ...current].map((o, i) => `--- payee output ${i + 1} ---\n${tail(o)}`).join('\n');
  }

  private async end(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.ended.add(child);
    await stopCli(child, signal);
    this.child = null;
  }

  private keepOutput(text: string): void {
    this.pastOutputs.push(text);
    if (this.pastOutputs.length > KEPT_OUTPUTS) this.pastOutputs.shift();
  }
}

function tail(text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
