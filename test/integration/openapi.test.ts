/**
 * The payee's OpenAPI document against the payee, both ways, on btcd: every route the payee
 * serves is documented, every documented operation is served; and every documented operation
 * answers real calls (a channel opened and paid on chain, the admin token, bad input) with a
 * documented status and a body of that status's documented schema.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createPayer } from '../../src/index.js';
import { documentedRoutes } from '../../src/app/openapi.js';
import { startPayeeApp, type PayeeApp } from '../../src/app/payee-app.js';
import { withMining } from '../helpers/cli.js';
import { schemaProblems } from '../helpers/json-schema.js';
import { startFundedEnv, type RegtestEnv } from '../helpers/regtest-env.js';

type Doc = Record<string, unknown> & { paths: Record<string, Record<string, Operation>> };
interface Operation {
  readonly responses: Record<string, { content?: Record<string, { schema: Record<string, unknown> }> }>;
}

let env: RegtestEnv;
let dir: string;
let app: PayeeApp;
let doc: Doc;
let token: string;
let channelId: string;

beforeAll(async () => {
  env = await startFundedEnv();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-openapi-'));
  // What `paychan payee serve` runs: the example route priced at 5 sat.
  app = await startPayeeApp({ network: 'regtest', backend: env.backend, dataDir: path.join(dir, 'payee'), host: '127.0.0.1', port: 0, priceSat: 5n, fallbackFeeRateSatPerVb: 2, log: () => undefined });
  token = fs.readFileSync(path.join(dir, 'payee', 'admin-token'), 'utf8').trim();
  const res = await fetch(`${app.server.url}/openapi.json`);
  expect(res.status).toBe(200);
  doc = (await res.json()) as Doc;
  // A channel opened and paid on chain, for the calls that answer about one.
  const payer = await createPayer({ dataDir: path.join(dir, 'payer'), node: env.backend, capacitySat: 50_000 });
  try {
    await env.wallet.send(payer.address(), 200_000n, 2);
    await env.mine(1);
    await payer.wallet.sync();
    const paid = await withMining(payer.fetch(`${app.server.url}/v1/paid/first`), () => env.node.mine(1));
    expect(paid.status).toBe(200);
    channelId = (await payer.channelFor(app.server.wsUrl)).channel.id;
  } finally {
    await payer.close();
  }
});

afterAll(async () => {
  await app?.close();
  await env?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const key = (r: { method: string; path: string }) => `${r.method} ${r.path}`;

interface Call {
  readonly what: string;
  readonly path: string;
  readonly init?: RequestInit;
  readonly status: number;
}

const admin = (init: RequestInit = {}): RequestInit => ({ ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers as Record<string, string> | undefined) } });
const post = (body: unknown, auth = true): RequestInit => (auth ? admin({ method: 'POST', body: JSON.stringify(body) }) : { method: 'POST', body: JSON.stringify(body) });
const unknownChannel = `${'0'.repeat(64)}:0`;

/** Representative calls of every documented operation (WebSocket aside: its own test below). */
function calls(): Record<string, Call[]> {
  return {
    'GET /healthz': [{ what: 'alive', path: '/healthz', status: 200 }],
    'GET /readyz': [{ what: 'the node answers', path: '/readyz', status: 200 }],
    'GET /metrics': [{ what: 'text', path: '/metrics', status: 200 }],
    'GET /openapi.json': [{ what: 'itself', path: '/openapi.json', status: 200 }],
    'GET /v1/channels/{channelId}': [
      { what: 'the paid channel', path: `/v1/channels/${channelId}`, status: 200 },
      { what: "':' as %3A", path: `/v1/channels/${encodeURIComponent(channelId)}`, status: 200 },
      { what: 'an unknown one', path: `/v1/channels/${unknownChannel}`, status: 404 },
    ],
    'GET /v1/paid/{path}': [{ what: 'no payment', path: '/v1/paid/hello', status: 402 }],
    'GET /v1/admin/channels': [
      { what: 'with the token', path: '/v1/admin/channels', init: admin(), status: 200 },
      { what: 'without', path: '/v1/admin/channels', status: 401 },
    ],
    'GET /dashboard': [{ what: 'the page', path: '/dashboard', status: 200 }],
    'GET /dashboard/dashboard.js': [{ what: 'its script', path: '/dashboard/dashboard.js', status: 200 }],
    'GET /dashboard/dashboard.css': [{ what: 'its style', path: '/dashboard/dashboard.css', status: 200 }],
    'GET /dashboard/favicon.svg': [{ what: 'its icon', path: '/dashboard/favicon.svg', status: 200 }],
    'GET /v1/admin/dashboard': [
      { what: 'with the token', path: '/v1/admin/dashboard', init: admin(), status: 200 },
      { what: 'without', path: '/v1/admin/dashboard', status: 401 },
    ],
    'GET /v1/funding/{script}': [
      { what: 'an output nobody paid', path: `/v1/funding/0020${'ab'.repeat(32)}`, status: 404 },
      { what: 'not a P2WSH script', path: '/v1/funding/0014abcd', status: 400 },
    ],
    'GET /v1/chain/tip': [{ what: 'the tip', path: '/v1/chain/tip', status: 200 }],
    'GET /demo': [{ what: 'the page', path: '/demo', status: 200 }],
    'GET /demo/demo-page.js': [{ what: 'its script', path: '/demo/demo-page.js', status: 200 }],
    'GET /v1/duplex/channels': [
      { what: 'with the token', path: '/v1/duplex/channels', init: admin(), status: 200 },
      { what: 'without', path: '/v1/duplex/channels', status: 401 },
    ],
    'POST /v1/duplex/pay-back': [
      { what: 'an unknown channel', path: '/v1/duplex/pay-back', init: post({ channelId: unknownChannel, amountSat: 1000 }), status: 404 },
      { what: 'a negative amount', path: '/v1/duplex/pay-back', init: post({ channelId: unknownChannel, amountSat: -1 }), status: 400 },
      { what: 'without the token', path: '/v1/duplex/pay-back', init: post({ channelId: unknownChannel, amountSat: 1000 }, false), status: 401 },
    ],
    'POST /v1/duplex/force-close': [
      { what: 'a Spilman channel', path: '/v1/duplex/force-close', init: post({ channelId }), status: 409 },
      { what: 'no channelId', path: '/v1/duplex/force-close', init: post({}), status: 400 },
    ],
  };
}

