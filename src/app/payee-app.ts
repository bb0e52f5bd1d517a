/**
 * A running payee: its data dir (locked; one store for Spilman channels, duplex side B's records
 * and B's wallet) + service + HTTP/WebSocket server + a priced example route.
 * What `paychan payee serve` runs, and what the multi-process tests start.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { address as baddress } from 'bitcoinjs-lib';
import type { ChainBackend } from '../chain/backend.js';
import { secp256k1 } from '../crypto/index.js';
import { bitcoinjsNetwork, type NetworkName } from '../protocol/network.js';
import type { DuplexPolicy } from '../protocol/duplex-update.js';
import { payeePolicy, type PayeePolicy } from '../protocol/policy.js';
import { PayeeService } from '../payee/payee-service.js';
import type { Store } from '../store/store.js';
import { PayeeMetrics } from '../transport/metrics.js';
import { sendError, sendJson } from '../transport/http-replies.js';
import { BUILTIN_ROUTES, pathOf, type ExtraRoutes, type HttpRoute } from '../transport/http-routes.js';
import { PAYEE_WS_PATH, startPayeeServer, type PayeeServer, type UpgradeRoutes } from '../transport/payee-server.js';
import { corsPolicy } from '../transport/cors.js';
import { FUNDING_ROUTES, fundingRoute } from '../transport/funding-route.js';
import { FundingFinder } from '../payee/funding-finder.js';
import { DEMO_ROUTES, demoPageRoute } from './demo-page-route.js';
import { Paywall } from '../transport/paywall.js';
import { paywallMiddleware } from '../transport/paywall-http.js';
import { WalletKeys } from '../wallet/keys.js';
import { CHANNEL_LIST_ROUTES, channelListRoute, listChannels } from './channel-list.js';
import { Dashboard } from './dashboard/dashboard.js';
import { DASHBOARD_API_ROUTES, DASHBOARD_ROUTES, dashboardRoutes } from './dashboard/dashboard-routes.js';
import { bearerAuthorizer, DUPLEX_ADMIN_ROUTES, duplexAdminRoutes, routeDuplexFrames } from './duplex-routes.js';
import { OPENAPI_ROUTE, payeeOpenApi } from './openapi.js';
import { openDuplexSide, type DuplexSide } from './duplex-side.js';
import { openDataDir, type DataDir } from './data-dir.js';
import { loadOrCreateAdminToken } from './files.js';

/** The example priced route every payee serves: `GET /v1/paid/<anything>`. */
export const PAID_ROUTE_PREFIX = '/v1/paid/';

export interface PayeeAppOptions {
  readonly network: NetworkName;
  readonly backend: ChainBackend;
  /** Holds `seed` and, unless `dbPath` is given, `payee.db`. */
  readonly dataDir: string;
  readonly dbPath?: string;
  readonly host: string;
  readonly port: number;
  /**
   * Price of one request to the example route, satoshis; without it there is no example route
   * (an application embedding the payee prices its own routes: createPayee).
   */
  readonly priceSat?: bigint;
  readonly fallbackFeeRateSatPerVb: number;
  /** Where closes pay the payee (an address of `network`); default the data dir wallet's first address. */
  readonly payoutAddress?: string;
  readonly policy?: Partial<PayeePolicy>;
  readonly duplexPolicy?: Partial<DuplexPolicy>;
  readonly log: (line: string) => void;
  /**
   * Origins whose pages may pay and read the answers (CORS on the paywall and channel routes;
   * `*` for any), e.g. `https://app.example`. Default none. Not used with `mount`: a mounted
   * application (`paychan proxy`) answers CORS itself.
   * @throws TypeError (from startPayeeApp) for an origin that is not scheme://host[:port] or `*`.
   */
  readonly corsOrigins?: readonly string[];
  /** Behind a reverse proxy on this machine: per-address limits count clients by X-Forwarded-For (see PayeeServerOptions.trustProxy). */
  readonly trustProxy?: boolean;
  /**
   * An application on the same server, given the payee's paywall (`paychan proxy`): it gets
   * every request and upgrade the payee's own routes do not answer, and replaces the priced
   * example route.
   */
  readonly mount?: (paywall: Paywall, payee: MountContext) => MountedRoutes;
}

