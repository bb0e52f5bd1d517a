/**
 * The payee's HTTP API as an OpenAPI 3.1 document, served at `GET /openapi.json` by every payee
 * started with startPayeeApp (`paychan payee serve`, createPayee) — but not behind `paychan
 * proxy`, whose upstream may serve its own /openapi.json. Written by hand next to the
 * routes rather than generated from them: the routes are plain node:http handlers, and a
 * document someone wrote says what a client may rely on (codes, units, who may call what).
 * test/integration/openapi.test.ts keeps the two together both ways: every route the payee
 * serves ({@link HttpRoute}s, from the tables next to each handler) is documented, and every
 * documented operation answers a real call with a documented status and a body of the
 * documented schema.
 *
 * Amounts are JSON integers of satoshis (docs/cli.md, "One machine interface").
 */
import fs from 'node:fs';
import type { HttpRoute } from '../transport/http-routes.js';
import { PAYEE_WS_PATH } from '../transport/payee-server.js';

export const OPENAPI_ROUTE = '/openapi.json';

const sat = (description: string) => ({ type: 'integer', minimum: 0, description: `${description} (satoshis)` });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object, description: string) => ({ description, content: { 'application/json': { schema } } });
const error = (description: string) => json(ref('Error'), description);
/** A static file: the dashboard's page and assets (served with a strict Content Security Policy). */
const page = (summary: string, type: string) => ({ summary, responses: { 200: { description: summary, content: { [type]: { schema: { type: 'string' } } } } } });
const CHANNEL_ID = { type: 'string', pattern: '^[0-9a-f]{64}:[0-9]{1,5}$', description: 'the funding outpoint txid:vout' };
const ADMIN = [{ adminToken: [] }];

