/**
 * `paychan payee serve` — the payee service: channels over WebSocket, a priced example route
 * over HTTP 402, health, readiness and Prometheus metrics, state in SQLite.
 */
import fs from 'node:fs';
import path from 'node:path';
import { adminTokenFile, ensurePrivateDir, loadOrCreateSeed, paychanHome } from '../app/files.js';
import { WalletKeys } from '../wallet/keys.js';
import { connectNode } from '../app/node-connection.js';
import { PAID_ROUTE_PREFIX, startPayeeApp } from '../app/payee-app.js';
import { ADMIN_CHANNELS_ROUTE } from '../app/channel-list.js';
import { corsPolicy } from '../transport/cors.js';
import { CHANNEL_KIND_CHOICES } from './channel-kinds.js';
import { helpText, type CommandHelp } from './help.js';
import { NODE_OPTIONS, amountSat, feeRate, hostPort, logger, networkOf, parse, printJson, UsageError } from './options.js';

const SERVE_JSON = '--json              print one JSON line {url, wsUrl, payoutAddress} once listening';
const GROUP_JSON = `--json              print one JSON line {url, wsUrl, payoutAddress} once listening (serve),
                    or the answer (address, pay-back, channels)`;
const SERVE_OPTIONS = `--network NET       regtest (default), signet, testnet or mainnet (mainnet also needs --mainnet)
--rpc-url URL       the node's JSON-RPC (btcd or bitcoind); default: the local node of
                    'paychan regtest start'
--rpc-user USER     --rpc-pass PASS
--data-dir DIR      keys (seed, mode 0600) and database; default $PAYCHAN_HOME/payee
--db PATH|URL       SQLite database file, or postgres://USER@HOST/DB for several
                    instances sharing one database (same seed in each DIR); default DIR/payee.db
--listen HOST:PORT  where to listen; default 127.0.0.1:8420
--price-sat SAT     price of one request to the example route GET ${PAID_ROUTE_PREFIX}*; default 10
--fee-rate SAT/VB   close fee rate when the node has no estimate; default 2
--zero-conf-limit SAT
                    take payments before the funding confirms, up to SAT per channel
                    (risky: a funding can be double-spent until it confirms); default off
--cors-origin LIST  origins whose pages may pay and read the answers (CORS on the paywall
                    and channel routes), comma-separated, or '*' for any; default none
--trust-proxy       a reverse proxy on this machine (TLS) forwards the clients: count them
                    by X-Forwarded-For for the per-address limits (loopback sockets only)
${SERVE_JSON}
--config FILE       JSON file of options`;

function indented(text: string): string {
  return text
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}

export const PAYEE_HELP = `paychan payee — run the payee service, and act on its duplex channels

Usage:
  paychan payee serve [options]          run the service (stops on SIGINT/SIGTERM)
  paychan payee address                  the payee wallet's address: coins sent there can go
                                         into duplex channels payers open (--payee-contribution)
  paychan payee pay-back CHANNEL AMOUNT  duplex: pay AMOUNT satoshis back to the payer of CHANNEL,
                                         through the running service (at once if the payer is
                                         connected, else when it next connects)
  paychan payee force-close CHANNEL      duplex: close alone; the newest state is published the
                                         moment its locktime passes
  paychan payee channels                 every channel (spilman-v1/v2 and duplex) of the running
                                         service: variant, state, capacity, paid, expiry
  paychan payee COMMAND --help           one command's usage, options and an example

Options (flag, or env PAYCHAN_<NAME>, or a key in the --config JSON file):
${indented(SERVE_OPTIONS.replace(SERVE_JSON, GROUP_JSON))}

Endpoints: ws://HOST:PORT/v1/ws (channels), GET /healthz, /readyz, /metrics,
/v1/channels/:id, the priced ${PAID_ROUTE_PREFIX}* (HTTP 402), the operator's dashboard
/dashboard (a page; log in with DIR/admin-token), and the admin routes POST /v1/duplex/pay-back,
GET /v1/duplex/channels, GET /v1/admin/channels (every channel), GET /v1/admin/dashboard
(Authorization: Bearer <DIR/admin-token>).
pay-back and channels reach the service at --listen, with the token of --data-dir.
`;

const ADMIN_OPTIONS = `--listen HOST:PORT  where the running service listens; default 127.0.0.1:8420
--data-dir DIR      the service's data dir (its admin token); default $PAYCHAN_HOME/payee
--json              print the answer as one JSON object`;

