/**
 * The `paychan` command. With `--json`, human output (progress) goes to stderr and stdout's last
 * line is exactly one JSON object for scripts to read.
 */
import fs from 'node:fs';
import { runBrowserDemo } from '../demo/browser-demo.js';
import { runDemo } from '../demo/demo.js';
import { runDuplexDemo } from '../demo/duplex-demo.js';
import { CHANNEL_KIND_CHOICES, channelKindHelp, channelKindOf } from './channel-kinds.js';
import { amountSat, logger, parse, positiveInt, printJson, UsageError } from './options.js';
import { errorCode, errorText } from './report.js';
import { PAYEE_HELP, payeeCommand } from './payee-cmd.js';
import { PAYER_HELP, payerCommand } from './payer-cmd.js';
import { PROXY_HELP, proxyCommand } from './proxy-cmd.js';
import { REGTEST_HELP, regtestCommand } from './regtest-cmd.js';

const HELP = `paychan — Bitcoin micropayment channels

Usage:
  paychan demo [options]         payee and payer processes on a private regtest node: open, pay,
                                 pay-per-request over HTTP 402, close, and what the chain says
  paychan regtest <command>      a local regtest node for development (start, stop, mine, fund)
  paychan payee <command>        run the payee service; duplex pay-backs
  paychan payer <command>        open a channel, pay, fetch priced URLs, close, refund
  paychan proxy [options]        a paywall in front of any HTTP API (reverse proxy + payee)
  paychan help [command]         show help
  paychan --version              print paychan's version

Run 'paychan <command> --help' for a command's options, and 'paychan <command> <subcommand>
--help' (e.g. 'paychan payer pay --help') for one subcommand's usage, options and an example.
`;

const DEMO_HELP = `paychan demo — payment channels end to end, on a real regtest node

Starts a private btcd in regtest (built with 'go install' on first use), then runs the payee
('paychan payee serve') and the payer ('paychan payer open/pay/fetch/close') as separate
processes: the payer opens a channel over WebSocket, makes N payments, pays for HTTP requests
answered '402 Payment Required', and asks the payee to close. This process mines a block
whenever a transaction waits, and reports what the node says happened.

Options:
  --variant V        the channel: ${CHANNEL_KIND_CHOICES}
${channelKindHelp(21)}
                     The duplex demo: the payer pays --payments updates of --amount, the payee
                     pays back 3 × 5000 sat with 'paychan payee pay-back', the payer pays again,
                     they close cooperatively; the capacity is split 600000 payer / 400000 payee
  --payments N       payments over WebSocket. Default: 1000
  --amount SAT       satoshis per payment. Default: 100
  --requests N       paid HTTP requests. Default: 20
  --price SAT        price per HTTP request. Default: 10
  --capacity SAT     channel capacity. Default: 1000000
  --browser          the payer in a page instead: starts the node and 'paychan payee serve',
                     prints the demo page's URL (/demo) and pays the page's funding address
                     when you paste its bitcoin: URI; runs until Ctrl-C
  --listen HOST:PORT with --browser: where the payee listens. Default: 127.0.0.1:8420
  --json             one JSON object as the last line of stdout (progress goes to stderr)
  --rpc-url URL      use this regtest node instead (env PAYCHAN_RPC_URL): the node of 'paychan
                     regtest start' (its faucet funds the payer), or a bitcoind -regtest
                     -txindex=1 (it mines to the payer)
  --rpc-user USER    (env PAYCHAN_RPC_USER)
  --rpc-pass PASS    (env PAYCHAN_RPC_PASS)
  -h, --help         show this help
`;