describe('GET /openapi.json', () => {
  it('is an OpenAPI 3.1 document of this version of paychan', () => {
    expect(doc.openapi).toBe('3.1.0');
    const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8')) as { version: string };
    expect(doc.info).toMatchObject({ title: 'paychan payee', version: pkg.version });
  });

  it('documents every route the payee serves, and nothing it does not serve', () => {
    const served = app.routes.map(key).sort();
    expect(documentedRoutes(doc).map(key).sort()).toEqual(served);
    // The example route exists because `paychan payee serve` prices it; an app without it documents none.
    expect(served).toContain('GET /v1/paid/{path}');
  });

  it('answers a method it does not document on a documented path with 405 or 404, never with a success', async () => {
    for (const route of documentedRoutes(doc)) {
      const res = await fetch(`${app.server.url}${route.path.replace('{channelId}', channelId).replace('{path}', 'x')}`, admin({ method: route.method === 'GET' ? 'DELETE' : 'GET' }));
      expect([404, 405], key(route)).toContain(res.status);
      await res.body?.cancel();
    }
  });

  it('every documented operation answers as documented: status, content type and body schema', async () => {
    const table = calls();
    // Both ways: a documented operation without a call here, or a call of an undocumented one, fails.
    expect(Object.keys(table).sort()).toEqual(
      documentedRoutes(doc)
        .map(key)
        .filter((k) => k !== 'GET /v1/ws')
        .sort(),
    );
    for (const [op, list] of Object.entries(table)) {
      const [method, template] = op.split(' ') as [string, string];
      const operation = doc.paths[template]![method.toLowerCase()]!;
      for (const call of list) {
        const res = await fetch(`${app.server.url}${call.path}`, { method, ...call.init });
        const label = `${op} (${call.what})`;
        expect(res.status, label).toBe(call.status);
        const documented = operation.responses[String(res.status)];
        expect(documented, `${label}: status ${res.status} is documented`).toBeDefined();
        const [type, media] = Object.entries(documented!.content ?? {})[0] ?? [];
        expect(res.headers.get('content-type') ?? '', label).toContain(type ?? 'nothing');
        if (type === 'application/json') expect(schemaProblems(await res.json(), media!.schema, doc), label).toEqual([]);
        else expect(typeof (await res.text())).toBe('string');
      }
    }
  });

  it('the paid route answers 200 with its documented body once paid, and the channel says what was paid', async () => {
    const payer = await createPayer({ dataDir: path.join(dir, 'payer'), node: env.backend });
    try {
      const res = await payer.fetch(`${app.server.url}/v1/paid/again`);
      expect(res.status).toBe(200);
      const schema = doc.paths['/v1/paid/{path}']!.get!.responses['200']!.content!['application/json']!.schema;
      expect(schemaProblems(await res.json(), schema, doc)).toEqual([]);
    } finally {
      await payer.close();
    }
    const summary = (await (await fetch(`${app.server.url}/v1/channels/${channelId}`)).json()) as Record<string, unknown>;
    expect(summary).toEqual({ channelId, state: 'Open', capacitySat: 50_000, paidSat: 10 });
    // The checker itself refuses what the document forbids: sats as strings, a missing key, a stray one.
    const schema = { $ref: '#/components/schemas/ChannelSummary' };
    expect(schemaProblems({ ...summary, paidSat: '10' }, schema, doc)).toEqual(['$.paidSat: expected integer, got "10"']);
    expect(schemaProblems({ ...summary, id: channelId }, schema, doc)).toEqual(['$: unexpected id']);
    const { state: _state, ...partial } = summary;
    expect(schemaProblems(partial, schema, doc)).toEqual(['$: missing state']);
  });

  it('GET /v1/ws upgrades to the payer WebSocket (101), as documented', async () => {
    expect(Object.keys(doc.paths['/v1/ws']!.get!.responses)).toContain('101');
    const ws = new WebSocket(app.server.wsUrl);
    const status = await new Promise<number>((resolve, reject) => {
      ws.once('upgrade', (res) => resolve(res.statusCode ?? 0));
      ws.once('error', reject);
    });
    ws.close();
    expect(status).toBe(101);
  });
});
