/**
 * A tempId is the payer's nonce: an opening under one that already has a stored row is refused
 * (DUPLICATE_CHANNEL) before its funding is broadcast, and the row is left as it was. With
 * PostgreSQL (leases on) the payee holds only open channels in memory, so before this check a
 * payer could open a new channel under the tempId of one of its Closed ones and overwrite its row
 * (inheriting its newest payment row). On a real btcd, with SQLite and with PostgreSQL.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PayeeService } from '../../src/payee/payee-service.js';
import { fundingScriptOf } from '../../src/protocol/channel.js';
import { decodeMessage, encodeMessage, msg, type Message } from '../../src/protocol/messages.js';
import type { PayeeState } from '../../src/protocol/payee-machine.js';
import { openPostgresStore, type PostgresStore } from '../../src/store/postgres-store.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import type { PeerLink } from '../../src/transport/link.js';
import { POSTGRES_UNAVAILABLE, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { startFundedEnv, type RegtestEnv } from '../helpers/regtest-env.js';
import { regtestPayee } from '../helpers/regtest-peers.js';

let env: RegtestEnv;
beforeAll(async () => {
  env = await startFundedEnv();
});
afterAll(() => env?.stop());

const payerScript = Uint8Array.of(0x00, 0x14, ...randomBytes(20));

/** Says hello under `tempId` and funds the accepted channel: the funding message, not yet sent. */
async function fundedOpening(service: PayeeService, tempId: string) {
  await env.mine(1); // one more mature coinbase (and the change of earlier fundings confirmed) to fund from
  const key = env.wallet.nextChannelKey();
  const tip = await env.backend.getTip();
  const terms = { network: 'regtest' as const, variant: 'spilman-v2' as const, payerPubkey: key.publicKey, capacitySat: 200_000n, expiryHeight: tip.height + 40, payerScript };
  const replies: Message[] = [];
  const link: PeerLink = { send: (m) => replies.push(decodeMessage(encodeMessage(m))) };
  await service.handle(msg('hello', { tempId, ...terms }), link);
  const accept = replies.shift();
  if (accept?.type !== 'accept') throw new Error(`expected accept, got ${JSON.stringify(accept)}`);
  const funding = await env.wallet.fund([{ script: fundingScriptOf({ ...terms, payeePubkey: accept.payeePubkey }).fundingScript, valueSat: terms.capacitySat }], 2);
  return { replies, link, txid: funding.txid, message: msg('funding', { tempId, proposal: terms, cookie: accept.cookie, fundingTx: funding.txHex }) };
}

/**
 * Opens channel A, then puts a copy of A's row under tempId `t` as the payee's store holds it
 * when the payee does not (`writeRow`: a Closed channel, with leases; another instance's), and
 * sends a funding under `t`.
 */
async function reuseScenario(service: PayeeService, store: Store, writeRow: (tempId: string, state: PayeeState) => Promise<PayeeState>, refusal = 'DUPLICATE_CHANNEL') {
  const a = await fundedOpening(service, randomBytes(16).toString('hex'));
  await service.handle(a.message, a.link);
  await service.drain();
  expect(a.replies.filter((m) => m.type === 'error')).toEqual([]);
  const rowA = (await store.loadPayeeChannels()).find((c) => c.state.type !== 'Closed' && 'channel' in c.state && c.state.channel.funding.txid === a.txid)!;
  expect(rowA).toBeDefined();
  const t = randomBytes(16).toString('hex');
  const b = await fundedOpening(service, t);
  const written = await writeRow(t, rowA.state);
  await service.handle(b.message, b.link);
  await service.drain();
  expect(b.replies.map((m) => (m.type === 'error' ? m.code : m.type))).toEqual([refusal]);
  if (refusal === 'DUPLICATE_CHANNEL') expect(service.channel(t)).toBeUndefined();
  else expect(service.channel(t)).toEqual(written); // the stored channel, served here now
  expect(await env.backend.getTransaction(b.txid)).toBeNull(); // refused before the broadcast
  const rowT = (await store.loadPayeeChannels()).find((c) => c.tempId === t)!;
  expect(rowT.state).toEqual(written); // the row is as it was
  await env.wallet.release(b.txid);
}

describe('an opening under a tempId that has a stored row', () => {
  it('is refused DUPLICATE_CHANNEL on SQLite, the row untouched, nothing broadcast', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-tempid-'));
    const store = openSqliteStore(path.join(dir, 'payee.db'));
    const service = await regtestPayee(env, { store });
    try {
      await reuseScenario(service, store, async (tempId, state) => {
        await store.savePayeeChannel(tempId, state);
        return state;
      });
    } finally {
      await service.drain();
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  describe.skipIf(POSTGRES_UNAVAILABLE !== undefined)(`on PostgreSQL${POSTGRES_UNAVAILABLE ? ` (skipped: ${POSTGRES_UNAVAILABLE})` : ''}`, () => {
    let server: PostgresServer;
    beforeAll(async () => {
      server = await startPostgres();
    });
    afterAll(() => server?.stop());

    /**
     * Runs `fn` with a payee on a fresh database and another writer of it (an instance, or this
     * one before a restart) that stores rows and lets their leases go.
     */
    async function withTwoWriters(fn: (service: PayeeService, store: Store, other: PostgresStore) => Promise<void>): Promise<void> {
      const url = await server.createDatabase();
      const store = openPostgresStore(url, { owner: 'payee' });
      const other = openPostgresStore(url, { owner: 'other' });
      const service = await regtestPayee(env, { store });
      try {
        await fn(service, store, other);
      } finally {
        service.stop();
        await service.drain();
        await other.close();
        await store.close();
      }
    }

    it('is refused DUPLICATE_CHANNEL with leases on (a Closed channel\'s row, which no instance holds in memory), the row untouched, nothing broadcast', async () => {
      await withTwoWriters(async (service, store, other) => {
        await reuseScenario(service, store, async (tempId, state) => {
          if (state.type !== 'AwaitingConfirmation') throw new Error('unreachable');
          const { fundingTxHex: _f, ...rest } = state;
          await other.leases.acquire([tempId]);
          const closed: PayeeState = { ...rest, type: 'Closed', paidSat: 5_000n, closeTxid: 'cc'.repeat(32), settledBy: 'close' };
          await other.savePayeeChannel(tempId, closed);
          await other.leases.release(tempId);
          return closed;
        });
      });
    });

    it('serves the row of an open channel no instance holds (its instance died), and refuses another funding under its tempId there (FUNDING_MISMATCH), the row untouched', async () => {
      await withTwoWriters(async (service, store, other) => {
        await reuseScenario(
          service,
          store,
          async (tempId, state) => {
            const copy = { ...state, tempId } as PayeeState;
            await other.leases.acquire([tempId]);
            await other.savePayeeChannel(tempId, copy);
            await other.leases.release(tempId);
            return copy;
          },
          'FUNDING_MISMATCH',
        );
      });
    });
  });
});
