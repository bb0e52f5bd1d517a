/**
 * Strangers on the open internet against a running payee (real sockets, real btcd): they can
 * connect, replay what they saw on the wire, and open many idle connections. None of it may
 * act on a payer's channel, keep a payer out, or write into the payee's log.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Transaction, address as baddress } from 'bitcoinjs-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { PayeeService } from '../../src/payee/payee-service.js';
import { PayerClient } from '../../src/payer/payer-client.js';
import { authMessage } from '../../src/protocol/auth.js';
import { toHex } from '../../src/protocol/bytes.js';
import { fundingScriptOf } from '../../src/protocol/channel.js';
import { bitcoinjsNetwork } from '../../src/protocol/network.js';
import { decodeMessage, encodeMessage, msg, type Message } from '../../src/protocol/messages.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { PeerLink } from '../../src/transport/link.js';
import { startPayeeServer, type PayeeServer } from '../../src/transport/payee-server.js';
import type { ServerLimits } from '../../src/transport/server-limits.js';
import { connectPayee } from '../../src/transport/ws-client.js';
import { waitUntil } from '../helpers/local-pair.js';
import { startFundedEnv, type RegtestEnv } from '../helpers/regtest-env.js';
import { regtestPayee, regtestPayer, regtestPayerOptions } from '../helpers/regtest-peers.js';

let env: RegtestEnv;
let service: PayeeService;
/** Every line the payee logged. */
const logged: string[] = [];
const cleanups: (() => Promise<unknown> | void)[] = [];

beforeAll(async () => {
  env = await startFundedEnv();
  service = await regtestPayee(env, { log: (l) => logged.push(l) });
  service.start();
});
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  service?.stop();
  await env?.stop();
});

async function server(limits: Partial<ServerLimits> = {}): Promise<PayeeServer> {
  const s = await startPayeeServer({ service, limits, log: (l) => logged.push(l) });
  cleanups.push(() => s.close());
  return s;
}

/** A payer client (with a store that outlives it) on a WebSocket link that resumes on every connection. */
function wsPayer(url: string, store = new MemoryStore(), channelKey = env.wallet.nextChannelKey()) {
  const ends: { payer?: PayerClient } = {};
  const link = connectPayee(url, { onMessage: (text) => ends.payer?.receive(text), onOpen: () => ends.payer?.resume(), reconnect: { minDelayMs: 20, maxDelayMs: 200 } });
  cleanups.push(() => link.close());
  return { link, store, channelKey, ends, make: () => (ends.payer = regtestPayer(env, link, { store, channelKey })) };
}

/** Opens a channel over a fresh link, pays `paySat`, and goes offline (the CLI exits after each command). */
async function openPaidChannel(url: string, paySat: bigint) {
  const p = wsPayer(url);
  const payer = p.make();
  await p.link.ready();
  const opening = payer.open({ variant: 'spilman-v2', capacitySat: 500_000n, expiryBlocks: 40 });
  await Promise.race([payer.waitFor((s) => s.type === 'AwaitingOpen'), opening]);
  await waitUntil(async () => (await env.backend.getTransaction(payer.channel.funding.txid)) !== null, 'the funding in the mempool');
  await env.mine(1);
  await opening;
  await payer.pay(paySat);
  await payer.drain();
  await p.link.close();
  const s = payer.state;
  if (s?.type !== 'Open' || s.signature === null) throw new Error('unreachable');
  return { tempId: payer.id!, channel: s.channel, store: p.store, channelKey: p.channelKey, newest: msg('payment', { channelId: s.channel.id, totalSat: s.signedTotalSat, signature: s.signature }) };
}

/** The same payer coming back later: its channel restored from its store, on a new link. */
async function payerReturns(url: string, opened: Awaited<ReturnType<typeof openPaidChannel>>): Promise<PayerClient> {
  const p = wsPayer(url, opened.store, opened.channelKey);
  const restored = await PayerClient.restore(regtestPayerOptions(env, p.link, { store: opened.store, channelKey: opened.channelKey }), opened.tempId);
  p.ends.payer = restored;
  await p.link.ready();
  return restored;
}

/** A bare WebSocket that records what the payee sends. */
class Stranger {
  readonly messages: Message[] = [];
  readonly closed: Promise<number>;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => this.messages.push(decodeMessage(String(data))));
    ws.on('error', () => undefined);
    this.closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
    cleanups.push(() => ws.terminate());
  }
  static async connect(url: string, localAddress?: string): Promise<Stranger> {
    const ws = new WebSocket(url, localAddress ? { localAddress } : {});
    // Listening from the start: the challenge can arrive in the same read as the handshake.
    const stranger = new Stranger(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return stranger;
  }
  send(m: Message): void {
    this.ws.send(encodeMessage(m));
  }
  /** The payee's answers so far, as types or error codes (the connection's challenge left out). */
  answers(): string[] {
    return this.messages.filter((m) => m.type !== 'challenge').map((m) => (m.type === 'error' ? m.code : m.type));
  }
}

