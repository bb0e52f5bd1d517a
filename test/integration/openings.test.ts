/**
 * Openings without state (issue 13, item 2) over real sockets on a real btcd, with the SQLite
 * store: thousands of unfunded hellos, from many connections and loopback addresses, store
 * nothing and lock no one out, while an honest payer opens, pays and closes at the same time.
 * Before opening cookies, 16 hellos per address were the most a payee held; past that every new
 * hello from that address got RATE_LIMITED, and 10,000 in all locked every payer out.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Transaction } from 'bitcoinjs-lib';
import { WebSocket } from 'ws';
import { PayeeService } from '../../src/payee/payee-service.js';
import type { PayerClient } from '../../src/payer/payer-client.js';
import { fundingScriptOf } from '../../src/protocol/channel.js';
import { decodeMessage, encodeMessage, msg, type Message } from '../../src/protocol/messages.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite-store.js';
import { startPayeeServer, type PayeeServer } from '../../src/transport/payee-server.js';
import { connectPayee } from '../../src/transport/ws-client.js';
import type { PeerLink } from '../../src/transport/link.js';
import { waitUntil } from '../helpers/local-pair.js';
import { startFundedEnv, type RegtestEnv } from '../helpers/regtest-env.js';
import { regtestPayee, regtestPayer } from '../helpers/regtest-peers.js';

let env: RegtestEnv;
let dir: string;
let dbFile: string;
let store: SqliteStore;
let service: PayeeService;
let server: PayeeServer;
const cleanups: (() => Promise<unknown> | void)[] = [];

beforeAll(async () => {
  env = await startFundedEnv();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-openings-'));
  dbFile = path.join(dir, 'payee.db');
  store = openSqliteStore(dbFile);
  service = await regtestPayee(env, { store });
  service.start();
  server = await startPayeeServer({ service });
});
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await server?.close();
  service?.stop();
  await service?.drain();
  await store?.close();
  await env?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** The database and its write-ahead log, in bytes. */
const dbBytes = () => [dbFile, `${dbFile}-wal`].reduce((n, f) => n + (fs.existsSync(f) ? fs.statSync(f).size : 0), 0);

const floodKey = () => env.secp.publicKeyCreate(randomBytes(32));
const floodScript = Uint8Array.of(0x00, 0x14, ...randomBytes(20));

/** One connection from `localAddress` sending `count` valid hellos; resolves with the reply types (or error codes). */
async function flood(localAddress: string, count: number): Promise<string[]> {
  const ws = new WebSocket(server.wsUrl, { localAddress, perMessageDeflate: false });
  cleanups.push(() => ws.terminate());
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const replies: string[] = [];
  const done = new Promise<void>((resolve) =>
    ws.on('message', (data) => {
      const m = decodeMessage(String(data));
      replies.push(m.type === 'error' ? m.code : m.type);
      if (replies.length === count) resolve();
    }),
  );
  const tip = await env.backend.getTip();
  const payerPubkey = floodKey();
  for (let i = 0; i < count; i++) {
    const hello = msg('hello', { tempId: randomBytes(16).toString('hex'), network: 'regtest', variant: i % 2 ? 'spilman-v1' : 'spilman-v2', payerPubkey, capacitySat: 100_000n, expiryHeight: tip.height + 100, payerScript: floodScript });
    ws.send(encodeMessage(hello));
  }
  await done;
  ws.close();
  return replies;
}

/** `perAddress` connections from each of `addresses` loopback addresses, `perConnection` hellos each. */
async function floodMany(addresses: number, perAddress: number, perConnection: number, firstAddress: number): Promise<string[]> {
  const runs: Promise<string[]>[] = [];
  for (let a = 0; a < addresses; a++) for (let c = 0; c < perAddress; c++) runs.push(flood(`127.0.${Math.floor((firstAddress + a) / 250)}.${((firstAddress + a) % 250) + 2}`, perConnection));
  return (await Promise.all(runs)).flat();
}

/** A payer over its own WebSocket from 127.0.0.1. */
function wsPayer(): PayerClient {
  const ends: { payer?: PayerClient } = {};
  const link = connectPayee(server.wsUrl, { onMessage: (text) => ends.payer?.receive(text), onOpen: () => ends.payer?.resume(), reconnect: { minDelayMs: 20, maxDelayMs: 200 } });
  cleanups.push(() => link.close());
  ends.payer = regtestPayer(env, link);
  return ends.payer;
}

