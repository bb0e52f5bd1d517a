/** Line-oriented JSON messaging between the e2e processes (stdin/stdout), and child spawning. */
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';

export type Event = Record<string, unknown> & { readonly event: string };

/** Writes one JSON event line to stdout. */
export function emit(event: Event): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

/** Calls `onLine` for each line of stdin. */
export function onStdinLines(onLine: (line: string) => void): void {
  readline.createInterface({ input: process.stdin }).on('line', onLine);
}

/** A spawned bench script: JSON events from its stdout, lines to its stdin. */
export class BenchChild {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  private readonly waiting: { match: (e: Event) => boolean; resolve: (e: Event) => void; reject: (e: Error) => void }[] = [];
  private readonly seen: Event[] = [];
  private failure: Error | null = null;

  constructor(
    readonly name: string,
    script: string,
    args: readonly string[],
    nodeFlags: readonly string[],
    log: (line: string) => void,
  ) {
    this.child = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    readline.createInterface({ input: this.child.stdout! }).on('line', (line) => {
      let event: Event;
      try {
        event = JSON.parse(line) as Event;
      } catch {
        log(`[${name}] ${line}`);
        return;
      }
      const at = this.waiting.findIndex((w) => w.match(event));
      if (at >= 0) this.waiting.splice(at, 1)[0]!.resolve(event);
      else this.seen.push(event);
    });
    readline.createInterface({ input: this.child.stderr! }).on('line', (line) => log(`[${name}] ${line}`));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
    void this.exited.then((code) => {
      this.failure = new Error(`${name} exited with ${code}`);
      for (const w of this.waiting.splice(0)) w.reject(this.failure);
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves with the first event (already received or to come) that `match`es. */
  next(match: ((e: Event) => boolean) | string): Promise<Event> {
    const m = (e: Event): boolean => (typeof match === 'string' ? e.event === match : match(e));
    const at = this.seen.findIndex(m);
    if (at >= 0) return Promise.resolve(this.seen.splice(at, 1)[0]!);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiting.push({ match: m, resolve, reject }));
  }

  send(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  /** Sends `line` and waits for the answering event. */
  ask(line: string, answer: string): Promise<Event> {
    const reply = this.next((e) => e.event === answer);
    this.send(line);
    return reply;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
