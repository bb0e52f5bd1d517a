// connectBackend: the scheme table, its errors, and where credentials come from. A few lines of
// HTTP answering as btcd does while connecting stand in for the node: what is checked here is
// what reaches the node (URL, Authorization header), not the chain; the chain suite
// (test/integration/chain.test.ts) runs the same factory against a real btcd.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ChainBackendError } from '../../src/chain/backend.js';
import { BACKEND_SCHEMES, connectBackend } from '../../src/chain/connect.js';
import { waitUntil } from '../helpers/local-pair.js';
import { Transaction } from 'bitcoinjs-lib';

/** btcd's answers to the calls connectRpcBackend makes while connecting. */
function btcdAnswer(method: string): { result?: unknown; error?: { code: number; message: string } } {
  switch (method) {
    case 'getnetworkinfo':
      return { error: { code: -1, message: 'Command unimplemented' } };
    case 'version':
      return { result: { btcdjsonrpcapi: { versionstring: '1.3.0' } } };
    case 'getblockchaininfo':
      return { result: { chain: 'regtest' } };
    case 'getrawtransaction':
      return { error: { code: -5, message: 'No information available about transaction' } };
    case 'getbestblock':
      return { result: { height: 0, hash: '0f'.repeat(32) } };
    default:
      return { error: { code: -32601, message: 'Method not found' } };
  }
}

/** While set, the fake node answers no broadcast until the test lets it (`held`). */
let holdBroadcasts = false;
const held: (() => void)[] = [];
let server: http.Server;
let port: number;
/** The Authorization header and path of each request the fake node received. */
let seen: { auth: string; path: string }[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      seen.push({ auth: req.headers.authorization ?? '', path: req.url ?? '' });
      const { id, method } = JSON.parse(body) as { id: number; method: string };
      if (method === 'sendrawtransaction' && holdBroadcasts) {
        held.push(() => res.end(JSON.stringify({ id, result: null, error: { code: -26, message: 'held, then refused' } })));
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ id, result: null, error: null, ...btcdAnswer(method) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  seen = [];
});

function basic(user: string, pass: string): string {
  return 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');
}

describe('connectBackend', () => {
  it('knows http: and https: (a node’s JSON-RPC)', () => {
    expect(BACKEND_SCHEMES).toEqual(['http:', 'https:']);
  });

  it('connects an http: URL to the JSON-RPC adapter, credentials as options', async () => {
    const backend = await connectBackend(`http://127.0.0.1:${port}`, { user: 'alice', pass: 'secret', network: 'regtest' });
    try {
      expect(backend.name).toBe('btcd');
      expect(backend.network).toBe('regtest');
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.every((r) => r.auth === basic('alice', 'secret'))).toBe(true);
    } finally {
      await backend.close();
    }
  });

  it('takes credentials from the URL, percent-decoded, and keeps them out of what it reports', async () => {
    const backend = await connectBackend(`http://al%40ice:p%3As%2Fs@127.0.0.1:${port}/wallet`);
    try {
      expect(seen.every((r) => r.auth === basic('al@ice', 'p:s/s'))).toBe(true);
      expect(seen.every((r) => r.path === '/wallet')).toBe(true);
    } finally {
      await backend.close();
    }
    // A node that cannot be reached is named in the error, without the password.
    const err = await connectBackend('http://bob:hunter2@127.0.0.1:1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChainBackendError);
    expect((err as Error).message).toContain('http://127.0.0.1:1');
    expect((err as Error).message).not.toContain('hunter2');
  });

  it('routes https: to the JSON-RPC adapter too', async () => {
    // Nothing listens on port 1: the failure is the adapter's, reaching the node, not the table's.
    await expect(connectBackend('https://127.0.0.1:1', { user: 'u', pass: 'p' })).rejects.toBeInstanceOf(ChainBackendError);
  });

  it('refuses a scheme it has no adapter for, naming the ones it knows', async () => {
    for (const url of ['ftp://example.org', 'esplora+https://example.org/api', 'ws://127.0.0.1:8334/ws']) {
      const err = await connectBackend(url, { user: 'u', pass: 'p' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TypeError);
      expect((err as Error).message).toMatch(/no chain backend for \S+ URLs/);
      expect((err as Error).message).toContain('known schemes: http:, https:');
    }
    await expect(connectBackend('ftp://bob:hunter2@example.org')).rejects.toThrow(/bob:\*\*\*@/);
  });

  it('refuses what is not a URL, credentials given twice or half, and an RPC node without any', async () => {
    await expect(connectBackend('127.0.0.1:18443')).rejects.toThrow(TypeError);
    await expect(connectBackend('not a url')).rejects.toThrow(/not a URL/);
    await expect(connectBackend(`http://a:b@127.0.0.1:${port}`, { user: 'a', pass: 'b' })).rejects.toThrow(/credentials given twice/);
    await expect(connectBackend(`http://127.0.0.1:${port}`, { user: 'a' })).rejects.toThrow(/give both/);
    await expect(connectBackend(`http://127.0.0.1:${port}`, { pass: 'b' })).rejects.toThrow(/give both/);
    await expect(connectBackend(`http://127.0.0.1:${port}`)).rejects.toThrow(/needs a user and password/);
    expect(seen).toEqual([]); // refused before any call reached the node
  });

  it('passes the network check to the adapter', async () => {
    await expect(connectBackend(`http://127.0.0.1:${port}`, { user: 'u', pass: 'p', network: 'mainnet' })).rejects.toThrow(/runs regtest, but mainnet was asked for/);
  });
});

describe('broadcasts', () => {
  it('have sockets of their own: a burst the node is slow to answer holds back no other call', async () => {
    const backend = await connectBackend(`http://127.0.0.1:${port}`, { user: 'u', pass: 'p', network: 'regtest' });
    const tx = new Transaction();
    tx.addInput(Buffer.alloc(32, 1), 0);
    tx.addOutput(Buffer.from(`0014${'00'.repeat(20)}`, 'hex'), 1_000n);
    holdBroadcasts = true;
    try {
      // More than a client's 4 sockets: with one shared client every later call would queue.
      const broadcasts = Array.from({ length: 8 }, () => backend.broadcast(tx.toHex()).catch((err: unknown) => err));
      await waitUntil(() => held.length >= 4, 'the node to hold the broadcasts');
      await expect(backend.getTip()).resolves.toEqual({ height: 0, hash: '0f'.repeat(32) });
      holdBroadcasts = false; // the ones still queued in the client are answered at once
      for (const release of held.splice(0)) release();
      expect((await Promise.all(broadcasts)).every((r) => r instanceof Error)).toBe(true);
    } finally {
      holdBroadcasts = false;
      for (const release of held.splice(0)) release();
      await backend.close();
    }
  });
});
