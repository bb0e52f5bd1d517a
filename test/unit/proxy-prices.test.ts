/**
 * The proxy's price table: route matching (literal, `:param`, final `*`, methods, first match
 * wins) and validation, where every refused table's error names the bad entry (fixture loop).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ambiguousPath, parsePriceTable, parsePriceTableText, PriceTableError } from '../../src/proxy/price-table.js';

const invalid = (JSON.parse(readFileSync(new URL('../fixtures/proxy-prices-invalid.json', import.meta.url), 'utf8')) as { invalid: { table: unknown; error: string }[] }).invalid;

const table = parsePriceTable({
  routes: [
    { path: '/api/:id', method: 'GET', perRequestSat: 10 },
    { path: '/api/:id', method: ['POST', 'put'], perRequestSat: '20' },
    { path: '/files/*', perRequestSat: 1, perKiBSat: 2, prepayKiB: 4096 },
    { path: '/events', method: 'GET', perSecondSat: 5, prepaySeconds: 30 },
    { path: '/stream', perSecondSat: 1 },
    { path: '/', perRequestSat: 3 },
    { path: '/*' },
  ],
});

describe('price table: matching', () => {
  const cases: [method: string, path: string, routeIndex: number | undefined][] = [
    ['GET', '/api/7', 0],
    ['get', '/api/7', 0],
    ['HEAD', '/api/7', 0],
    ['POST', '/api/7', 1],
    ['PUT', '/api/7', 1],
    ['DELETE', '/api/7', 6],
    ['GET', '/api/', 6], // ':id' needs a non-empty segment
    ['GET', '/api/7/more', 6],
    ['GET', '/files', 2], // the final '*' also matches nothing
    ['GET', '/files/', 2],
    ['POST', '/files/a/b/c.bin', 2],
    ['GET', '/events', 3],
    ['POST', '/events', 6],
    ['GET', '/', 5],
    ['GET', '/anything/else', 6],
  ];
  it.each(cases)('%s %s → route %s', (method, path, index) => {
    expect(table.match(method, path)?.index).toBe(index);
  });

  it('no catch-all: an unmatched request has no route', () => {
    const t = parsePriceTable({ routes: [{ path: '/a', perRequestSat: 1 }] });
    expect(t.match('GET', '/b')).toBeUndefined();
    expect(t.match('GET', '/a/b')).toBeUndefined();
  });

  it('matches a path in its canonical spelling: a trailing slash, unreserved escapes, doubled slashes and case do not dodge a price', () => {
    const t = parsePriceTable({ routes: [{ path: '/a/:id', perRequestSat: 1 }] });
    for (const path of ['/a/1', '/a/1/', '/%61/1', '/A/1', '/a//1']) expect(t.match('GET', path)?.index, path).toBe(0);
  });

  it('compiles prices to bigint with the prepay defaults only where metered', () => {
    expect(table.routes[0]!.price).toEqual({ perRequestSat: 10n, perKiBSat: 0n, perSecondSat: 0n, prepayKiB: 0n, prepaySeconds: 0n });
    expect(table.routes[1]!.methods).toEqual(['POST', 'PUT']);
    expect(table.routes[2]!.price).toEqual({ perRequestSat: 1n, perKiBSat: 2n, perSecondSat: 0n, prepayKiB: 4096n, prepaySeconds: 0n });
    expect(table.routes[4]!.price).toEqual({ perRequestSat: 0n, perKiBSat: 0n, perSecondSat: 1n, prepayKiB: 0n, prepaySeconds: 60n });
    expect(table.routes[6]!.price.perRequestSat).toBe(0n);
    expect(table.routes[6]!.methods).toBeNull();
  });
});

describe('price table: validation', () => {
  it.each(invalid.map((c) => [JSON.stringify(c.table).slice(0, 70), c] as const))('refuses %s', (_name, c) => {
    let error: unknown;
    try {
      parsePriceTable(c.table);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(PriceTableError);
    expect((error as PriceTableError).code).toBe('INVALID_PRICE_TABLE');
    expect((error as Error).message.startsWith(c.error), `${(error as Error).message} should start with ${c.error}`).toBe(true);
  });

  it('takes the example table of docs/proxy.md', () => {
    const example = parsePriceTableText(readFileSync(new URL('../fixtures/proxy-prices.json', import.meta.url), 'utf8'));
    expect(example.match('GET', '/files/a.bin')?.price).toMatchObject({ perKiBSat: 2n, prepayKiB: 4096n });
  });

  it('names the file when the text is not JSON', () => {
    expect(() => parsePriceTableText('{"routes": [', 'prices.json')).toThrow(/^prices\.json is not JSON/);
    expect(() => parsePriceTableText('{"routes": [{"path": "x"}]}', 'prices.json')).toThrow("prices.json: routes[0] (* x): path must start with '/'");
  });
});

describe('ambiguousPath: spellings an upstream may route elsewhere than the price table', () => {
  it.each(['/free/..%2Fpaid/x', '/free/%2e%2e%2fpaid/x', '/paid%2ffile', '/a%5Cb', '/a%5cb', '/a%00', '/free/..;/paid', '/free/.;/paid', '/free/%2E%2E;/paid', '/free/..%3B/paid', '/..;'])('refuses %s', (path) => {
    expect(ambiguousPath(path)).toMatch(/escaped/);
  });
  it.each(['/', '/a%20b', '/a;b', '/a/b;c=1', '/x/...;/y', '/a.;b', '/%2e%2e/x', '/a%2Eb', '/%25%32%46', '/files/x%3Fy'])('keeps %s', (path) => {
    expect(ambiguousPath(path)).toBeNull();
  });
});
