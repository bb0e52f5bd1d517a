/**
 * `paychan proxy` — a paywall in front of any HTTP upstream: the payee service (channels over
 * WebSocket, state in SQLite) and a reverse proxy on the same port, pricing the upstream's routes
 * per request, per KiB and per second (src/proxy, docs/proxy.md).
 */
import fs from 'node:fs';
import path from 'node:path';
import { paychanHome } from '../app/files.js';
import { connectNode } from '../app/node-connection.js';
import { startPayeeApp } from '../app/payee-app.js';
import { corsPolicy } from '../transport/cors.js';
import { parseUpstream } from '../proxy/http-proxy.js';
import { parsePriceTable, parsePriceTableText, PriceTableError, type PriceTable } from '../proxy/price-table.js';
import { proxyX402 } from '../x402/proxy-binding.js';
import { createPaychanProxy } from '../proxy/proxy.js';
import { helpText } from './help.js';
import { NODE_OPTIONS, amountSat, feeRate, hostPort, logger, networkOf, parse, printJson, seconds, UsageError, type Parsed } from './options.js';

export const PROXY_HELP = `paychan proxy — a paywall in front of any HTTP API: pay-per-request over payment channels

Usage:
  paychan proxy --upstream URL --prices FILE [options]

Runs the payee service (channels on ws://HOST:PORT/v1/ws) and, on the same port, a reverse
proxy to URL: each request is priced by the FILE's routes (per request, per KiB of response,
per second of a stream: SSE, chunked responses, WebSockets), answered 402 until paid
(paychan's Paychan-Payment header, or x402 v2's PAYMENT-SIGNATURE with paychan's x402
scheme; the 402 speaks both, and WWW-Authenticate: Paychan), then forwarded. The upstream never sees payment headers; it gets
X-Forwarded-For/-Host/-Proto. A 5xx, an unreachable or a slow upstream is not charged. Streams
are cut off when what was paid runs out; unused prepaid time or bytes are credited back.
The payee's own routes (/v1/ws, /healthz, /readyz, /metrics, /v1/channels/*, /v1/duplex/*,
/v1/admin/*) are not proxied.

Options (flag, or env PAYCHAN_<NAME>, or a key in the --config JSON file):
  --upstream URL        the API to put a price on, e.g. http://127.0.0.1:3000 (required)
  --prices FILE         the price table (JSON, see below; required). In the --config file,
                        "prices" may also be the table itself
  --cors-origins LIST   origins browser pages may pay from, comma-separated, or '*' for any;
                        default none (no CORS headers)
  --upstream-timeout S  seconds the upstream has to start answering once it has the whole
                        request; default 30 (then 504)
  --ws-idle-timeout S   a relayed WebSocket with no frame either way for S seconds is closed;
                        default 300
  --listen HOST:PORT    where to listen; default 127.0.0.1:8420
  --trust-proxy         a reverse proxy on this machine (TLS) forwards the clients: count them
                        by X-Forwarded-For for the per-address limits (loopback sockets only)
  --network NET         regtest (default), signet, testnet or mainnet (mainnet also needs --mainnet)
  --rpc-url URL         the node's JSON-RPC (btcd or bitcoind); default: the local node of
                        'paychan regtest start'
  --rpc-user USER       --rpc-pass PASS
  --data-dir DIR        keys and database; default $PAYCHAN_HOME/payee
  --db PATH             SQLite database; default DIR/payee.db
  --fee-rate SAT/VB     close fee rate when the node has no estimate; default 2
  --zero-conf-limit SAT take payments before the funding confirms, up to SAT per channel (risky)
  --json                print one JSON line {url, wsUrl, upstream, payoutAddress} once listening
  --config FILE         JSON file of options

Price table (first matching route wins; a request no route matches gets 404 NO_ROUTE):
  {"routes": [
    {"path": "/api/:id", "method": "GET", "perRequestSat": 10},
    {"path": "/files/*", "perRequestSat": 1, "perKiBSat": 2, "prepayKiB": 4096},
    {"path": "/events", "perSecondSat": 5, "prepaySeconds": 30},
    {"path": "/*"}
  ]}
  Every started KiB and second is charged; a route with no price is forwarded free.

Example:
  paychan proxy --upstream http://127.0.0.1:3000 --prices prices.json --cors-origins https://app.example
`;

