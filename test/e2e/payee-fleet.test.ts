/**
 * Several payee instances on one PostgreSQL, one writer per channel (docs/scale.md), with real
 * processes: two `paychan payee serve --db postgres://…` sharing a seed, a real btcd, a payer
 * given both URLs. Instance A opens the channel and takes payments; A is paused (SIGSTOP) while
 * it holds it; B takes the channel once A's lease expires and the payer continues there; A is
 * resumed and a payment reaching it then is refused by the fence: it acknowledges nothing more.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WebSocket } from 'ws';
import { address as baddress } from 'bitcoinjs-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RpcClient } from '../../src/chain/rpc-client.js';
import { authMessage } from '../../src/protocol/auth.js';
import { toHex } from '../../src/protocol/bytes.js';
import { decodeMessage, encodeMessage, type Message, type MessageOf } from '../../src/protocol/messages.js';
import { bitcoinjsNetwork } from '../../src/protocol/network.js';
import { payerPolicy } from '../../src/protocol/policy.js';
import { PayerClient } from '../../src/payer/payer-client.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { connectPayee, type WsPeerLink } from '../../src/transport/ws-client.js';
import { freePort, startCli, stopCli } from '../helpers/cli.js';
import { POSTGRES_UNAVAILABLE, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { startFundedEnv, type RegtestEnv } from '../helpers/regtest-env.js';
import { waitUntil } from '../helpers/wait.js';

const LEASE_MS = 1500;

describe.skipIf(POSTGRES_UNAVAILABLE !== undefined)(`payee instances on one PostgreSQL${POSTGRES_UNAVAILABLE ? ` (skipped: ${POSTGRES_UNAVAILABLE})` : ''}`, () => {
  let env: RegtestEnv;
  let pg: PostgresServer;
  let dir: string;
  let dbUrl: string;
  const instances: { name: string; url: string; child: Awaited<ReturnType<typeof startCli>>; dataDir: string }[] = [];
  let mining = true;
  let miner: Promise<void> = Promise.resolve();

  beforeAll(async () => {
    [env, pg] = await Promise.all([startFundedEnv(), startPostgres()]);
    dbUrl = `${await pg.createDatabase()}?paychan_lease_ms=${LEASE_MS}`;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-fleet-'));
    const seed = `${toHex(randomBytes(32))}\n`; // every instance derives the same channel keys
    for (const name of ['a', 'b']) {
      const dataDir = path.join(dir, name);
      fs.mkdirSync(dataDir, { mode: 0o700 });
      fs.writeFileSync(path.join(dataDir, 'seed'), seed, { mode: 0o600 });
      const port = await freePort();
      const child = await startCli(
        ['payee', 'serve', '--rpc-url', env.node.rpcUrl, '--rpc-user', env.node.rpcUser, '--rpc-pass', env.node.rpcPass, '--data-dir', dataDir, '--db', dbUrl, '--listen', `127.0.0.1:${port}`],
        { ...process.env, PAYCHAN_HOME: path.join(dir, `home-${name}`) },
        /payee listening/,
      );
      instances.push({ name, url: `ws://127.0.0.1:${port}/v1/ws`, child, dataDir });
    }
    const rpc = new RpcClient({ url: env.node.rpcUrl, user: env.node.rpcUser, pass: env.node.rpcPass });
    miner = (async () => {
      while (mining) {
        const mempool = (await rpc.call('getrawmempool').catch(() => [])) as string[];
        if (mempool.length > 0) await env.mine(1).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 100));
      }
      rpc.close();
    })();
  });

  afterAll(async () => {
    mining = false;
    await miner;
    for (const i of instances) {
      if (i.child.child.pid !== undefined) process.kill(i.child.child.pid, 'SIGCONT');
      await stopCli(i.child.child, 'SIGKILL');
    }
    await Promise.all([env?.stop(), pg?.stop()]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const ownerOf = async (tempId: string): Promise<string | undefined> =>
    (await pg.query<{ owner: string }>('SELECT owner FROM channel_leases WHERE temp_id = $1', [tempId], dbUrl))[0]?.owner;
  const instanceId = (dataDir: string): string => `paychan-${fs.readFileSync(path.join(dataDir, 'instance-id'), 'utf8').trim()}`;

  it('moves a channel to the other instance when its holder is paused, and fences the paused one off', async () => {
    const [a, b] = instances as [(typeof instances)[0], (typeof instances)[0]];
    const holder: { client?: PayerClient } = {};
    let lastPayment: MessageOf<'payment'> | undefined;
    const link: WsPeerLink = connectPayee([a.url, b.url], {
      onMessage: (t) => holder.client?.receive(t),
      onOpen: () => holder.client?.resume(),
      reconnect: { minDelayMs: 50, maxDelayMs: 200 },
      // A paused payee says nothing: leave it for the next URL quickly.
      idleTimeoutMs: 1000,
    });
    const recording = {
      send: (m: Message) => {
        if (m.type === 'payment') lastPayment = m;
        link.send(m);
      },
    };
    const channelKey = env.wallet.nextChannelKey();
    const payerScript = baddress.toOutputScript(env.wallet.changeAddress(), bitcoinjsNetwork('regtest'));
    const client = new PayerClient({
      secp: env.secp,
      policy: payerPolicy({ network: 'regtest' }),
      network: 'regtest',
      backend: env.backend,
      wallet: env.wallet,
      channelKey,
      payoutScript: payerScript,
      link: recording,
      store: new MemoryStore(),
      fundingFeeRateSatPerVb: 2,
      random16: () => randomBytes(16),
    });
    holder.client = client;
    try {
      await link.ready();
      const channel = await client.open({ variant: 'spilman-v2', capacitySat: 1_000_000n, expiryBlocks: 1000 });
      const tempId = (await pg.query<{ temp_id: string }>('SELECT temp_id FROM payee_channels WHERE channel_id = $1', [channel.id], dbUrl))[0]!.temp_id;
      let acked = 0n;
      for (let i = 0; i < 20; i++) acked = await client.pay(1000n);
      expect(acked).toBe(20_000n);
      expect(await ownerOf(tempId)).toBe(instanceId(a.dataDir));

      // A pays-in-progress stream; A is paused while it holds the channel.
      let stop = false;
      let ackedAfterPause = 0;
      let paused = false;
      const stream = (async () => {
        while (!stop) {
          const total = await client.pay(100n);
          if (total > acked) acked = total;
          if (paused) ackedAfterPause++;
        }
      })();
      // A second connection of the payer's to A, made before the pause (authenticated, so A
      // answers on it): what it carries reaches A only when A runs again.
      const probe = await openProbe(a.url);
      const challenge = probe.received.find((m) => m.type === 'challenge');
      if (challenge?.type !== 'challenge') throw new Error('no challenge');
      probe.ws.send(encodeMessage(authMessage(env.secp, challenge.challenge, tempId, channelKey.privateKey)));
      await waitUntil(() => acked >= 21_000n, 'payments streaming on A');
      process.kill(a.child.child.pid!, 'SIGSTOP');
      paused = true;
      await waitUntil(async () => ackedAfterPause >= 20 && (await ownerOf(tempId)) === instanceId(b.dataDir), 'B taking the channel over and acknowledging payments', 30_000);
      stop = true;
      await stream;
      const movedAt = acked;

      // A payment A has not seen, delivered to A while it is paused; then A runs again.
      const replay = lastPayment!;
      expect(replay.totalSat).toBe(movedAt);
      probe.ws.send(encodeMessage(replay));
      process.kill(a.child.child.pid!, 'SIGCONT');
      // A drops the channel (its renewal or its write finds the token changed) and tells the payer.
      await waitUntil(() => probe.received.some((m) => m.type === 'error' && m.code === 'CHANNEL_MOVED'), 'A saying the channel moved', 15_000);
      expect(a.child.output()).toMatch(/lease of \S+ lost: another instance took the channel/);
      // The payment was taken off the socket and stepped with A's old token: the fence refused it.
      await waitUntil(() => /1 payee writes fenced off, not stored/.test(a.child.output()), "A's write refused by the fence", 15_000);
      expect(probe.received.filter((m) => m.type === 'payment-ack')).toEqual([]);
      // The store holds what B acknowledged; A's write did not land over it.
      const stored = await pg.query<{ total_sat: string }>('SELECT total_sat FROM payee_payments WHERE temp_id = $1', [tempId], dbUrl);
      expect(BigInt(stored[0]!.total_sat)).toBe(movedAt);
      expect(await ownerOf(tempId)).toBe(instanceId(b.dataDir));
      probe.ws.close();

      // The payer carries on with B.
      expect(await client.pay(500n)).toBe(movedAt + 500n);
      // B took it when the payer came (took over) or on its own once the lease expired (orphaned).
      expect(b.child.output()).toMatch(new RegExp(`(took over|adopted orphaned) channel ${channel.id}`));
    } finally {
      await link.close();
    }
  });
});

/** A raw connection to a payee that records what it receives. */
async function openProbe(url: string): Promise<{ ws: WebSocket; received: Message[] }> {
  const ws = new WebSocket(url);
  const received: Message[] = [];
  ws.on('message', (data) => received.push(decodeMessage(String(data))));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  await waitUntil(() => received.some((m) => m.type === 'challenge'), 'the challenge');
  return { ws, received };
}
