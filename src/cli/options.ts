/**
 * Option resolution shared by every command: a flag wins over the environment (`PAYCHAN_` +
 * the flag name in upper snake case, e.g. `--rpc-url` → `PAYCHAN_RPC_URL`), which wins over a
 * JSON config file (`--config FILE` or `PAYCHAN_CONFIG`, keys are flag names), which wins over
 * the default. Values are validated once, here, with messages that say what was wrong.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { isNetworkName, type NetworkName } from '../protocol/network.js';

export class UsageError extends Error {}

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string; default?: string | boolean }>;

export interface Parsed {
  readonly positionals: string[];
  /** The resolved value of a string option, or undefined. */
  str(name: string): string | undefined;
  flag(name: string): boolean;
}

export const COMMON_OPTIONS: OptionSpec = {
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
};

export const NODE_OPTIONS: OptionSpec = {
  network: { type: 'string', default: 'regtest' },
  'rpc-url': { type: 'string' },
  'rpc-user': { type: 'string' },
  'rpc-pass': { type: 'string' },
  mainnet: { type: 'boolean' },
};

/** @throws UsageError for unknown flags, a missing config file or a malformed one. */
export function parse(argv: string[], spec: OptionSpec): Parsed {
  const all: OptionSpec = { ...COMMON_OPTIONS, ...spec };
  const options = Object.fromEntries(Object.entries(all).map(([k, v]) => [k, { type: v.type, ...(v.short ? { short: v.short } : {}) }]));
  const { args, restore } = shieldNegatives(argv, all);
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const configPath = (values.config as string | undefined) ?? process.env.PAYCHAN_CONFIG;
  let file: Record<string, unknown> = {};
  if (configPath) {
    try {
      file = JSON.parse(fs.readFileSync(configPath, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new UsageError(`cannot read config file ${configPath}: ${(err as Error).message}`);
    }
  }
  const envName = (name: string) => `PAYCHAN_${name.toUpperCase().replace(/-/g, '_')}`;
  const resolve = (name: string): string | boolean | undefined => {
    if (values[name] !== undefined) return values[name];
    const env = process.env[envName(name)];
    if (env !== undefined && env !== '') return spec[name]?.type === 'boolean' ? env === '1' || env === 'true' : env;
    if (file[name] !== undefined) return spec[name]?.type === 'boolean' ? file[name] === true : String(file[name]);
    return spec[name]?.default ?? COMMON_OPTIONS[name]?.default;
  };
  return {
    positionals: parsed.positionals.map(restore),
    str: (name) => {
      const v = resolve(name);
      return typeof v === 'string' ? v : undefined;
    },
    flag: (name) => resolve(name) === true,
  };
}

/**
 * parseArgs reads `-5` as an (unknown) option. A negative number is passed through as what it
 * is: a positional, or the value of the string option before it, so the command refuses it for
 * what it is ("must be positive"). @returns the arguments to parse and the map back.
 */
function shieldNegatives(argv: readonly string[], spec: OptionSpec): { args: string[]; restore: (positional: string) => string } {
  const shielded = new Map<string, string>();
  const takesValue = (arg: string | undefined): boolean => {
    if (arg === undefined) return false;
    const long = /^--([^=]+)$/.exec(arg);
    if (long) return spec[long[1]!]?.type === 'string';
    const short = /^-([A-Za-z])$/.exec(arg);
    return short !== null && Object.values(spec).some((o) => o.short === short[1] && o.type === 'string');
  };
  const end = argv.indexOf('--');
  const args: string[] = [];
  argv.forEach((arg, i) => {
    if ((end >= 0 && i > end) || !/^-[0-9]/.test(arg)) args.push(arg);
    // `--count -3`: the option's value, checked by the option's own rule.
    else if (takesValue(argv[i - 1]) && argv[i - 1]!.startsWith('--')) args.push(`${args.pop()!}=${arg}`);
    else {
      const token = `\u0000negative${shielded.size}`;
      shielded.set(token, arg);
      args.push(token);
    }
  });
  return { args, restore: (positional) => shielded.get(positional) ?? positional };
}

/** @throws UsageError unless the network is known, and mainnet was asked for explicitly. */
export function networkOf(p: Parsed): NetworkName {
  const network = p.str('network') ?? 'regtest';
  if (!isNetworkName(network)) throw new UsageError(`--network must be regtest, signet, testnet or mainnet, got '${network}'`);
  if (network === 'mainnet' && !p.flag('mainnet')) throw new UsageError('mainnet moves real money: add --mainnet to confirm');
  return network;
}

export function positiveInt(name: string, value: string | undefined, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (value === undefined || !/^[1-9][0-9]{0,8}$/.test(value)) throw new UsageError(`${name} must be a positive whole number, got '${value ?? ''}'`);
  return Number(value);
}

/** A duration in seconds (may have a fraction: 0.5), at most a day. */
export function seconds(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(value) || !(n > 0 && n <= 86_400)) throw new UsageError(`${name} must be a number of seconds between 0 and 86400, got '${value}'`);
  return n;
}

/** Satoshis, or bitcoins with a `btc` suffix (`0.5btc`). */
export function amountSat(name: string, value: string | undefined, fallback?: bigint): bigint {
  if (value === undefined && fallback !== undefined) return fallback;
  const v = value ?? '';
  const btc = /^([0-9]{1,8})(?:\.([0-9]{1,8}))?btc$/i.exec(v);
  if (btc) {
    const sat = BigInt(btc[1]!) * 100_000_000n + BigInt((btc[2] ?? '').padEnd(8, '0') || '0');
    if (sat > 0n) return sat;
  }
  if (/^[1-9][0-9]{0,15}$/.test(v)) return BigInt(v);
  if (/^-[0-9]/.test(v)) throw new UsageError(`${name} must be positive, got '${v}'`);
  throw new UsageError(`${name} must be a positive amount in satoshis (or like 0.5btc), got '${v}'`);
}

export function feeRate(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(value) || !(n >= 1 && n <= 1000)) throw new UsageError(`${name} must be a fee rate in sat/vB between 1 and 1000, got '${value}'`);
  return n;
}

/** `HOST:PORT` → parts. */
export function hostPort(name: string, value: string): { host: string; port: number } {
  const m = /^(.+):([0-9]{1,5})$/.exec(value);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`${name} must be HOST:PORT, got '${value}'`);
  return { host: m[1]!, port: Number(m[2]) };
}

/** Human lines go to stderr when --json is on, so stdout's last line is the JSON. */
export function logger(p: Parsed): (line: string) => void {
  const json = p.flag('json');
  return (line) => (json ? process.stderr : process.stdout).write(`${line}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))}\n`);
}