/** Each payee subcommand's own help (`paychan payee serve --help`). */
export const PAYEE_COMMANDS: Readonly<Record<string, CommandHelp>> = {
  serve: {
    usage: 'serve [options]',
    about:
      `run the payee service (stops on SIGINT/SIGTERM)\nChannels on ws://HOST:PORT/v1/ws; GET /healthz, /readyz, /metrics, /v1/channels/:id; the priced\nexample route ${PAID_ROUTE_PREFIX}* (HTTP 402); the dashboard /dashboard; admin routes for pay-back,\nforce-close and channels.`,
    options: SERVE_OPTIONS,
    example: 'paychan payee serve --listen 127.0.0.1:8420 --price-sat 10',
  },
  address: {
    usage: 'address',
    about: "the payee wallet's address\nCoins sent there can go into duplex channels payers open (--payee-contribution).",
    options: `--data-dir DIR      default $PAYCHAN_HOME/payee\n--network NET       default regtest\n--json              {"address": ...}`,
    example: 'paychan payee address',
  },
  'pay-back': {
    usage: 'pay-back CHANNEL AMOUNT',
    about:
      'duplex: pay AMOUNT satoshis back to the payer of CHANNEL, through the running service\nAt once if the payer is connected, else when it next connects (paychan payer sync).',
    options: ADMIN_OPTIONS,
    example: 'paychan payee pay-back 3f…a1:0 3000',
  },
  'force-close': {
    usage: 'force-close CHANNEL',
    about: 'duplex: close alone; the newest state is published the moment its locktime passes',
    options: ADMIN_OPTIONS,
    example: 'paychan payee force-close 3f…a1:0',
  },
  channels: {
    usage: 'channels',
    about: `every channel of the running service (${CHANNEL_KIND_CHOICES.split('|').join(', ')})\nWith its variant, state, capacity, what was paid, and its expiry height.`,
    options: ADMIN_OPTIONS,
    example: 'paychan payee channels --json',
  },
};

/** `--cors-origin`'s comma-separated origins, checked. @throws UsageError for a malformed one. */
function corsOriginsOf(text: string | undefined): string[] {
  const origins = (text ?? '').split(',').map((o) => o.trim()).filter(Boolean);
  try {
    corsPolicy(origins);
  } catch (err) {
    throw new UsageError(`--cors-origin: ${(err as Error).message}`);
  }
  return origins;
}