/** Authenticates `c` as the payer of `opened` (its challenge signed), and checks it took. */
async function authenticate(c: Stranger, opened: Awaited<ReturnType<typeof openPaidChannel>>): Promise<void> {
  await waitUntil(() => c.messages.some((m) => m.type === 'challenge'), 'the challenge');
  const challenge = c.messages.find((m) => m.type === 'challenge');
  if (challenge?.type !== 'challenge') throw new Error('no challenge');
  c.send(authMessage(env.secp, challenge.challenge, opened.tempId, opened.channelKey.privateKey));
  // A status request is answered only on an authenticated connection.
  c.send(msg('status-request', { channelId: opened.channel.id }));
  await waitUntil(() => c.answers().length >= 1, 'the answer to the status request');
  expect(c.answers()).toEqual(['channel-status']);
}

const fundingSpent = async (channel: { funding: { txid: string; vout: number } }) =>
  (await env.backend.getOutpointStatus(channel.funding, 0)).state !== 'unspent';

describe('a stranger replaying what it saw', () => {
  it('cannot close a channel with the newest payment and a close request; the payer then pays and closes', async () => {
    const s = await server();
    const opened = await openPaidChannel(s.wsUrl, 10_000n);
    const id = opened.channel.id;

    const stranger = await Stranger.connect(s.wsUrl);
    stranger.send(opened.newest); // copied from a Paychan-Payment header or a plain ws:// stream
    stranger.send(msg('close-request', { channelId: id }));
    await waitUntil(() => stranger.answers().length >= 2, 'the payee to answer the stranger');
    // The replay is acknowledged (it changes nothing); errors do not wait for the store, so sorted.
    expect(stranger.answers().sort()).toEqual(['AUTH_REQUIRED', 'payment-ack']);
    expect(service.channel(id)).toMatchObject({ type: 'Open', paidSat: 10_000n });
    stranger.send(msg('status-request', { channelId: id }));
    // The payer's own signature, but over another connection's challenge: worth nothing here.
    stranger.send(authMessage(env.secp, new Uint8Array(randomBytes(32)), opened.tempId, opened.channelKey.privateKey));
    stranger.send(msg('close-request', { channelId: id }));
    await waitUntil(() => stranger.answers().length >= 5, 'the payee to answer the stranger');
    expect(stranger.answers().slice(2)).toEqual(['AUTH_REQUIRED', 'AUTH_INVALID', 'AUTH_REQUIRED']);
    expect(service.channel(id)).toMatchObject({ type: 'Open', paidSat: 10_000n });
    expect(await fundingSpent(opened.channel)).toBe(false);

    // The payer comes back: it authenticates on the new connection, pays, and closes.
    const payer = await payerReturns(s.wsUrl, opened);
    expect(await payer.pay(5_000n)).toBe(15_000n);
    payer.requestClose();
    await payer.waitFor((st) => st.type === 'Closed');
    expect(service.channel(id)).toMatchObject({ type: 'Closing', paidSat: 15_000n });
    await waitUntil(() => fundingSpent(opened.channel), 'the close in the mempool');
    // The stranger's connection never became the channel's: it heard nothing of the close.
    expect(stranger.answers()).not.toContain('channel-closed');
  });
});