const schemas = {
  Error: {
    type: 'object',
    description: 'Every error body: a stable code (src/transport/http-replies.ts, src/protocol/errors.ts) and a message for people.',
    required: ['code', 'message'],
    additionalProperties: false,
    properties: { code: { type: 'string' }, message: { type: 'string' } },
  },
  ChannelSummary: {
    type: 'object',
    required: ['channelId', 'state', 'capacitySat', 'paidSat'],
    additionalProperties: false,
    properties: {
      channelId: CHANNEL_ID,
      state: { type: 'string', enum: ['AwaitingConfirmation', 'ZeroConf', 'Open', 'Suspended', 'Expiring', 'Closing', 'Closed'], description: "the payee's state of the channel" },
      capacitySat: sat('coins locked in the channel'),
      paidSat: sat('the newest acknowledged total paid to the payee'),
    },
  },
  PaymentRequired: {
    type: 'object',
    description: 'The body of every 402 (docs/http-402.md).',
    required: ['code', 'message', 'priceSat', 'dueSat', 'channelUrl', 'network', 'header'],
    additionalProperties: false,
    properties: {
      code: { type: 'string', description: 'why: PAYMENT_REQUIRED, INSUFFICIENT_PAYMENT, PAYMENT_REPLAYED, UNKNOWN_CHANNEL, …' },
      message: { type: 'string' },
      priceSat: sat('the price of this request'),
      dueSat: sat('what the next payment on the channel must add for this request'),
      channelUrl: { type: 'string', description: 'the WebSocket URL where a payer opens a channel with this payee' },
      network: { type: 'string', enum: ['regtest', 'signet', 'testnet', 'mainnet'] },
      header: { type: 'string', description: 'the form of the Paychan-Payment header' },
    },
  },
  ChannelRow: {
    type: 'object',
    description: "A channel of any variant. Duplex rows also carry the DuplexChannel fields (as GET /v1/duplex/channels).",
    required: ['channelId', 'variant', 'capacitySat', 'paidSat', 'state', 'expiryHeight'],
    properties: {
      channelId: CHANNEL_ID,
      variant: { type: 'string', enum: ['spilman-v1', 'spilman-v2', 'duplex'] },
      capacitySat: sat('coins locked in the channel'),
      paidSat: sat('paid to the payee (duplex: A to B)'),
      paidBackSat: sat('duplex: paid back by the payee to the payer'),
      state: { type: 'string', description: "the payee's state (Spilman) or phase (duplex)" },
      expiryHeight: { type: 'integer', description: 'Spilman: the refund height, by which the payee must close; duplex: the locktime of the newest state' },
    },
  },
  DuplexChannel: {
    type: 'object',
    description: 'A duplex channel as the payee (side B) sees it.',
    required: ['tempId', 'role', 'phase', 'fundingConfirmed', 'updates', 'paidAtoBSat', 'paidBtoASat'],
    properties: {
      tempId: { type: 'string' },
      channelId: CHANNEL_ID,
      role: { type: 'string', enum: ['A', 'B'] },
      phase: { type: 'string', enum: ['opening', 'open', 'closing', 'closed', 'aborted'] },
      fundingConfirmed: { type: 'boolean' },
      capacitySat: sat('both contributions'),
      index: { type: 'integer', description: 'the newest state number' },
      balanceASat: sat("the payer's balance in the newest state"),
      balanceBSat: sat("the payee's balance in the newest state"),
      updates: { type: 'integer' },
      paidAtoBSat: sat('paid by the payer to the payee'),
      paidBtoASat: sat('paid back by the payee to the payer'),
      updatesLeft: { type: 'integer' },
      closeTxid: { type: 'string' },
      closeKind: { type: 'string' },
      successorId: { type: 'string' },
    },
  },
  PayBackQueued: {
    type: 'object',
    required: ['queued', 'requestId', 'channelId', 'amountSat', 'message'],
    additionalProperties: false,
    properties: { queued: { const: true }, requestId: { type: 'string' }, channelId: CHANNEL_ID, amountSat: sat('the pay-back'), message: { type: 'string' } },
  },
  PayBackDone: {
    type: 'object',
    required: ['queued', 'requestId', 'channelId', 'amountSat', 'index', 'balanceASat', 'balanceBSat'],
    additionalProperties: false,
    properties: {
      queued: { const: false },
      requestId: { type: 'string' },
      channelId: CHANNEL_ID,
      amountSat: sat('the pay-back'),
      index: { type: 'integer', description: 'the state both sides signed' },
      balanceASat: sat("the payer's balance now"),
      balanceBSat: sat("the payee's balance now"),
    },
  },
};

/**
 * The document. `exampleRoute`: whether the payee serves the priced example route
 * (`paychan payee serve` does; an application that prices its own routes does not).
 */
