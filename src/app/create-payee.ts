/**
 * `createPayee`: a payee in one call. It opens the payee's data dir (the CLI's
 * `$PAYCHAN_HOME/payee` by default), starts the service and its channel server (what
 * `paychan payee serve` runs), and prices any route of the application's own server in one
 * line: `app.get('/joke', payee.paywall(10), handler)` (Express, Node http) or
 * `app.use('/joke', payee.paywallHono(10))`.
 *
 * Why the channel server is its own listener: payers reach it by the `ws://` URL every 402
 * names, so the application's server needs no WebSocket upgrade wired in, whichever framework.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { NetworkName } from '../protocol/network.js';
import { payeePolicy, type PayeePolicy } from '../protocol/policy.js';
import { paywallHono, paywallMiddleware, type HonoPaywallMiddleware } from '../transport/paywall-http.js';
import { listChannels, type ChannelListRow } from './channel-list.js';
import { paychanX402, type PaychanX402 } from '../x402/index.js';
import { paychanHome } from './files.js';
import { resolveNode, type NodeOption } from './node-option.js';
import { startPayeeApp, type PayeeApp } from './payee-app.js';

export interface CreatePayeeOptions {
  /** Seed, store and admin token; default `$PAYCHAN_HOME/payee` (`~/.paychan/payee`), as the CLI. */
  readonly dataDir?: string;
  /** A node URL with credentials, a connected backend, or (default) the local regtest node. */
  readonly node?: NodeOption;
  /** Default `regtest`. */
  readonly network?: NetworkName;
  /**
   * `HOST:PORT` of the channel server (WebSocket, health, metrics); default `$PAYCHAN_LISTEN`,
   * else `127.0.0.1:8420`, as `paychan payee serve`. Port 0 picks a free one.
   */
  readonly listen?: string;
  /** Where closes pay out (an address string of `network`); default the data dir wallet's first address. */
  readonly payoutAddress?: string;
  /** Close fee rate when the node has no estimate; default 2 sat/vB. */
  readonly fallbackFeeRateSatPerVb?: number;
  readonly policy?: Partial<PayeePolicy>;
  /** Service log lines; default silent. */
  readonly log?: (line: string) => void;
}

/** Node `http` / Connect / Express middleware. */
export type NodePaywallMiddleware = (req: IncomingMessage, res: ServerResponse, next: () => void) => void;

export interface Payee {
  /** `http://HOST:PORT` of the channel server. */
  readonly url: string;
  /** `ws://HOST:PORT/v1/ws`: where payers open channels (every 402 names it). */
  readonly wsUrl: string;
  readonly payoutAddress: string;
  /**
   * Middleware for Node http, Connect and Express: answers 402 until the request carries a
   * payment of `priceSat`, then calls `next()`.
   * @throws RangeError if the price is not a positive whole number of satoshis.
   */
  paywall(priceSat: bigint | number): NodePaywallMiddleware;
  /** The same for Hono: `app.use('/api/*', payee.paywallHono(10))`. */
  paywallHono(priceSat: bigint | number): HonoPaywallMiddleware;
  /**
   * paychan's x402 scheme halves on this payee, for the official `@x402/express`/`@x402/hono`:
   * `new x402ResourceServer(x.facilitator).register(x.network, x.server)`, with `payTo: payee.wsUrl`.
   */
  x402(): PaychanX402;
  /** Every channel the payee holds (Spilman and duplex), with what was paid on it. */
  channels(): ChannelListRow[];
  /**
   * Duplex: pays `amountSat` back to the payer of `channelId`, and resolves once the payer
   * countersigned the new state (a payer that is away takes it when it next connects).
   * @throws RangeError for an unknown channel or an amount its balance cannot pay.
   */
  payBack(channelId: string, amountSat: bigint | number): Promise<void>;
  /** Duplex: an address of the payee's wallet, whose coins it may put into channels payers open. */
  address(): string;
  /** The service, server, 402 paywall and store underneath, for what the one-liners do not cover. */
  readonly app: PayeeApp;
  /** Stops taking channels, finishes what is in flight, and closes the data dir (and a node it connected). */
  close(): Promise<void>;
}

/**
 * Starts a payee ready to be paid.
 * @throws DataDirInUseError if another process uses the data dir.
 * @throws TypeError for a malformed `listen` or a payoutAddress not of `network`.
 * @throws Error, ChainBackendError from connecting to the node (see resolveNode).
 */
export async function createPayee(options: CreatePayeeOptions = {}): Promise<Payee> {
  const network = options.network ?? 'regtest';
  const { host, port } = parseListen(options.listen ?? (process.env.PAYCHAN_LISTEN || '127.0.0.1:8420'));
  const node = await resolveNode(options.node, network);
  let app: PayeeApp;
  try {
    app = await startPayeeApp({
      network,
      backend: node.backend,
      dataDir: options.dataDir ?? path.join(paychanHome(), 'payee'),
      host,
      port,
      fallbackFeeRateSatPerVb: options.fallbackFeeRateSatPerVb ?? 2,
      ...(options.payoutAddress === undefined ? {} : { payoutAddress: options.payoutAddress }),
      ...(options.policy === undefined ? {} : { policy: options.policy }),
      log: options.log ?? (() => undefined),
    });
  } catch (err) {
    await node.release().catch(() => undefined);
    throw err;
  }
  const policy = payeePolicy({ network, ...options.policy });
  let x402: PaychanX402 | undefined;
  return {
    url: app.server.url,
    wsUrl: app.server.wsUrl,
    payoutAddress: app.payoutAddress,
    paywall: (price) => {
      const priceSat = satoshis(price);
      return paywallMiddleware(app.paywall, { priceSat: () => priceSat });
    },
    paywallHono: (price) => {
      const priceSat = satoshis(price);
      return paywallHono(app.paywall, { priceSat: () => priceSat });
    },
    x402: () => (x402 ??= paychanX402({ paywall: app.paywall, payee: app.service, channelUrl: app.server.wsUrl, policy })),
    channels: () => listChannels(app.service.channels(), app.duplex.peer),
    async payBack(channelId, amountSat) {
      await (await app.duplex.peer.payBack(channelId, satoshis(amountSat))).applied;
    },
    address: () => app.duplex.wallet.receiveAddress(),
    app,
    async close() {
      try {
        await app.close();
      } finally {
        await node.release();
      }
    },
  };
}

function satoshis(amount: bigint | number): bigint {
  if (typeof amount === 'number' && !Number.isSafeInteger(amount)) throw new RangeError(`${amount} is not a whole number of satoshis`);
  const sat = BigInt(amount);
  if (sat <= 0n) throw new RangeError(`${sat} sat: must be at least 1 sat`);
  return sat;
}

function parseListen(listen: string): { host: string; port: number } {
  const at = listen.lastIndexOf(':');
  const port = Number(listen.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port < 0 || port > 65_535) throw new TypeError(`listen ${listen} is not HOST:PORT`);
  return { host: listen.slice(0, at), port };
}
