/** `--key value` / `--flag` / `--key=value` command-line parsing for the bench scripts. */

export type Args = ReadonlyMap<string, string | true>;

export function parseArgs(argv: readonly string[]): Args {
  const out = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new TypeError(`unexpected argument ${a}`);
    const eq = a.indexOf('=');
    if (eq > 0) {
      out.set(a.slice(2, eq), a.slice(eq + 1));
    } else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) {
      out.set(a.slice(2), argv[++i]!);
    } else {
      out.set(a.slice(2), true);
    }
  }
  return out;
}

export function intArg(args: Args, name: string, fallback: number): number {
  const v = args.get(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`--${name} must be a non-negative integer, got ${String(v)}`);
  return n;
}

export function strArg(args: Args, name: string, fallback?: string): string {
  const v = args.get(name);
  if (v === undefined || v === true) {
    if (fallback === undefined) throw new TypeError(`--${name} is required`);
    return fallback;
  }
  return v;
}

export function flag(args: Args, name: string): boolean {
  return args.has(name) && args.get(name) !== 'false';
}

/** The items of environment variable `name`, split at `separator` (none when it is unset or empty). */
export function envList(name: string, separator = ','): string[] {
  return (process.env[name] ?? '').split(separator).filter(Boolean);
}

/** Prints the result as the last stdout line (what the parent reads). */
export function emitResult(result: unknown): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** Progress for humans goes to stderr, so stdout's last line stays the JSON result. */
export function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}