/** What a mounted application learns of the payee besides its paywall. */
export interface MountContext {
  /** Where payers open channels (the server's channel WebSocket URL). */
  readonly channelUrl: string;
  /** The payee's policy (network, variants, capacities, expiries). */
  readonly policy: PayeePolicy;
}

/** What {@link PayeeAppOptions.mount} returns. */
export interface MountedRoutes {
  readonly request: ExtraRoutes;
  readonly upgrade?: UpgradeRoutes;
  close(): void;
}

export interface PayeeApp {
  readonly service: PayeeService;
  readonly server: PayeeServer;
  readonly paywall: Paywall;
  readonly store: Store;
  readonly payoutAddress: string;
  /** Side B of duplex channels (its wallet's address takes coins B may put into channels). */
  readonly duplex: DuplexSide;
  /** Every route the payee itself answers (not a mounted application's), all in its OpenAPI document. */
  readonly routes: readonly HttpRoute[];
  close(): Promise<void>;
}

/**
 * The output script of `address` on `network`.
 * @throws TypeError if it is not an address of that network.
 */
export function payoutScriptOf(address: string, network: NetworkName): Uint8Array {
  try {
    return baddress.toOutputScript(address, bitcoinjsNetwork(network));
  } catch (err) {
    throw new TypeError(`payoutAddress ${address} is not a ${network} address (${(err as Error).message})`);
  }
}

/**
 * Opens the payee's data dir and starts its service and server (see the module comment).
 * @throws DataDirInUseError if another process uses the data dir.
 * @throws TypeError for a payoutAddress not of `network`.
 */
export async function startPayeeApp(options: PayeeAppOptions): Promise<PayeeApp> {
  const dir = await openDataDir(options.dataDir, { ...(options.dbPath === undefined ? {} : { dbFile: options.dbPath }), defaultDb: 'payee.db', log: options.log });
  try {
    return await startOn(options, dir);
  } catch (err) {
    await dir.close().catch(() => undefined);
    throw err;
  }
}