/** Calls the running service's admin route with the data dir's token. */
async function admin(listen: string, dataDir: string, method: 'GET' | 'POST', route: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  let token: string;
  try {
    token = fs.readFileSync(adminTokenFile(dataDir), 'utf8').trim();
  } catch {
    throw Object.assign(new Error(`no admin token in ${dataDir}: start the service first (paychan payee serve --data-dir ${dataDir})`), { code: 'NO_ADMIN_TOKEN' });
  }
  let res: Response;
  try {
    res = await fetch(`http://${listen}${route}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  } catch (err) {
    throw Object.assign(new Error(`the payee service is not reachable at http://${listen} (${(err as Error).message}): is 'paychan payee serve' running with --listen ${listen}?`), { code: 'PAYEE_UNREACHABLE' });
  }
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** The service's refusal (an HTTP error body `{code, message}`) as an error with that code. */
function adminRefusal(body: Record<string, unknown>): Error {
  return Object.assign(new Error(`${String(body.code)}: ${String(body.message)}`), { code: typeof body.code === 'string' ? body.code : 'ERROR' });
}

export async function payeeCommand(argv: string[]): Promise<number> {
  const p = parse(argv, { ...NODE_OPTIONS, 'data-dir': { type: 'string' }, db: { type: 'string' }, listen: { type: 'string', default: '127.0.0.1:8420' }, 'price-sat': { type: 'string' }, 'fee-rate': { type: 'string' }, 'zero-conf-limit': { type: 'string' }, 'cors-origin': { type: 'string' }, 'trust-proxy': { type: 'boolean' } });
  const [sub] = p.positionals;
  if (p.flag('help') || sub === undefined || sub === 'help') {
    process.stdout.write(helpText('payee', PAYEE_HELP, PAYEE_COMMANDS, sub === 'help' ? p.positionals[1] : sub));
    return 0;
  }
  if (!['serve', 'address', 'pay-back', 'force-close', 'channels'].includes(sub)) throw new UsageError(`unknown payee command '${sub}'`);
  const network = networkOf(p);
  const log = logger(p);
  const dataDir = p.str('data-dir') ?? path.join(paychanHome(), 'payee');
  if (sub === 'address') {
    const address = WalletKeys.fromSeed(loadOrCreateSeed(path.join(ensurePrivateDir(dataDir), 'seed')), network).address('receive', 0).address;
    if (p.flag('json')) printJson({ address });
    else log(address);
    return 0;
  }
  if (sub === 'pay-back' || sub === 'channels' || sub === 'force-close') {
    const listen = p.str('listen')!;
    if (sub === 'force-close') {
      const [, channelId] = p.positionals;
      if (channelId === undefined) throw new UsageError('usage: paychan payee force-close CHANNEL');
      const r = await admin(listen, dataDir, 'POST', '/v1/duplex/force-close', { channelId });
      if (r.status !== 200) throw adminRefusal(r.body);
      if (p.flag('json')) printJson(r.body);
      else log(`closing ${channelId} alone: the newest state can be mined from block ${String(r.body.minedFromHeight)}`);
      return 0;
    }
    if (sub === 'channels') {
      const r = await admin(listen, dataDir, 'GET', ADMIN_CHANNELS_ROUTE);
      if (r.status !== 200) throw adminRefusal(r.body);
      if (p.flag('json')) printJson(r.body);
      else {
        const rows = r.body.channels as Record<string, unknown>[];
        if (rows.length === 0) log('no channels');
        for (const c of rows) {
          const back = c.paidBackSat === undefined ? '' : `, paid back ${String(c.paidBackSat)} sat`;
          log(`${String(c.channelId)} ${String(c.variant)} ${String(c.state)}: capacity ${String(c.capacitySat)} sat, paid ${String(c.paidSat)} sat${back}, expiry height ${String(c.expiryHeight)}`);
        }
      }
      return 0;
    }
    const [, channelId, amount] = p.positionals;
    if (channelId === undefined || amount === undefined) throw new UsageError('usage: paychan payee pay-back CHANNEL AMOUNT');
    const amountValue = amountSat('AMOUNT', amount);
    const r = await admin(listen, dataDir, 'POST', '/v1/duplex/pay-back', { channelId, amountSat: Number(amountValue) });
    if (r.status !== 200 && r.status !== 202) throw adminRefusal(r.body);
    if (p.flag('json')) printJson(r.body);
    else log(r.body.queued ? `queued ${amountValue} sat to the payer of ${channelId}: ${String(r.body.message)}` : `paid ${amountValue} sat back on ${channelId} (state ${String(r.body.index)})`);
    return 0;
  }
  const { host, port } = hostPort('--listen', p.str('listen')!);
  const priceSat = amountSat('--price-sat', p.str('price-sat'), 10n);
  const fallbackFeeRateSatPerVb = feeRate('--fee-rate', p.str('fee-rate'), 2);
  const zeroConfLimitSat = p.str('zero-conf-limit') === undefined ? 0n : amountSat('--zero-conf-limit', p.str('zero-conf-limit'));
  const corsOrigins = corsOriginsOf(p.str('cors-origin'));
  const backend = await connectNode({ url: p.str('rpc-url'), user: p.str('rpc-user'), pass: p.str('rpc-pass') }, network);
  const app = await startPayeeApp({
    corsOrigins, trustProxy: p.flag('trust-proxy'), network, backend, dataDir, dbPath: p.str('db'), host, port, priceSat, fallbackFeeRateSatPerVb, policy: zeroConfLimitSat > 0n ? { allowZeroConf: true, zeroConfLimitSat } : {}, log: (l) => log(`payee: ${l}`) });
  if (p.flag('json')) printJson({ url: app.server.url, wsUrl: app.server.wsUrl, payoutAddress: app.payoutAddress, network, pid: process.pid });
  else {
    log(`payee listening: channels at ${app.server.wsUrl}`);
    log(`  priced example route: ${app.server.url}${PAID_ROUTE_PREFIX}hello (${priceSat} sat per request)`);
    log(`  health ${app.server.url}/healthz, metrics ${app.server.url}/metrics`);
    log(`  dashboard ${app.server.url}/dashboard (log in with the token in ${adminTokenFile(dataDir)})`);
    log(`  closes pay out to ${app.payoutAddress}`);
  }
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  log('payee: stopping');
  await app.close();
  await backend.close();
  return 0;
}