export function payeeOpenApi(options: { readonly exampleRoute: boolean }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {
    '/healthz': {
      get: { operationId: 'health', summary: 'The process serves requests', responses: { 200: json({ type: 'object', required: ['status'], additionalProperties: false, properties: { status: { const: 'ok' } } }, 'alive') } },
    },
    '/readyz': {
      get: {
        operationId: 'ready',
        summary: 'The payee reaches its node and takes payments',
        responses: { 200: json({ type: 'object', required: ['status'], additionalProperties: false, properties: { status: { const: 'ready' } } }, 'ready'), 503: error('NOT_READY') },
      },
    },
    '/metrics': {
      get: { operationId: 'metrics', summary: 'Prometheus metrics', responses: { 200: { description: 'text exposition format 0.0.4', content: { 'text/plain': { schema: { type: 'string' } } } } } },
    },
    [OPENAPI_ROUTE]: {
      get: { operationId: 'openapi', summary: 'This document', responses: { 200: json({ type: 'object', required: ['openapi', 'paths'] }, 'OpenAPI 3.1') } },
    },
    '/v1/channels/{channelId}': {
      get: {
        operationId: 'channel',
        summary: 'A Spilman channel by its funding outpoint',
        description: 'Anyone who knows the outpoint learns what was paid on it: put the server behind access control if that matters.',
        parameters: [{ name: 'channelId', in: 'path', required: true, schema: CHANNEL_ID, description: "txid:vout (':' may be sent as %3A)" }],
        responses: { 200: json(ref('ChannelSummary'), 'the channel'), 404: error('UNKNOWN_CHANNEL') },
      },
    },
    [PAYEE_WS_PATH]: {
      get: {
        operationId: 'channelSocket',
        summary: 'The payer WebSocket: channels are opened, paid and closed here (docs/design.md, wire format)',
        description: 'A WebSocket upgrade; connection limits are checked before the handshake.',
        parameters: [
          { name: 'Upgrade', in: 'header', required: true, schema: { const: 'websocket' } },
          { name: 'Connection', in: 'header', required: true, schema: { type: 'string' } },
        ],
        responses: {
          101: { description: 'Switching Protocols: the WebSocket' },
          429: error('TOO_MANY_CONNECTIONS_FROM_ADDRESS'),
          503: error('TOO_MANY_CONNECTIONS'),
        },
      },
    },
    '/v1/admin/channels': {
      get: {
        operationId: 'adminChannels',
        summary: 'Every channel the payee holds, of every variant',
        security: ADMIN,
        responses: { 200: json({ type: 'object', required: ['channels'], additionalProperties: false, properties: { channels: { type: 'array', items: ref('ChannelRow') } } }, 'the channels'), 401: error('UNAUTHORIZED') },
      },
    },
    '/dashboard': { get: page('The operator\'s dashboard (docs/dashboard.md): a public page with no data; it asks for the admin token and reads /v1/admin/dashboard', 'text/html') },
    '/dashboard/dashboard.js': { get: page("The dashboard's script", 'text/javascript') },
    '/dashboard/dashboard.css': { get: page("The dashboard's style sheet", 'text/css') },
    '/dashboard/favicon.svg': { get: page("The dashboard's icon", 'image/svg+xml') },
    '/v1/admin/dashboard': {
      get: {
        operationId: 'dashboard',
        summary: "What the dashboard shows: totals, payments per second, channels (the most pressing 200), closes waiting and their fee bumps",
        security: ADMIN,
        responses: {
          200: json(
            {
              type: 'object',
              required: ['network', 'tipHeight', 'totals', 'rate', 'channels', 'channelsNotShown', 'closes'],
              properties: {
                network: { type: 'string' },
                tipHeight: { type: ['integer', 'null'] },
                totals: { type: 'object' },
                rate: { type: 'object', required: ['windowSeconds', 'paymentsPerSecond', 'series'] },
                channels: { type: 'array', items: { type: 'object' } },
                channelsNotShown: { type: 'integer' },
                closes: { type: 'array', items: { type: 'object' } },
              },
            },
            'the snapshot (docs/dashboard.md lists its fields)',
          ),
          401: error('UNAUTHORIZED'),
        },
      },
    },
    '/v1/funding/{script}': {
      get: {
        operationId: 'funding',
        summary: "The confirmed funding of a channel output, for a page whose user paid the channel's address from any wallet (docs/browser.md)",
        parameters: [{ name: 'script', in: 'path', required: true, schema: { type: 'string', pattern: '^0020[0-9a-fA-F]{64}$' }, description: 'the P2WSH output script, hex' }],
        responses: {
          200: json(
            {
              type: 'object',
              required: ['txid', 'vout', 'valueSat', 'height', 'txHex'],
              additionalProperties: false,
              properties: { txid: { type: 'string' }, vout: { type: 'integer' }, valueSat: sat('the output'), height: { type: 'integer' }, txHex: { type: 'string' } },
            },
            'found in the recent blocks',
          ),
          400: error('BAD_REQUEST'),
          404: error('NOT_FOUND'),
        },
      },
    },
    '/v1/chain/tip': {
      get: {
        operationId: 'chainTip',
        summary: "The node's tip, which a page's new channel counts its expiry from",
        responses: { 200: json({ type: 'object', required: ['height', 'hash'], additionalProperties: false, properties: { height: { type: 'integer' }, hash: { type: 'string' } } }, 'the tip') },
      },
    },
    '/demo': { get: page('A demo page that funds a channel and pays from the browser (docs/browser.md)', 'text/html') },
    '/demo/demo-page.js': { get: page("The demo page's script (built by npm run build)", 'text/javascript') },
    '/v1/duplex/channels': {
      get: {
        operationId: 'duplexChannels',
        summary: 'Every duplex channel as the payee sees it',
        security: ADMIN,
        responses: { 200: json({ type: 'object', required: ['channels'], additionalProperties: false, properties: { channels: { type: 'array', items: ref('DuplexChannel') } } }, 'the channels'), 401: error('UNAUTHORIZED') },
      },
    },
    '/v1/duplex/pay-back': {
      post: {
        operationId: 'payBack',
        summary: 'The payee pays the payer of a duplex channel',
        description: 'Answered once the payer countersigned the new state (200), or at once with queued: true when the payer is away: it takes the payment when it next connects (202).',
        security: ADMIN,
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { type: 'object', required: ['channelId', 'amountSat'], properties: { channelId: CHANNEL_ID, amountSat: { type: 'integer', minimum: 1, description: 'satoshis' } } } } },
        },
        responses: {
          200: json(ref('PayBackDone'), 'paid'),
          202: json(ref('PayBackQueued'), 'queued for the payer'),
          400: error('BAD_REQUEST'),
          401: error('UNAUTHORIZED'),
          404: error('UNKNOWN_CHANNEL'),
          409: error("refused by the channel's rules (a protocol code)"),
        },
      },
    },
    '/v1/duplex/force-close': {
      post: {
        operationId: 'forceClose',
        summary: 'Close a duplex channel alone: its newest state is published once its locktime passes',
        security: ADMIN,
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['channelId'], properties: { channelId: CHANNEL_ID } } } } },
        responses: {
          200: json({ type: 'object', required: ['channelId', 'minedFromHeight'], additionalProperties: false, properties: { channelId: CHANNEL_ID, minedFromHeight: { type: 'integer' } } }, 'closing'),
          400: error('BAD_REQUEST'),
          401: error('UNAUTHORIZED'),
          409: error('CHANNEL_NOT_OPEN'),
        },
      },
    },
  };
  if (options.exampleRoute) {
    paths['/v1/paid/{path}'] = {
      get: {
        operationId: 'paidExample',
        summary: "The priced example route of 'paychan payee serve' (HTTP 402, docs/http-402.md)",
        parameters: [
          { name: 'path', in: 'path', required: true, schema: { type: 'string' } },
          { name: 'Paychan-Payment', in: 'header', required: false, schema: { type: 'string' }, description: 'channel=<txid:vout>, total=<sat>, sig=<128 hex>' },
        ],
        responses: {
          200: json({ type: 'object', required: ['ok', 'path', 'priceSat', 'served'], additionalProperties: false, properties: { ok: { const: true }, path: { type: 'string' }, priceSat: sat('the price paid'), served: { type: 'integer' } } }, 'paid and served'),
          402: json(ref('PaymentRequired'), 'pay first'),
        },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'paychan payee',
      version: packageVersion(),
      description: 'The HTTP side of a paychan payee. Amounts are JSON integers of satoshis; errors are {code, message}. Admin routes take Authorization: Bearer <the content of the data dir admin-token file>.',
    },
    paths,
    components: { schemas, securitySchemes: { adminToken: { type: 'http', scheme: 'bearer', description: 'the content of <payee data dir>/admin-token' } } },
  };
}

/** The routes the document describes, as the route tables name them (for the served-vs-documented test). */
export function documentedRoutes(doc: Record<string, unknown>): HttpRoute[] {
  const paths = doc.paths as Record<string, Record<string, unknown>>;
  return Object.entries(paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => ({ method: m.toUpperCase() as HttpRoute['method'], path })));
}

/** paychan's version, from its package.json two folders up (src/app or dist/app). */
function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}