describe('idle strangers filling the server', () => {
  it('do not keep a payer from connecting, authenticating and paying', async () => {
    const opened = await openPaidChannel((await server()).wsUrl, 10_000n);
    const limits = { maxConnections: 8, maxUnauthenticatedConnections: 4, maxConnectionsPerAddress: 4, authDeadlineMs: 60_000 };
    const s = await server(limits);
    // Two addresses × 4 idle connections fill the total; one more stranger for good measure.
    const strangers: Stranger[] = [];
    for (let i = 0; i < limits.maxConnections + 1; i++) strangers.push(await Stranger.connect(s.wsUrl, `127.0.0.${10 + Math.floor(i / limits.maxConnectionsPerAddress)}`));
    // The strangers cut to make room are gone once their sockets close.
    const stillOpen = () => strangers.filter((x) => x.ws.readyState === WebSocket.OPEN).length;
    await waitUntil(() => s.connections() <= limits.maxUnauthenticatedConnections && stillOpen() <= limits.maxUnauthenticatedConnections, 'the evicted strangers to close');

    const payer = await payerReturns(s.wsUrl, opened);
    expect(await payer.pay(1_000n)).toBe(11_000n);
    // Authenticated, the payer's connection is the channel's: a close request on it is taken.
    payer.requestClose();
    await payer.waitFor((st) => st.type === 'Closed');
  });

  it('one address cannot hold every socket: the excess is closed at accept, others still get in', async () => {
    const s = await server({ maxSocketsPerAddress: 4, maxConnectionsPerAddress: 2 });
    const { port } = new URL(s.url);
    const connect = (localAddress: string) =>
      new Promise<net.Socket>((resolve, reject) => {
        const socket = net.connect({ host: '127.0.0.1', port: Number(port), localAddress }, () => resolve(socket));
        socket.once('error', reject);
        cleanups.push(() => void socket.destroy());
      });
    const held = await Promise.all([1, 2, 3, 4].map(() => connect('127.0.0.30')));
    const fifth = await connect('127.0.0.30');
    await new Promise<void>((resolve) => fifth.once('close', () => resolve()));
    expect(held.every((x) => !x.destroyed)).toBe(true);
    // Another address is served, and the first address again once it lets a socket go.
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    held[0]!.destroy();
    await waitUntil(async () => {
      const again = await connect('127.0.0.30');
      const closed = await Promise.race([new Promise<boolean>((r) => again.once('close', () => r(true))), new Promise<boolean>((r) => setTimeout(() => r(false), 200))]);
      again.destroy();
      return !closed;
    }, 'a socket from the first address to be accepted again');
  });

  it('behind a trusted local proxy, clients are counted by X-Forwarded-For, not as one loopback address', async () => {
    const s = await startPayeeServer({ service, limits: { maxConnectionsPerAddress: 2, maxSocketsPerAddress: 3 }, trustProxy: true, log: (l) => logged.push(l) });
    cleanups.push(() => s.close());
    const via = (client: string) =>
      new Promise<number | 'open'>((resolve) => {
        const ws = new WebSocket(s.wsUrl, { headers: { 'x-forwarded-for': `10.1.1.1, ${client}` } });
        cleanups.push(() => ws.terminate());
        ws.once('open', () => resolve('open'));
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.once('error', () => undefined);
      });
    // Five loopback sockets in all (more than maxSocketsPerAddress): each is counted for its client.
    expect(await via('203.0.113.1')).toBe('open');
    expect(await via('203.0.113.1')).toBe('open');
    expect(await via('203.0.113.1')).toBe(429); // that client's own budget
    expect(await via('203.0.113.2')).toBe('open');
    expect(await via('203.0.113.2')).toBe('open');
  });

  it('behind a trusted local proxy, one forwarded client cannot hold every socket: its sockets are capped at their first request', async () => {
    const s = await startPayeeServer({ service, limits: { maxConnectionsPerAddress: 1, maxSocketsPerAddress: 2 }, trustProxy: true, log: (l) => logged.push(l) });
    cleanups.push(() => s.close());
    const { port } = new URL(s.url);
    /** A keep-alive request for /healthz from `client` (as the local proxy forwards it); its answer, or 'closed'. */
    const ask = (client: string) =>
      new Promise<string>((resolve) => {
        const socket = net.connect(Number(port), '127.0.0.1');
        cleanups.push(() => void socket.destroy());
        let answer = '';
        socket.on('data', (d: Buffer) => {
          answer += d.toString();
          if (answer.includes('\r\n\r\n')) resolve(answer.split('\r\n')[0]!);
        });
        socket.on('error', () => undefined);
        socket.once('close', () => resolve('closed'));
        socket.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: ${client}\r\n\r\n`);
      });
    expect(await ask('203.0.113.7')).toMatch(/^HTTP\/1\.1 200/);
    expect(await ask('203.0.113.7')).toMatch(/^HTTP\/1\.1 200/);
    expect(await ask('203.0.113.7')).toBe('closed'); // its third open socket
    expect(await ask('203.0.113.8')).toMatch(/^HTTP\/1\.1 200/);
  });

  it("one channel's payer keeps only a few proven connections: proving one more closes the oldest", async () => {
    const s = await server({ maxProvenConnectionsPerChannel: 2 });
    const opened = await openPaidChannel(s.wsUrl, 10_000n);
    const authenticated: Stranger[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await Stranger.connect(s.wsUrl);
      await authenticate(c, opened);
      authenticated.push(c);
    }
    expect(await authenticated[0]!.closed).toBe(1008);
    expect(authenticated.slice(1).map((c) => c.ws.readyState)).toEqual([WebSocket.OPEN, WebSocket.OPEN]);
  });

  it('a proven connection has an opening budget too (each funding would be a broadcast)', async () => {
    const s = await server({ provenOpeningMessagesPerSecond: 1, provenOpeningMessageBurst: 2 });
    const opened = await openPaidChannel(s.wsUrl, 10_000n);
    const proven = await Stranger.connect(s.wsUrl);
    await authenticate(proven, opened);
    const key = env.wallet.nextChannelKey();
    const tip = await env.backend.getTip();
    const payerScript = baddress.toOutputScript(env.wallet.changeAddress(), bitcoinjsNetwork('regtest'));
    for (let i = 0; i < 3; i++) {
      proven.send(msg('hello', { tempId: toHex(randomBytes(16)), network: 'regtest', variant: 'spilman-v2', payerPubkey: key.publicKey, capacitySat: 200_000n, expiryHeight: tip.height + 40, payerScript }));
    }
    await waitUntil(() => proven.answers().length >= 4, 'the answers to the hellos');
    // A refusal is answered at once, an accept after the tip read: compared sorted.
    expect(proven.answers().slice(1).sort()).toEqual(['RATE_LIMITED', 'accept', 'accept']);
  });

  it('are closed when they do not authenticate by the deadline', async () => {
    const s = await server({ authDeadlineMs: 300 });
    const stranger = await Stranger.connect(s.wsUrl);
    expect(await stranger.closed).toBe(1008);
  });
});

describe('what a peer writes into the log', () => {
  it('an error frame with a newline logs one escaped line; a stranger\'s is not logged at all', async () => {
    const s = await server();
    const opened = await openPaidChannel(s.wsUrl, 10_000n);
    const forged = msg('error', { code: 'INTERNAL_ERROR', message: 'oops\npayee: channel x closed, 1 BTC to 3Forged', action: 'reject', ref: opened.channel.id });
    const stranger = await Stranger.connect(s.wsUrl);
    const before = logged.length;
    stranger.send(forged);
    // The payee answers a status request after the error (one connection, in order): by then the error was taken or not.
    stranger.send(msg('status-request', { channelId: opened.channel.id }));
    await waitUntil(() => stranger.answers().length >= 1, 'the payee to answer the stranger');
    expect(stranger.answers()).toEqual(['AUTH_REQUIRED']);
    expect(logged.slice(before).some((l) => l.includes('3Forged') || l.includes('payer reported'))).toBe(false);
    // The payer's own connection (authenticated over its challenge) is heard.
    const payer = await Stranger.connect(s.wsUrl);
    await waitUntil(() => payer.messages.some((m) => m.type === 'challenge'), 'the challenge');
    const challenge = payer.messages.find((m) => m.type === 'challenge')!;
    if (challenge.type !== 'challenge') throw new Error('unreachable');
    payer.send(authMessage(env.secp, challenge.challenge, opened.tempId, opened.channelKey.privateKey));
    payer.send(forged);
    await waitUntil(() => logged.slice(before).some((l) => l.includes('payer reported')), 'the payer error in the log');
    const lines = logged.slice(before).flatMap((l) => l.split('\n'));
    expect(lines.filter((l) => l.includes('3Forged'))).toHaveLength(1);
    expect(lines.find((l) => l.includes('3Forged'))).toContain('"oops\\npayee: channel x closed, 1 BTC to 3Forged"');
  });

  it('a FUNDING_REJECTED reply carries none of the node’s text; the log has it, escaped', async () => {
    const key = env.wallet.nextChannelKey();
    const tip = await env.backend.getTip();
    const tempId = toHex(randomBytes(16));
    const replies: Message[] = [];
    const link: PeerLink = { send: (m) => replies.push(m) };
    const payerScript = baddress.toOutputScript(env.wallet.changeAddress(), bitcoinjsNetwork('regtest'));
    const terms = { network: 'regtest' as const, variant: 'spilman-v2' as const, payerPubkey: key.publicKey, capacitySat: 200_000n, expiryHeight: tip.height + 40, payerScript };
    await service.handle(msg('hello', { tempId, ...terms }), link);
    await service.drain();
    const accept = replies.find((m) => m.type === 'accept');
    if (accept?.type !== 'accept') throw new Error(`expected accept, got ${JSON.stringify(replies)}`);
    const funding = await env.wallet.fund([{ script: fundingScriptOf({ ...terms, payeePubkey: accept.payeePubkey }).fundingScript, valueSat: terms.capacitySat }], 2);
    // A bad signature in a witness: the txid (and so the outpoint) stays, the node refuses it.
    const tx = Transaction.fromHex(funding.txHex);
    const sig = tx.ins[0]!.witness[0]!;
    sig[10] = sig[10]! ^ 1;
    const before = logged.length;
    await service.handle(msg('funding', { tempId, proposal: terms, cookie: accept.cookie, fundingTx: tx.toHex() }), link);
    await service.drain();
    await env.wallet.release(funding.txid);
    const refused = replies.find((m) => m.type === 'error');
    expect(refused).toMatchObject({ type: 'error', code: 'FUNDING_REJECTED', message: 'FUNDING_REJECTED: the node refused the funding transaction' });
    const line = logged.slice(before).find((l) => l.includes(`funding ${funding.txid} refused by the node`));
    expect(line).toBeDefined();
    expect(line).not.toContain('\n');
  });
});