const count = (replies: string[]) => replies.reduce<Record<string, number>>((m, r) => ({ ...m, [r]: (m[r] ?? 0) + 1 }), {});

describe('openings without state', () => {
  it('1,000 unfunded hellos (one connection, then 16 addresses) store nothing and leave the database as it was', async () => {
    const rowsBefore = (await store.loadPayeeChannels()).length;
    const requestsBefore = store.stats().requests;
    const bytesBefore = dbBytes();
    // One connection: 200 hellos, more than the 16 per address the payee used to hold. Past its
    // budget of opening messages (burst 40, then 20/s) a stranger's are refused unprocessed.
    const one = count(await flood('127.0.0.2', 200));
    expect(Object.keys(one).sort()).toEqual(['RATE_LIMITED', 'accept']);
    expect(one.accept).toBeGreaterThanOrEqual(40);
    // Many: 16 addresses × 2 connections × 25 hellos, within each connection's budget.
    expect(count(await floodMany(16, 2, 25, 10))).toEqual({ accept: 800 });
    expect((await store.loadPayeeChannels()).length).toBe(rowsBefore);
    expect(store.stats().requests).toBe(requestsBefore); // not one write
    expect(dbBytes()).toBe(bytesBefore);
    expect(service.channels().length).toBe(0); // nothing held in memory either
  });

  it('the honest payer opens, pays and closes while 2,000 more hellos arrive, from its own address too', async () => {
    const payer = wsPayer();
    const flooding = Promise.all([floodMany(20, 2, 40, 40), flood('127.0.0.1', 400)]);
    const opening = payer.open({ variant: 'spilman-v1', capacitySat: 1_000_000n, expiryBlocks: 40 });
    await Promise.race([payer.waitFor((s) => s.type === 'AwaitingOpen'), opening]);
    const fundingTxid = payer.channel.funding.txid;
    await waitUntil(async () => (await env.backend.getTransaction(fundingTxid)) !== null, 'the funding in the mempool');
    await env.mine(1);
    const channel = await opening;
    for (let i = 0; i < 20; i++) await payer.pay(1_000n);
    const replies = count((await flooding).flat());
    expect((replies.accept ?? 0) + (replies.RATE_LIMITED ?? 0)).toBe(2_000); // nothing else
    expect(replies.accept).toBeGreaterThanOrEqual(41 * 40);
    payer.requestClose();
    await waitUntil(() => service.channel(channel.id)?.type === 'Closing', 'the payee to close');
    // Closing is stored before the close is broadcast: mine once the node has it.
    await waitUntil(async () => (await env.backend.getOutpointStatus(channel.funding, 0)).state === 'spent', 'the close in the mempool');
    await env.mine(1);
    await waitUntil(() => service.channel(channel.id)?.type === 'Closed', 'the close to confirm');
    // The one row is the honest channel.
    const rows = await store.loadPayeeChannels();
    expect(rows.map((r) => r.state.type)).toEqual(['Closed']);
    expect(rows[0]!.state.channel.id).toBe(channel.id);
    expect(rows[0]!.state.type === 'Closed' && rows[0]!.state.paidSat).toBe(20_000n);
  });

  it('the same funding twice, at once, makes one channel; the same terms under another tempId make another', async () => {
    const key = env.wallet.nextChannelKey();
    const tip = await env.backend.getTip();
    const terms = { network: 'regtest' as const, variant: 'spilman-v2' as const, payerPubkey: key.publicKey, capacitySat: 200_000n, expiryHeight: tip.height + 40, payerScript: floodScript };
    const replies: Message[] = [];
    const link: PeerLink = { send: (m) => replies.push(decodeMessage(encodeMessage(m))) };
    const accepts = [];
    for (const tempId of [randomBytes(16).toString('hex'), randomBytes(16).toString('hex')]) {
      replies.length = 0;
      await service.handle(msg('hello', { tempId, ...terms }), link);
      const [accept] = replies;
      if (accept?.type !== 'accept') throw new Error(`expected accept, got ${JSON.stringify(accept)}`);
      accepts.push(accept);
    }
    const [a, b] = accepts as [Extract<Message, { type: 'accept' }>, Extract<Message, { type: 'accept' }>];
    expect(a.payeePubkey).not.toEqual(b.payeePubkey); // same terms, distinct channel keys
    const rowsBefore = (await store.loadPayeeChannels()).length;
    const funding = await env.wallet.fund([{ script: fundingScriptOf({ ...terms, payeePubkey: a.payeePubkey }).fundingScript, valueSat: terms.capacitySat }], 2);
    const fundingMsg = msg('funding', { tempId: a.tempId, proposal: terms, cookie: a.cookie, fundingTx: funding.txHex });
    // The same transaction with a bad signature (same txid): the node refuses it, and nothing is
    // stored, even when two copies arrive at once.
    const forged = Transaction.fromHex(funding.txHex);
    forged.setWitness(0, [new Uint8Array(71).fill(1), forged.ins[0]!.witness[1]!]);
    const refused = { ...fundingMsg, fundingTx: forged.toHex() };
    replies.length = 0;
    await Promise.all([service.handle(refused, link), service.handle(refused, link)]);
    await service.drain();
    expect(replies.map((m) => (m.type === 'error' ? m.code : m.type))).toEqual(['FUNDING_REJECTED', 'FUNDING_REJECTED']);
    expect((await store.loadPayeeChannels()).length).toBe(rowsBefore);
    expect(service.channel(a.tempId)).toBeUndefined();
    replies.length = 0;
    await Promise.all([service.handle(fundingMsg, link), service.handle(fundingMsg, link)]);
    await service.drain();
    expect(replies.filter((m) => m.type === 'error')).toEqual([]);
    expect(service.channels().filter((s) => s.channel.funding.txid === funding.txid)).toHaveLength(1);
    expect((await store.loadPayeeChannels()).length).toBe(rowsBefore + 1);
    // The same funding under the other proposal's cookie pays the wrong key: refused, no row.
    replies.length = 0;
    await service.handle(msg('funding', { tempId: b.tempId, proposal: terms, cookie: b.cookie, fundingTx: funding.txHex }), link);
    expect(replies.map((m) => (m.type === 'error' ? m.code : m.type))).toEqual(['FUNDING_MISMATCH']);
    expect((await store.loadPayeeChannels()).length).toBe(rowsBefore + 1);
  });

  it('an expired cookie is refused, unless the node already has the funding (a payee that died before storing it)', async () => {
    const key = env.wallet.nextChannelKey();
    const tip = await env.backend.getTip();
    const terms = { network: 'regtest' as const, variant: 'spilman-v2' as const, payerPubkey: key.publicKey, capacitySat: 150_000n, expiryHeight: tip.height + 60, payerScript: floodScript };
    const replies: Message[] = [];
    const link: PeerLink = { send: (m) => replies.push(decodeMessage(encodeMessage(m))) };
    const accepted = async () => {
      replies.length = 0;
      const tempId = randomBytes(16).toString('hex');
      await service.handle(msg('hello', { tempId, ...terms }), link);
      const [accept] = replies;
      if (accept?.type !== 'accept') throw new Error(`expected accept, got ${JSON.stringify(accept)}`);
      const funding = await env.wallet.fund([{ script: fundingScriptOf({ ...terms, payeePubkey: accept.payeePubkey }).fundingScript, valueSat: terms.capacitySat }], 2);
      return { fundingMsg: msg('funding', { tempId, proposal: terms, cookie: accept.cookie, fundingTx: funding.txHex }), funding };
    };
    const unknown = await accepted();
    const known = await accepted();
    await env.backend.broadcast(known.funding.txHex); // as if the payee had, then died
    await env.mine(7); // past proposalTimeoutBlocks (6)
    await service.onTip(await env.backend.getTip()); // cookies are judged by the tip the payee has seen
    const codes = async (m: Message) => {
      replies.length = 0;
      await service.handle(m, link);
      await service.drain();
      return replies.map((r) => (r.type === 'error' ? r.code : r.type));
    };
    expect(await codes(unknown.fundingMsg)).toEqual(['COOKIE_EXPIRED']);
    expect(service.channel(unknown.fundingMsg.tempId)).toBeUndefined();
    await env.wallet.release(unknown.funding.txid);
    expect(await codes(known.fundingMsg)).toEqual([]);
    expect(service.channel(known.fundingMsg.tempId)?.type).toMatch(/AwaitingConfirmation|Open/);
  });
});