async function startOn(options: PayeeAppOptions, dir: DataDir): Promise<PayeeApp> {
  const { store } = dir;
  const keys = WalletKeys.fromSeed(dir.seed, options.network);
  const payout = options.payoutAddress === undefined ? keys.address('receive', 0) : { address: options.payoutAddress, script: payoutScriptOf(options.payoutAddress, options.network) };
  const metrics = new PayeeMetrics();
  const policy = payeePolicy({ network: options.network, ...options.policy });
  // The operator's dashboard (src/app/dashboard): its sources are read only once both sides run.
  const dashboard = new Dashboard({ network: options.network, backend: options.backend, spilman: () => service.peekChannels(), duplex: () => duplex.peer.allStates(), log: options.log });
  const onPayment = (channelId: string, totalSat: bigint, deltaSat: bigint): void => {
    metrics.onPayment(channelId, totalSat, deltaSat);
    dashboard.activity.onPayment(channelId);
  };
  const service = await PayeeService.open({
    secp: secp256k1(),
    policy,
    backend: options.backend,
    store,
    keys,
    payoutScript: payout.script,
    fallbackFeeRateSatPerVb: options.fallbackFeeRateSatPerVb,
    log: options.log,
    onPayment,
  });
  service.start();
  const duplex = await openDuplexSide({ role: 'B', network: options.network, backend: options.backend, dataDir: options.dataDir, opened: dir, fallbackFeeRateSatPerVb: options.fallbackFeeRateSatPerVb, policy: options.duplexPolicy, log: options.log });
  duplex.start();
  const adminToken = loadOrCreateAdminToken(options.dataDir);
  const admin = duplexAdminRoutes(duplex.peer, duplex.watcher, adminToken);
  const channelList = channelListRoute(() => listChannels(service.channels(), duplex.peer), bearerAuthorizer(adminToken));
  // The page not behind `paychan proxy` (the upstream's scripts would share its origin and token).
  const dashboardPage = dashboardRoutes(() => dashboard.snapshot(), bearerAuthorizer(adminToken), { page: !options.mount });
  // Pages whose user paid a channel's address learn its funding here (GET /v1/funding/:script).
  const funding = fundingRoute(new FundingFinder(options.backend), () => options.backend.getTip());
  // Not behind `paychan proxy`: the page keeps channel keys in the origin's IndexedDB, which the
  // upstream's own scripts share there, and the upstream's own /demo would be shadowed.
  const demo = options.mount ? () => false : demoPageRoute({ network: options.network });
  // The paywall needs the server's URL and the server needs the route: filled in below.
  const late: { paywall?: Paywall; mounted?: MountedRoutes } = {};
  let served = 0;
  const examplePriceSat = options.priceSat;
  const exampleRoute = !options.mount && examplePriceSat !== undefined;
  const routes: HttpRoute[] = [
    ...BUILTIN_ROUTES,
    { method: 'GET', path: PAYEE_WS_PATH },
    // Behind `paychan proxy` the upstream's own /openapi.json (a common path) is not shadowed.
    ...(options.mount ? [] : [{ method: 'GET', path: OPENAPI_ROUTE } as const]),
    ...CHANNEL_LIST_ROUTES,
    ...(options.mount ? DASHBOARD_API_ROUTES : DASHBOARD_ROUTES),
    ...DUPLEX_ADMIN_ROUTES,
    ...FUNDING_ROUTES,
    ...(options.mount ? [] : DEMO_ROUTES),
    ...(exampleRoute ? [{ method: 'GET', path: `${PAID_ROUTE_PREFIX}{path}` } as const] : []),
  ];
  // Built once: the document changes only with the code.
  const openApi = payeeOpenApi({ exampleRoute });
  const describe = (req: IncomingMessage, res: ServerResponse): boolean => {
    // startsWith first: no allocation for the other requests (the priced route's among them).
    if (options.mount || !req.url?.startsWith(OPENAPI_ROUTE) || pathOf(req) !== OPENAPI_ROUTE) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') sendError(res, 'METHOD_NOT_ALLOWED', undefined, { allow: 'GET, HEAD' });
    else sendJson(res, 200, openApi);
    return true;
  };
  const priced = (req: IncomingMessage, res: ServerResponse): boolean => {
    if (options.mount || examplePriceSat === undefined || req.method !== 'GET' || !req.url?.startsWith(PAID_ROUTE_PREFIX) || !late.paywall) return false;
    paywallMiddleware(late.paywall, { priceSat: () => examplePriceSat }, options.log)(req, res, () => {
      served++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, path: req.url, priceSat: Number(examplePriceSat), served }));
    });
    return true;
  };
  const server = await startPayeeServer({
    service: routeDuplexFrames(service, duplex.peer),
    host: options.host,
    port: options.port,
    metrics,
    ...(options.corsOrigins?.length && !options.mount ? { cors: corsPolicy(options.corsOrigins) } : {}),
    ...(options.trustProxy ? { trustProxy: true } : {}),
    // Synchronous until a route answers: a request none of these take (each one `paychan proxy`
    // forwards) costs no promise here.
    extraRoutes: (req, res) => {
      if (describe(req, res) || priced(req, res) || channelList(req, res) || dashboardPage(req, res)) return true;
      const fundingAnswer = funding(req, res);
      if (fundingAnswer !== false) return fundingAnswer;
      if (demo(req, res)) return true;
      const adminAnswer = admin(req, res);
      if (adminAnswer !== false) return adminAnswer;
      return late.mounted !== undefined && late.mounted.request(req, res);
    },
    upgradeRoutes: (req, socket, head) => late.mounted?.upgrade?.(req, socket, head) ?? false,
    ready: async () => {
      await options.backend.getTip();
      return true;
    },
    log: options.log,
  });
  const paywall = new Paywall({ payee: service, channelUrl: server.wsUrl, network: options.network });
  late.paywall = paywall;
  late.mounted = options.mount?.(paywall, { channelUrl: server.wsUrl, policy });
  dashboard.start();
  return {
    service,
    server,
    paywall,
    store,
    payoutAddress: payout.address,
    duplex,
    routes,
    async close() {
      late.mounted?.close();
      dashboard.stop();
      await server.close();
      service.stop();
      await service.drain();
      await duplex.close(); // saves B's wallet into the store: before the store closes
      await dir.close();
    },
  };
}
