/**
 * Building blocks for the HTTP 402 integration tests: a payee on a SQLite store in a temporary
 * directory with its WebSocket server, a paying fetch whose `channelFor` opens a real channel on
 * the regtest node (mining its confirmation), and small HTTP helpers. Everything is on
 * 127.0.0.1 and every piece has a `close()` the tests call in finally/afterAll.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { address as baddress, Transaction } from 'bitcoinjs-lib';
import { waitUntil } from './local-pair.js';
import { PayeeService } from '../../src/payee/payee-service.js';
import { createPayingFetch } from '../../src/payer/paying-fetch.js';
import { PayerClient } from '../../src/payer/payer-client.js';
import { equalBytes, toHex } from '../../src/protocol/bytes.js';
import type { Channel } from '../../src/protocol/channel.js';
import { bitcoinjsNetwork } from '../../src/protocol/network.js';
import { paymentDigest, paymentSighasher } from '../../src/protocol/payment.js';
import type { PayeeState } from '../../src/protocol/payee-machine.js';
import { payeePolicy } from '../../src/protocol/policy.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite-store.js';
import { startPayeeServer, type PayeeServer } from '../../src/transport/payee-server.js';
import type { PaymentRequiredBody } from '../../src/transport/paywall.js';
import { connectPayee, type WsPeerLink } from '../../src/transport/ws-client.js';
import { WalletKeys, type KeyPair } from '../../src/wallet/keys.js';
import type { RegtestEnv } from './regtest-env.js';
import { regtestPayer } from './regtest-peers.js';

export const FEE_RATE = 2;
export const log = process.env.PAYCHAN_TEST_LOG === '1' ? (l: string) => console.error(l) : undefined;

/** The payee: service on a durable SQLite store, and its HTTP + WebSocket server. */
export interface PayeeSide {
  readonly service: PayeeService;
  readonly server: PayeeServer;
  readonly store: SqliteStore;
  /** Where the payee's share of a close goes. */
  readonly payoutScript: Uint8Array;
  close(): Promise<void>;
}

