/**
 * The `paychan` command. Human output (progress) goes to stderr when `--json` is given, so that
 * stdout's last line is exactly one JSON object for scripts to read.
 */
import { parseArgs } from 'node:util';
import { ensureBtcd } from '../chain/regtest/index.js';
import { runDemo } from '../demo/demo.js';
import { VARIANTS, type Variant } from '../protocol/scripts.js';

const HELP = `paychan — Bitcoin micropayment channels

Usage:
  paychan demo [options]        open a channel on a local regtest node, pay, close, show the chain
  paychan regtest build         build the pinned btcd (done automatically on first use)
  paychan help [command]        show help

Run 'paychan <command> --help' for a command's options.
`;

const DEMO_HELP = `paychan demo — one payment channel, end to end, on a real regtest node

Starts a private btcd in regtest (built with 'go install' on first use; nothing is written
outside a temp dir and the project's .cache/), mines coins to a fresh payer wallet, opens a
channel, makes N off-chain payments, lets the payee close, mines the close, and prints what the
node says happened.

Options:
  --variant V        spilman-v1 (refund tx signed by the payee first, the seed's protocol) or
                     spilman-v2 (CLTV refund, no refund round trip). Default: spilman-v1
  --payments N       number of payments. Default: 1000
  --amount SAT       satoshis per payment. Default: 100
  --capacity SAT     channel capacity in satoshis. Default: 1000000
  --json             print one JSON object as the last line of stdout (progress goes to stderr)
  --rpc-url URL      use this regtest node instead of starting one (env PAYCHAN_RPC_URL);
                     bitcoind (mines to our wallet with generatetoaddress) or btcd
  --rpc-user USER    RPC user (env PAYCHAN_RPC_USER)
  --rpc-pass PASS    RPC password (env PAYCHAN_RPC_PASS)
  -h, --help         show this help
`;

class UsageError extends Error {}

function positiveInt(name: string, value: string): number {
  if (!/^[1-9][0-9]*$/.test(value)) throw new UsageError(`${name} must be a positive whole number, got '${value}'`);
  return Number(value);
}

function sats(name: string, value: string): bigint {
  if (!/^[1-9][0-9]{0,15}$/.test(value)) throw new UsageError(`${name} must be a positive number of satoshis, got '${value}'`);
  return BigInt(value);
}

async function demo(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      variant: { type: 'string', default: 'spilman-v1' },
      payments: { type: 'string', default: '1000' },
      amount: { type: 'string', default: '100' },
      capacity: { type: 'string', default: '1000000' },
      json: { type: 'boolean', default: false },
      'rpc-url': { type: 'string', default: process.env.PAYCHAN_RPC_URL },
      'rpc-user': { type: 'string', default: process.env.PAYCHAN_RPC_USER },
      'rpc-pass': { type: 'string', default: process.env.PAYCHAN_RPC_PASS },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(DEMO_HELP);
    return 0;
  }
  if (!(VARIANTS as readonly string[]).includes(values.variant)) throw new UsageError(`--variant must be one of ${VARIANTS.join(', ')}, got '${values.variant}'`);
  const rpcUrl = values['rpc-url'];
  if (rpcUrl && (!values['rpc-user'] || !values['rpc-pass'])) throw new UsageError('--rpc-url needs --rpc-user and --rpc-pass (or PAYCHAN_RPC_USER/PAYCHAN_RPC_PASS)');
  const json = values.json;
  const log = (line: string) => (json ? process.stderr : process.stdout).write(`${line}\n`);
  const result = await runDemo({
    variant: values.variant as Variant,
    payments: positiveInt('--payments', values.payments),
    amountSat: sats('--amount', values.amount),
    capacitySat: sats('--capacity', values.capacity),
    rpc: rpcUrl ? { url: rpcUrl, user: values['rpc-user']!, pass: values['rpc-pass']! } : undefined,
    log,
  });
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    process.stdout.write('\nOn chain (read back from the node):\n');
    for (const [k, v] of Object.entries(result)) process.stdout.write(`  ${k.padEnd(20)} ${String(v)}\n`);
  }
  return 0;
}

async function regtest(argv: string[]): Promise<number> {
  const [sub] = argv;
  if (sub === 'build') {
    const bins = await ensureBtcd({ onProgress: (l) => process.stderr.write(`${l}\n`) });
    process.stdout.write(`${bins.btcd}\n`);
    return 0;
  }
  process.stdout.write('Usage: paychan regtest build   build the pinned btcd into .cache/ (first use does this too)\n');
  return sub === undefined || sub === '--help' || sub === '-h' ? 0 : 2;
}

/** Runs the CLI; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'demo':
        return await demo(rest);
      case 'regtest':
        return await regtest(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        if (rest[0] === 'demo') process.stdout.write(DEMO_HELP);
        else process.stdout.write(HELP);
        return 0;
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`paychan: ${err.message}\nRun 'paychan help' for usage.\n`);
      return 2;
    }
    process.stderr.write(`paychan: ${err instanceof Error ? err.message : String(err)}\n`);
    if (process.env.PAYCHAN_DEBUG) process.stderr.write(`${err instanceof Error ? err.stack : ''}\n`);
    return 1;
  }
}
