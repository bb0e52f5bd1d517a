/** Option precedence: flag > PAYCHAN_* environment > --config file > default; values validated once. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { amountSat, networkOf, parse, UsageError } from '../../src/cli/options.js';

const spec = { network: { type: 'string' as const, default: 'regtest' }, 'rpc-url': { type: 'string' as const }, mainnet: { type: 'boolean' as const } };
const saved = { ...process.env };
afterEach(() => {
  process.env = { ...saved };
});

function configFile(content: unknown): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-cfg-')), 'c.json');
  fs.writeFileSync(file, JSON.stringify(content));
  return file;
}

describe('option resolution', () => {
  it('takes a flag over the environment over the config file over the default', () => {
    const file = configFile({ 'rpc-url': 'http://file', network: 'signet' });
    expect(parse(['--config', file], spec).str('rpc-url')).toBe('http://file');
    expect(parse(['--config', file], spec).str('network')).toBe('signet');
    process.env.PAYCHAN_RPC_URL = 'http://env';
    expect(parse(['--config', file], spec).str('rpc-url')).toBe('http://env');
    expect(parse(['--config', file, '--rpc-url', 'http://flag'], spec).str('rpc-url')).toBe('http://flag');
    expect(parse([], spec).str('network')).toBe('regtest');
  });
  it('reads PAYCHAN_CONFIG and boolean environment values', () => {
    process.env.PAYCHAN_CONFIG = configFile({ network: 'mainnet' });
    process.env.PAYCHAN_MAINNET = '1';
    expect(networkOf(parse([], spec))).toBe('mainnet');
  });
  it('refuses mainnet without --mainnet, unknown networks, unknown flags and unreadable config', () => {
    expect(() => networkOf(parse(['--network', 'mainnet'], spec))).toThrow(/add --mainnet/);
    expect(() => networkOf(parse(['--network', 'litecoin'], spec))).toThrow(UsageError);
    expect(() => parse(['--nope'], spec)).toThrow(UsageError);
    expect(() => parse(['--config', '/nonexistent/paychan.json'], spec)).toThrow(/cannot read config file/);
  });
  it('keeps a negative number as the positional or option value it is, for its own check to refuse', () => {
    const withCount = { ...spec, count: { type: 'string' as const } };
    expect(parse(['pay', '-5'], withCount).positionals).toEqual(['pay', '-5']);
    expect(parse(['pay', '5', '--count', '-3'], withCount).str('count')).toBe('-3');
    expect(() => amountSat('AMOUNT', '-5')).toThrow(/AMOUNT must be positive, got '-5'/);
    expect(() => parse(['-x'], withCount)).toThrow(UsageError);
  });
  it('parses amounts in satoshis or btc, exactly', () => {
    expect(amountSat('x', '0.01btc')).toBe(1_000_000n);
    expect(amountSat('x', '21000000btc')).toBe(2_100_000_000_000_000n);
    expect(amountSat('x', '0.00000001BTC')).toBe(1n);
    expect(amountSat('x', '546')).toBe(546n);
    for (const bad of ['0', '-1', '1.5', '0.000000001btc', 'abc', '']) expect(() => amountSat('x', bad)).toThrow(UsageError);
  });
});