async function demo(argv: string[]): Promise<number> {
  const p = parse(argv, {
    variant: { type: 'string' },
    payments: { type: 'string' },
    amount: { type: 'string' },
    requests: { type: 'string' },
    price: { type: 'string' },
    capacity: { type: 'string' },
    'rpc-url': { type: 'string' },
    'rpc-user': { type: 'string' },
    'rpc-pass': { type: 'string' },
    browser: { type: 'boolean' },
    listen: { type: 'string' },
  });
  if (p.flag('help')) {
    process.stdout.write(DEMO_HELP);
    return 0;
  }
  if (p.flag('browser')) {
    const rpcUrl = p.str('rpc-url');
    await runBrowserDemo({
      listen: p.str('listen') ?? '127.0.0.1:8420',
      priceSat: amountSat('--price', p.str('price'), 10n),
      ...(rpcUrl ? { rpc: { url: rpcUrl, user: p.str('rpc-user') ?? '', pass: p.str('rpc-pass') ?? '' } } : {}),
      log: logger(p),
    });
    return 0;
  }
  const kind = channelKindOf(p.str('variant'));
  const rpcUrl = p.str('rpc-url');
  if (rpcUrl && (!p.str('rpc-user') || !p.str('rpc-pass'))) throw new UsageError('--rpc-url needs --rpc-user and --rpc-pass (or PAYCHAN_RPC_USER/PAYCHAN_RPC_PASS)');
  const log = logger(p);
  const rpc = rpcUrl ? { url: rpcUrl, user: p.str('rpc-user')!, pass: p.str('rpc-pass')! } : undefined;
  if (kind.type === 'duplex') {
    const capacity = amountSat('--capacity', p.str('capacity'), 1_000_000n);
    const result = await runDuplexDemo({
      contributionASat: (capacity * 3n) / 5n,
      contributionBSat: capacity - (capacity * 3n) / 5n,
      payments: positiveInt('--payments', p.str('payments'), 10),
      amountSat: amountSat('--amount', p.str('amount'), 1_000n),
      payBacks: 3,
      payBackSat: 5_000n,
      rpc,
      log,
    });
    printResult(result, p.flag('json'));
    return 0;
  }
  const result = await runDemo({
    variant: kind.variant,
    payments: positiveInt('--payments', p.str('payments'), 1000),
    amountSat: amountSat('--amount', p.str('amount'), 100n),
    paidRequests: positiveInt('--requests', p.str('requests'), 20),
    priceSat: amountSat('--price', p.str('price'), 10n),
    capacitySat: amountSat('--capacity', p.str('capacity'), 1_000_000n),
    rpc,
    log,
  });
  printResult(result, p.flag('json'));
  return 0;
}

function printResult(result: object, json: boolean): void {
  if (json) printJson(result);
  else {
    process.stdout.write('\nOn chain (read back from the node):\n');
    for (const [k, v] of Object.entries(result)) process.stdout.write(`  ${k.padEnd(20)} ${String(v)}\n`);
  }
}

/**
 * The version in paychan's package.json: two folders up from this file, both for src/cli/main.ts
 * (tsx) and for the built dist/cli/main.js.
 */
function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** Runs the CLI; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'demo':
        return await demo(rest);
      case 'regtest':
        return await regtestCommand(rest);
      case 'payee':
        return await payeeCommand(rest);
      case 'payer':
        return await payerCommand(rest);
      case 'proxy':
        return await proxyCommand(rest);
      case '--version':
      case '-v':
      case 'version':
        process.stdout.write(`${packageVersion()}\n`);
        return 0;
      case undefined:
      case 'help':
      case '--help':
      case '-h': {
        const topic = rest[0];
        // `paychan help payer pay`: that subcommand's own help.
        if (rest[1] !== undefined && (topic === 'payer' || topic === 'payee' || topic === 'regtest')) return await main([topic, rest[1], '--help']);
        const helps: Record<string, string> = { demo: DEMO_HELP, regtest: REGTEST_HELP, payee: PAYEE_HELP, payer: PAYER_HELP, proxy: PROXY_HELP };
        process.stdout.write((topic && helps[topic]) || HELP);
        return 0;
      }
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (err) {
    // Under --json the failure is one object too, stdout's last line, as for a stopped run
    // (report.ts): a script reads `error.code` whatever went wrong (docs/cli.md).
    if (jsonAsked(rest)) printJson({ error: { code: err instanceof UsageError ? 'USAGE' : errorCode(err), message: errorText(err) } });
    if (err instanceof UsageError) {
      process.stderr.write(`paychan: ${err.message}\nRun 'paychan help' for usage.\n`);
      return 2;
    }
    process.stderr.write(`paychan: ${errorText(err)}\n`);
    if (process.env.PAYCHAN_DEBUG) process.stderr.write(`${err instanceof Error ? err.stack : ''}\n`);
    return 1;
  }
}

/**
 * Whether the command line asks for JSON output: `--json` before a `--`, or PAYCHAN_JSON (as
 * every flag may come from the environment). Read from the raw arguments, because the failure
 * may be the parsing itself.
 */
function jsonAsked(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  if ((end < 0 ? argv : argv.slice(0, end)).includes('--json')) return true;
  const env = process.env.PAYCHAN_JSON;
  return env === '1' || env === 'true';
}
