/**
 * `paychan payee serve` — the payee service: channels over WebSocket, a priced example route
 * over HTTP 402, health, readiness and Prometheus metrics, state in SQLite.
 */
import path from 'node:path';
import { paychanHome } from '../app/files.js';
import { connectNode } from '../app/node-connection.js';
import { PAID_ROUTE_PREFIX, startPayeeApp } from '../app/payee-app.js';
import { NODE_OPTIONS, amountSat, feeRate, hostPort, logger, networkOf, parse, printJson, UsageError } from './options.js';

export const PAYEE_HELP = `paychan payee serve — run the payee service

Usage:
  paychan payee serve [options]

Options (flag, or env PAYCHAN_<NAME>, or a key in the --config JSON file):
  --network NET       regtest (default), signet, testnet or mainnet (mainnet also needs --mainnet)
  --rpc-url URL       the node's JSON-RPC (btcd or bitcoind); default: the local node of
                      'paychan regtest start'
  --rpc-user USER     --rpc-pass PASS
  --data-dir DIR      keys (seed, mode 0600) and database; default $PAYCHAN_HOME/payee
  --db PATH           SQLite database; default DIR/payee.db
  --listen HOST:PORT  where to listen; default 127.0.0.1:8420
  --price-sat SAT     price of one request to the example route GET ${PAID_ROUTE_PREFIX}*; default 10
  --fee-rate SAT/VB   close fee rate when the node has no estimate; default 2
  --zero-conf-limit SAT
                      take payments before the funding confirms, up to SAT per channel
                      (risky: a funding can be double-spent until it confirms); default off
  --json              print one JSON line {url, wsUrl, payoutAddress} once listening
  --config FILE       JSON file of options

Endpoints: ws://HOST:PORT/v1/ws (channels), GET /healthz, /readyz, /metrics,
/v1/channels/:id, and the priced ${PAID_ROUTE_PREFIX}* (HTTP 402). Stops on SIGINT/SIGTERM.
`;

export async function payeeCommand(argv: string[]): Promise<number> {
  const p = parse(argv, { ...NODE_OPTIONS, 'data-dir': { type: 'string' }, db: { type: 'string' }, listen: { type: 'string', default: '127.0.0.1:8420' }, 'price-sat': { type: 'string' }, 'fee-rate': { type: 'string' }, 'zero-conf-limit': { type: 'string' } });
  const [sub] = p.positionals;
  if (p.flag('help') || sub === undefined || sub === 'help') {
    process.stdout.write(PAYEE_HELP);
    return 0;
  }
  if (sub !== 'serve') throw new UsageError(`unknown payee command '${sub}'`);
  const network = networkOf(p);
  const log = logger(p);
  const { host, port } = hostPort('--listen', p.str('listen')!);
  const priceSat = amountSat('--price-sat', p.str('price-sat'), 10n);
  const fallbackFeeRateSatPerVb = feeRate('--fee-rate', p.str('fee-rate'), 2);
  const zeroConfLimitSat = p.str('zero-conf-limit') === undefined ? 0n : amountSat('--zero-conf-limit', p.str('zero-conf-limit'));
  const backend = await connectNode({ url: p.str('rpc-url'), user: p.str('rpc-user'), pass: p.str('rpc-pass') }, network);
  const dataDir = p.str('data-dir') ?? path.join(paychanHome(), 'payee');
  const app = await startPayeeApp({ network, backend, dataDir, dbPath: p.str('db'), host, port, priceSat, fallbackFeeRateSatPerVb, policy: zeroConfLimitSat > 0n ? { allowZeroConf: true, zeroConfLimitSat } : {}, log: (l) => log(`payee: ${l}`) });
  if (p.flag('json')) printJson({ url: app.server.url, wsUrl: app.server.wsUrl, payoutAddress: app.payoutAddress, network, pid: process.pid });
  else {
    log(`payee listening: channels at ${app.server.wsUrl}`);
    log(`  priced example route: ${app.server.url}${PAID_ROUTE_PREFIX}hello (${priceSat} sat per request)`);
    log(`  health ${app.server.url}/healthz, metrics ${app.server.url}/metrics`);
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