export async function startPayee(env: RegtestEnv): Promise<PayeeSide> {
  const dir = mkdtempSync(path.join(tmpdir(), 'paychan-402-'));
  const store = openSqliteStore(path.join(dir, 'payee.db'));
  const keys = WalletKeys.fromSeed(randomBytes(32), 'regtest');
  const payoutScript = keys.address('receive', 0).script;
  let service: PayeeService | undefined;
  let server: PayeeServer | undefined;
  const close = async () => {
    await server?.close();
    service?.stop();
    await service?.drain();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    service = await PayeeService.open({
      store,
      secp: env.secp,
      policy: payeePolicy({ network: 'regtest' }),
      backend: env.backend,
      keys,
      payoutScript,
      fallbackFeeRateSatPerVb: FEE_RATE,
      log: log && ((l) => log(`payee: ${l}`)),
    });
    service.start();
    server = await startPayeeServer({ service, log: log && ((l) => log(`server: ${l}`)) });
    return { service, server, store, payoutScript, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The payer behind a paying fetch: the channel `channelFor` opened, with its key and link. */
export interface PayingSide {
  readonly fetch: (input: string | URL, init?: RequestInit) => Promise<Response>;
  /** Every response the paying fetch received, in order (402 bodies parsed). */
  readonly seen: { path: string; status: number; header: string | null; body?: PaymentRequiredBody }[];
  /** How many times the paying fetch asked for a channel. */
  channelRequests(): number;
  /** The channel's client, once `channelFor` opened it. @throws Error before. */
  client(): PayerClient;
  readonly channelKey: KeyPair & { readonly index: number };
  /** Where the payer's change and refund go. */
  readonly payoutScript: Uint8Array;
  close(): Promise<void>;
}

export interface PayingSideOptions {
  readonly capacitySat: bigint;
  readonly maxPriceSat: bigint;
  /** Default spilman-v2. */
  readonly variant?: 'spilman-v1' | 'spilman-v2';
}

/**
 * A paying fetch whose `channelFor` opens a channel to the payee named in the 402 over a real
 * WebSocket, funds it from the test wallet and mines the confirmation the payee waits for.
 */
export function payingSide(env: RegtestEnv, options: PayingSideOptions): PayingSide {
  const channelKey = env.wallet.nextChannelKey();
  const payoutScript = baddress.toOutputScript(env.wallet.changeAddress(), bitcoinjsNetwork('regtest'));
  const seen: PayingSide['seen'] = [];
  let opened: PayerClient | undefined;
  let link: WsPeerLink | undefined;
  let requests = 0;

  const recordingFetch: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    const url = new URL(input instanceof Request ? input.url : input);
    const entry: PayingSide['seen'][number] = { path: url.pathname, status: response.status, header: new Headers(init?.headers).get('paychan-payment') };
    if (response.status === 402) entry.body = (await response.clone().json()) as PaymentRequiredBody;
    seen.push(entry);
    return response;
  };

  const channelFor = async (offer: PaymentRequiredBody): Promise<PayerClient> => {
    requests++;
    if (offer.network !== 'regtest') throw new Error(`offer for ${offer.network}`);
    const holder: { client?: PayerClient } = {};
    link = connectPayee(offer.channelUrl, {
      onMessage: (text) => holder.client?.receive(text),
      onOpen: () => holder.client?.resume(),
      reconnect: { minDelayMs: 20, maxDelayMs: 200 },
      log: log && ((l) => log(`link: ${l}`)),
    });
    const client = regtestPayer(env, link, { channelKey, payoutScript, fundingFeeRateSatPerVb: FEE_RATE, log: log && ((l) => log(`payer: ${l}`)) });
    holder.client = client;
    await link.ready();
    await openChannel(env, client, options.capacitySat, options.variant ?? 'spilman-v2');
    opened = client;
    return client;
  };

  return {
    fetch: createPayingFetch({ channelFor, maxPriceSat: options.maxPriceSat, fetch: recordingFetch }),
    seen,
    channelRequests: () => requests,
    client() {
      if (!opened) throw new Error('no channel opened yet');
      return opened;
    },
    channelKey,
    payoutScript,
    close: async () => {
      await link?.close();
    },
  };
}

/** Opens a channel, mining the funding's confirmation while the payer waits for `Open`. */
export async function openChannel(env: RegtestEnv, client: PayerClient, capacitySat: bigint, variant: 'spilman-v1' | 'spilman-v2'): Promise<Channel> {
  const opening = client.open({ variant, capacitySat, expiryBlocks: 30 });
  await Promise.race([client.waitFor((s) => s.type === 'AwaitingOpen'), opening]);
  const txid = client.channel.funding.txid;
  await waitUntil(async () => (await env.backend.getTransaction(txid)) !== null, 'the funding in the mempool');
  // One block confirms it: the payee's regtest policy asks for 1 confirmation, and it opens the
  // channel when its tip subscription reports that block.
  await env.mine(1);
  return opening;
}

/**
 * A `Paychan-Payment` header value for `totalSat` on `channel`, signed with `privateKey` (any
 * total, also one the payer client never signed: for stale and mismatched headers).
 */
export function signedHeader(env: RegtestEnv, channel: Channel, privateKey: Uint8Array, totalSat: bigint, signedTotalSat = totalSat, channelId = channel.id): string {
  const sig = env.secp.ecdsaSign(paymentDigest(channel, paymentSighasher(channel), signedTotalSat), privateKey);
  return `channel=${channelId}, total=${totalSat}, sig=${toHex(sig)}`;
}

/** What the payee holds as paid on a channel (0 before the first payment). */
export function paidSat(state: PayeeState | undefined): bigint {
  if (!state) throw new Error('the payee does not know the channel');
  return 'paidSat' in state ? state.paidSat : 0n;
}

/** Listens on 127.0.0.1, a free port; resolves with the base URL. */
export async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Closes a node:http server, cutting keep-alive connections. */
export async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}

/** A plain request (no paying fetch): status and parsed JSON or text body. */
export async function get(url: string, paymentHeader?: string): Promise<{ status: number; headers: Headers; body: unknown; text: string }> {
  const response = await fetch(url, { headers: paymentHeader === undefined ? {} : { 'paychan-payment': paymentHeader } });
  const text = await response.text();
  let body: unknown = text;
  if ((response.headers.get('content-type') ?? '').includes('application/json')) body = JSON.parse(text);
  return { status: response.status, headers: response.headers, body, text };
}

/** The close transaction as the node has it: what each side got and the fee, to the satoshi. */
export async function closeOnChain(env: RegtestEnv, txid: string, capacitySat: bigint, payeeScript: Uint8Array, payerScript: Uint8Array) {
  const status = await env.backend.getTransaction(txid);
  if (!status) throw new Error(`the node does not know ${txid}`);
  const tx = Transaction.fromHex(status.hex);
  const to = (script: Uint8Array) => tx.outs.filter((o) => equalBytes(o.script, script)).reduce((s, o) => s + o.value, 0n);
  const outputsSat = tx.outs.reduce((s, o) => s + o.value, 0n);
  return {
    confirmations: status.confirmations,
    payeeSat: to(payeeScript),
    payerSat: to(payerScript),
    outputsSat,
    feeSat: capacitySat - outputsSat,
    outputs: tx.outs.length,
    vsize: tx.virtualSize(),
    spends: tx.ins.map((i) => `${Buffer.from(i.hash).reverse().toString('hex')}:${i.index}`),
  };
}