/** The price table: the --prices file, or the config file's inline "prices" object. */
function loadPrices(p: Parsed): PriceTable {
  const value = p.str('prices');
  if (value === undefined) throw new UsageError('--prices FILE is required (the price table, see paychan proxy --help)');
  const config = p.str('config');
  if (config !== undefined) {
    const inline = (JSON.parse(fs.readFileSync(config, 'utf8')) as Record<string, unknown>).prices;
    // The option resolved to the config file's object (options.ts stringifies it): use the object.
    if (typeof inline === 'object' && inline !== null && value === String(inline as object)) return rethrow(() => parsePriceTable(inline), `${config}: prices`);
  }
  let text: string;
  try {
    text = fs.readFileSync(value, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read --prices ${value}: ${(err as Error).message}`);
  }
  return rethrow(() => parsePriceTableText(text, value), undefined);
}

function rethrow<T>(f: () => T, source: string | undefined): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof PriceTableError) throw new UsageError(source ? `${source}: ${err.message}` : err.message);
    throw err;
  }
}

export async function proxyCommand(argv: string[]): Promise<number> {
  const p = parse(argv, {
    ...NODE_OPTIONS,
    upstream: { type: 'string' },
    prices: { type: 'string' },
    'cors-origins': { type: 'string' },
    'upstream-timeout': { type: 'string' },
    'ws-idle-timeout': { type: 'string' },
    'data-dir': { type: 'string' },
    db: { type: 'string' },
    listen: { type: 'string', default: '127.0.0.1:8420' },
    'fee-rate': { type: 'string' },
    'zero-conf-limit': { type: 'string' },
    'trust-proxy': { type: 'boolean' },
  });
  if (p.flag('help') || p.positionals[0] === 'help') {
    process.stdout.write(helpText('proxy', PROXY_HELP, {}, undefined));
    return 0;
  }
  if (p.positionals.length > 0) throw new UsageError(`paychan proxy takes no arguments, got '${p.positionals[0]}'`);
  const upstreamUrl = p.str('upstream');
  if (upstreamUrl === undefined) throw new UsageError('--upstream URL is required (the API to put a price on)');
  try {
    parseUpstream(upstreamUrl);
  } catch (err) {
    throw new UsageError(`--upstream: ${(err as Error).message}`);
  }
  const prices = loadPrices(p);
  const originsText = p.str('cors-origins');
  let cors;
  try {
    cors = corsPolicy(originsText ? originsText.split(',').map((o) => o.trim()).filter(Boolean) : []);
  } catch (err) {
    throw new UsageError(`--cors-origins: ${(err as Error).message}`);
  }
  const upstreamTimeoutMs = seconds('--upstream-timeout', p.str('upstream-timeout'), 30) * 1000;
  const wsIdleTimeoutMs = seconds('--ws-idle-timeout', p.str('ws-idle-timeout'), 300) * 1000;
  const network = networkOf(p);
  const log = logger(p);
  const dataDir = p.str('data-dir') ?? path.join(paychanHome(), 'payee');
  const { host, port } = hostPort('--listen', p.str('listen')!);
  const fallbackFeeRateSatPerVb = feeRate('--fee-rate', p.str('fee-rate'), 2);
  const zeroConfLimitSat = p.str('zero-conf-limit') === undefined ? 0n : amountSat('--zero-conf-limit', p.str('zero-conf-limit'));
  const backend = await connectNode({ url: p.str('rpc-url'), user: p.str('rpc-user'), pass: p.str('rpc-pass') }, network);
  const app = await startPayeeApp({
    network,
    backend,
    dataDir,
    dbPath: p.str('db'),
    host,
    port,
    priceSat: 1n,
    trustProxy: p.flag('trust-proxy'),
    fallbackFeeRateSatPerVb,
    policy: zeroConfLimitSat > 0n ? { allowZeroConf: true, zeroConfLimitSat } : {},
    log: (l) => log(`payee: ${l}`),
    // x402 payers pay through the same books as paychan's header (src/x402/proxy-binding.ts).
    mount: (paywall, payee) => createPaychanProxy({ upstream: upstreamUrl, prices, paywall, cors, upstreamTimeoutMs, wsIdleTimeoutMs, x402: proxyX402(payee), log: (l) => log(l) }),
  });
  if (p.flag('json')) printJson({ url: app.server.url, wsUrl: app.server.wsUrl, upstream: upstreamUrl, payoutAddress: app.payoutAddress, network, pid: process.pid });
  else {
    log(`paychan proxy listening on ${app.server.url} → ${upstreamUrl} (${prices.routes.length} priced routes)`);
    log(`  channels at ${app.server.wsUrl}; closes pay out to ${app.payoutAddress}`);
  }
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  log('proxy: stopping');
  await app.close();
  await backend.close();
  return 0;
}
