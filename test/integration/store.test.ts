/**
 * The Store port's contract (src/store/store.ts) as one suite, `storeContract`, that every
 * adapter runs (SQLite on a file, memory, PostgreSQL on a throwaway server: test/helpers/postgres.ts),
 * then what is specific to SQLite: group commit counted in transactions, failed commits, schema
 * versions, file permissions, the duplex driver's synchronous face, and durability across a real
 * SIGKILL of a writing process. SQLite's `:memory:` does not run the contract: the contract
 * reopens its database, which `:memory:` cannot (its own test is below).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DuplexChannelState } from '../../src/protocol/duplex-state.js';
import type { PayeeEffect, PayerEffect } from '../../src/protocol/effects.js';
import { decodeMessage, encodeMessage, type Message, type MessageOf } from '../../src/protocol/messages.js';
import { payeeAccept, payeeOpen, payeeSignRefund, payeeStep, payeeVouched, type PayeeContext, type PayeeState } from '../../src/protocol/payee-machine.js';
import { payerPropose, payerStep, type PayerContext, type PayerState } from '../../src/protocol/payer-machine.js';
import { payeePolicy, payerPolicy } from '../../src/protocol/policy.js';
import type { Variant } from '../../src/protocol/scripts.js';
import { isStoreError, MIGRATIONS, openSqliteStore, SCHEMA_VERSION, type SqliteStore, type SqliteStoreOptions, type Store } from '../../src/store/index.js';
import { MemoryDatabase, MemoryStore } from '../../src/store/memory-store.js';
import { openStore } from '../../src/store/open-store.js';
import { openPostgresStore, type PostgresStore } from '../../src/store/postgres-store.js';
import { POSTGRES_UNAVAILABLE, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { PAYEE_KEY, PAYER_KEY, PAYER_PUB, PAYER_SCRIPT, closeRecordFor, fundingTx, secp, terms } from '../helpers/protocol.js';
import { startBrowserStores, type BrowserStores } from '../helpers/browser-store.js';

// ---------------------------------------------------------------------------------------------
// Real channel states, made by running the protocol (no chain needed).

const payeeCtx: PayeeContext = { secp, policy: payeePolicy({ network: 'regtest' }), privateKey: () => PAYEE_KEY, openingSecret: new Uint8Array(32).fill(5) };
const payerCtx: PayerContext = { secp, policy: payerPolicy({ network: 'regtest' }), privateKey: () => PAYER_KEY };
const wire = (m: Message): Message => decodeMessage(encodeMessage(m));
const sent = (effects: readonly (PayeeEffect | PayerEffect)[]): Message => {
  const m = effects.find((e) => e.type === 'send');
  if (m?.type !== 'send') throw new Error('the step sent nothing');
  return decodeMessage(encodeMessage(m.message));
};

/** Every state both sides pass through: open, two payments, close, close confirmed. */
function channelHistory(variant: Variant, tempId: string): { payee: PayeeState[]; payer: PayerState[] } {
  const payee: PayeeState[] = [];
  const payer: PayerState[] = [];
  let p = payerPropose({ tempId, network: 'regtest', variant, keyIndex: 0, payerPubkey: PAYER_PUB, capacitySat: 1_000_000n, expiryHeight: 150, payerScript: PAYER_SCRIPT, maxTotalSat: 1_000_000n });
  payer.push(p.state);
  // The payee holds no state before the funding (opening cookies): its first state is the funded channel.
  p = payerStep(payerCtx, p.state, { type: 'message', message: wire(payeeAccept(payeeCtx, sent(p.effects) as MessageOf<'hello'>, 100)) });
  payer.push(p.state);
  const tx = fundingTx(terms(variant, { expiryHeight: 150 }), { vout: 1 });
  p = payerStep(payerCtx, p.state, { type: 'funding-created', txHex: tx.toHex() });
  payer.push(p.state);
  if (variant === 'spilman-v1') {
    p = payerStep(payerCtx, p.state, { type: 'message', message: wire(payeeSignRefund(payeeCtx, sent(p.effects) as MessageOf<'refund-request'>, payeeVouched(payeeCtx, sent(p.effects) as MessageOf<'refund-request'>, 101))) });
    payer.push(p.state);
  }
  let q = payeeOpen(payeeCtx, sent(p.effects) as MessageOf<'funding'>, payeeVouched(payeeCtx, sent(p.effects) as MessageOf<'funding'>, null), 101);
  payee.push(q.state);
  q = payeeStep(payeeCtx, q.state, { type: 'confirmed', txid: tx.getId() });
  payee.push(q.state);
  p = payerStep(payerCtx, p.state, { type: 'message', message: sent(q.effects) });
  payer.push(p.state);
  for (const amountSat of [1000n, 2345n]) {
    p = payerStep(payerCtx, p.state, { type: 'pay', amountSat });
    payer.push(p.state);
    q = payeeStep(payeeCtx, q.state, { type: 'message', message: sent(p.effects), tipHeight: 100 });
    payee.push(q.state);
    p = payerStep(payerCtx, p.state, { type: 'message', message: sent(q.effects) });
    payer.push(p.state);
  }
  q = payeeStep(payeeCtx, q.state, { type: 'close', close: closeRecordFor(q.state, 2) });
  payee.push(q.state);
  if (q.state.type !== 'Closing') throw new Error('not closing');
  q = payeeStep(payeeCtx, q.state, { type: 'settled', txid: q.state.close.txid, by: 'close' });
  payee.push(q.state);
  p = payerStep(payerCtx, p.state, { type: 'message', message: sent(q.effects) });
  payer.push(p.state);
  return { payee, payer };
}

const v1 = channelHistory('spilman-v1', '01'.repeat(16));
const v2 = channelHistory('spilman-v2', '02'.repeat(16));
const openPayee = v2.payee.find((s) => s.type === 'Open' && s.signature !== null)!;

/** A payee state with `paidSat` = value: distinct, recognisable states for ordering tests. */
const paid = (value: number | bigint): PayeeState => ({ ...openPayee, paidSat: BigInt(value) }) as PayeeState;
const paidOf = (state: PayeeState): bigint => ('paidSat' in state ? state.paidSat : -1n);
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A duplex channel state with every kind of value the codec carries (bigint, bytes, nested, null). */
function duplexRecord(tempId: string, paidAtoBSat: bigint, channelId = `${'ee'.repeat(32)}:0`): DuplexChannelState {
  return {
    type: 'Open',
    tempId,
    channelId,
    role: 'A',
    keyIndex: 3,
    terms: { network: 'regtest', keyA: PAYER_PUB, keyB: Uint8Array.from([2, ...new Array<number>(32).fill(7)]), scriptA: PAYER_SCRIPT, scriptB: PAYER_SCRIPT, contributionASat: 100_000n, contributionBSat: 5n, initialLocktime: 500, deltaBlocks: 6, stateFeeRateSatPerVb: 2 },
    fundingFeeRateSatPerVb: 2,
    minFundingConfirmations: 1,
    openedHeight: 100,
    openedBy: null,
    ownInputs: [],
    ownOutputs: [],
    fundingTxHex: '00',
    fundingConfirmed: true,
    fundingHeight: null,
    fundingSignedHeight: null,
    ownInputsReleased: false,
    current: { index: 1, balanceASat: 100_005n - paidAtoBSat, balanceBSat: paidAtoBSat, sigA: new Uint8Array(64).fill(1), sigB: new Uint8Array(64).fill(2) },
    pending: null,
    refusedIndex: null,
    proposedRequests: [],
    rolloverProposal: null,
    payBackQueue: [],
    predecessorId: null,
    updates: 1,
    paidAtoBSat,
    paidBtoASat: 0n,
  };
}
/** An opening (no channel id yet). */
function openingRecord(tempId: string): DuplexChannelState {
  const open = duplexRecord(tempId, 0n);
  if (open.type !== 'Open') throw new Error('not open');
  const { tempId: _t, role: _r, keyIndex, fundingFeeRateSatPerVb, minFundingConfirmations, openedHeight, openedBy, ownInputs, ownOutputs, terms } = open;
  return { type: 'Proposed', tempId, role: 'A', keyIndex, fundingFeeRateSatPerVb, minFundingConfirmations, openedHeight, openedBy, ownInputs, ownOutputs, terms };
}
const paidOfRecord = (r: DuplexChannelState): string => `${r.tempId}${'paidAtoBSat' in r ? r.paidAtoBSat : -1n}`;

// ---------------------------------------------------------------------------------------------

/** Adapter-specific means for the contract tests that need them; a test whose hook is missing is skipped. */
interface ContractHooks {
  /**
   * Makes the adapter's commits fail until the returned function is called (e.g. another
   * connection holding the write lock, with the store's lock timeout short).
   */
  readonly blockCommits?: () => Promise<() => Promise<void>>;
}

/**
 * The Store contract, for any adapter. `open` must open the same database every time it is
 * called within one test (tests reopen it to check durability), and that database must be empty
 * at the start of each test: give it a fresh one in a `beforeEach`.
 */
function storeContract(name: string, open: () => Promise<Store>, hooks: ContractHooks = {}): void {
  describe(`Store contract: ${name}`, () => {
    const opened: Store[] = [];
    const openStore = async (): Promise<Store> => {
      const store = await open();
      opened.push(store);
      return store;
    };
    afterEach(async () => {
      await Promise.allSettled(opened.splice(0).map((s) => s.close()));
    });

    it('tells whether a payee row exists under a tempId, once its save was made (where the adapter can)', async () => {
      const store = await openStore();
      if (!store.hasPayeeChannel) return; // optional: the browser's store holds no payee channels
      expect(await store.hasPayeeChannel('p')).toBe(false);
      const saved = store.savePayeeChannel('p', paid(1));
      expect(await store.hasPayeeChannel('p')).toBe(true); // waits for the save made before
      await saved;
      expect(await store.hasPayeeChannel('a')).toBe(false);
    });

    it('keeps payments saved apart from the state, and loads the newest of the two', async () => {
      let store = await openStore();
      if (openPayee.type !== 'Open') throw new Error('unreachable');
      await store.savePayeeChannel('p', paid(1000));
      const sig = Uint8Array.from({ length: 64 }, (_, i) => i);
      await Promise.all([store.savePayeePayment('p', 2000n, sig), store.savePayeePayment('p', 3000n, sig)]);
      await store.close();
      store = await openStore();
      expect(await store.loadPayeeChannels()).toEqual([{ tempId: 'p', state: { ...openPayee, paidSat: 3000n, signature: sig } }]);
      // A later state save with a higher total wins; an older payment row does not lower it.
      await store.savePayeeChannel('p', paid(5000));
      expect((await store.loadPayeeChannels())[0]!.state).toMatchObject({ paidSat: 5000n });
    });

    it('round-trips every payee and payer state of both variants, exactly, across a reopen', async () => {
      let store = await openStore();
      const payee = [...v1.payee, ...v2.payee];
      const payer = [...v1.payer, ...v2.payer];
      expect(new Set(payee.map((s) => s.type))).toEqual(new Set(['AwaitingConfirmation', 'Open', 'Closing', 'Closed']));
      expect(new Set(payer.map((s) => s.type))).toEqual(new Set(['Proposed', 'Funding', 'AwaitingRefundSignature', 'AwaitingOpen', 'Open', 'Closed']));
      // One row per state (key = index), so every state is read back, not only the last.
      await Promise.all([...payee.map((s, i) => store.savePayeeChannel(`e${i}`, s)), ...payer.map((s, i) => store.savePayerChannel(`r${i}`, s))]);
      await store.close();
      store = await openStore();
      const loadedPayee = await store.loadPayeeChannels();
      const loadedPayer = await store.loadPayerChannels();
      expect(loadedPayee).toEqual(payee.map((state, i) => ({ tempId: `e${i}`, state })));
      expect(loadedPayer).toEqual(payer.map((state, i) => ({ tempId: `r${i}`, state })));
      // toEqual tells 1n from 1; check the byte fields come back as bytes, not hex strings.
      const closing = loadedPayee.find((c) => c.state.type === 'Closing')!.state;
      if (closing.type !== 'Closing') throw new Error('unreachable');
      expect(closing.signature).toBeInstanceOf(Uint8Array);
      expect(closing.channel.witnessScript).toBeInstanceOf(Uint8Array);
      expect(typeof closing.close.feeSat).toBe('bigint');
    });

    it('keeps one row per channel holding its newest state (last write wins)', async () => {
      const store = await openStore();
      const a = store.savePayeeChannel('a', paid(1));
      const b = store.savePayeeChannel('a', paid(2)); // same turn, same batch
      await nextTurn();
      const c = store.savePayeeChannel('a', paid(3)); // a later batch
      await Promise.all([a, b, c]);
      await store.savePayeeChannel('a', paid(4));
      const loaded = await store.loadPayeeChannels();
      expect(loaded.map((r) => [r.tempId, paidOf(r.state)])).toEqual([['a', 4n]]);
    });

    it('loads channels in first-save order; updating a channel does not move it', async () => {
      let store = await openStore();
      await Promise.all([store.savePayeeChannel('c', paid(1)), store.savePayeeChannel('a', paid(1))]);
      await store.savePayeeChannel('b', paid(1));
      await Promise.all([store.savePayeeChannel('a', paid(2)), store.savePayeeChannel('d', paid(1)), store.savePayeeChannel('c', paid(2))]);
      await store.savePayerChannel('z', v1.payer[0]!);
      await store.savePayerChannel('y', v1.payer[1]!);
      await store.savePayerChannel('z', v1.payer[2]!);
      const expectOrder = async (s: Store): Promise<void> => {
        expect((await s.loadPayeeChannels()).map((r) => `${r.tempId}${paidOf(r.state)}`)).toEqual(['c2', 'a2', 'b1', 'd1']);
        expect((await s.loadPayerChannels()).map((r) => r.tempId)).toEqual(['z', 'y']);
      };
      await expectOrder(store);
      await store.close();
      store = await openStore();
      await expectOrder(store);
    });

    it('keeps payee and payer channels apart', async () => {
      const store = await openStore();
      await Promise.all([store.savePayeeChannel('same', v2.payee[0]!), store.savePayerChannel('same', v2.payer[0]!)]);
      expect(await store.loadPayeeChannels()).toEqual([{ tempId: 'same', state: v2.payee[0] }]);
      expect(await store.loadPayerChannels()).toEqual([{ tempId: 'same', state: v2.payer[0] }]);
    });

    it('stores meta values durably, newest wins', async () => {
      let store = await openStore();
      expect(await store.getMeta('missing')).toBeUndefined();
      await Promise.all([store.putMeta('k', 'one'), store.putMeta('empty', ''), store.putMeta('unicode', 'ünï ✓ 𝔹')]);
      await store.putMeta('k', 'two');
      await store.close();
      store = await openStore();
      expect(await store.getMeta('k')).toBe('two');
      expect(await store.getMeta('empty')).toBe('');
      expect(await store.getMeta('unicode')).toBe('ünï ✓ 𝔹');
    });

    it('hands out counter values 0, 1, 2, ... that never repeat, even across a reopen', async () => {
      let store = await openStore();
      expect([await store.nextCounter('keys'), await store.nextCounter('keys')]).toEqual([0, 1]);
      const concurrent = await Promise.all(Array.from({ length: 50 }, () => store.nextCounter('keys')));
      expect([...concurrent].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i + 2));
      expect(await store.nextCounter('other')).toBe(0);
      await store.close();
      store = await openStore();
      expect(await store.nextCounter('keys')).toBe(52);
      expect(await store.nextCounter('other')).toBe(1);
    });

    it('resolves saves in call order, across keys and kinds', async () => {
      const store = await openStore();
      const order: number[] = [];
      const calls: Promise<unknown>[] = [];
      for (let i = 0; i < 30; i++) {
        const call = [() => store.savePayeeChannel(`k${i % 4}`, paid(i)), () => store.putMeta(`m${i % 3}`, String(i)), () => store.nextCounter('n'), () => store.savePayerChannel(`p${i % 2}`, v2.payer[i % v2.payer.length]!)][i % 4]!;
        calls.push(call().then(() => void order.push(i)));
        if (i % 7 === 0) await nextTurn(); // spread the calls over several batches
      }
      await Promise.all(calls);
      expect(order).toEqual(Array.from({ length: 30 }, (_, i) => i));
    });

    it('commits pending saves on close', async () => {
      let store = await openStore();
      const saves = [store.savePayeeChannel('x', paid(7)), store.putMeta('x', 'y')];
      await store.close();
      await Promise.all(saves);
      store = await openStore();
      expect((await store.loadPayeeChannels()).map((r) => paidOf(r.state))).toEqual([7n]);
      expect(await store.getMeta('x')).toBe('y');
    });
    it('round-trips duplex records exactly, in first-save order, newest version per tempId', async () => {
      let store = await openStore();
      await store.saveDuplexRecords([duplexRecord('d2', 1n)]);
      await store.saveDuplexRecords([duplexRecord('d1', 1n, 'aa:0'), duplexRecord('d3', 1n)]);
      await store.saveDuplexRecords([duplexRecord('d2', 7n, 'bb:1')]); // an update does not move it
      await store.close();
      store = await openStore();
      const loaded = await store.loadDuplexRecords();
      expect(loaded.map(paidOfRecord)).toEqual(['d27', 'd11', 'd31']);
      expect(loaded[0]).toEqual(duplexRecord('d2', 7n, 'bb:1'));
      const first = loaded[0];
      if (first?.type !== 'Open') throw new Error('not an open channel');
      expect(first.current.sigA).toBeInstanceOf(Uint8Array);
      expect(typeof first.terms.contributionASat).toBe('bigint');
    });

    it('saves several duplex records and meta values in one call, all of them or none', async () => {
      let store = await openStore();
      // A rollover: the ended channel and its successor together.
      await store.saveDuplexRecords([duplexRecord('old', 5n, 'aa:0'), duplexRecord('new', 0n)], new Map([['wallet', 'w1']]));
      const cyclic = duplexRecord('bad', 1n) as DuplexChannelState & { self?: unknown };
      cyclic.self = cyclic;
      await expect(store.saveDuplexRecords([duplexRecord('x', 1n), cyclic])).rejects.toThrow(TypeError);
      await expect(store.saveDuplexRecords([duplexRecord('y', 1n)], new Map([['', 'v']]))).rejects.toThrow(TypeError);
      await expect(store.saveDuplexRecords([{ ...duplexRecord('z', 1n), tempId: '' }])).rejects.toThrow(TypeError);
      await store.close();
      store = await openStore();
      expect((await store.loadDuplexRecords()).map((r) => r.tempId)).toEqual(['old', 'new']);
      expect(await store.getMeta('wallet')).toBe('w1');
    });

    it('deletes a duplex record, ordered with the saves around it', async () => {
      let store = await openStore();
      await store.saveDuplexRecords([duplexRecord('a', 1n), duplexRecord('b', 1n)]);
      const calls = [store.deleteDuplexRecord('a'), store.saveDuplexRecords([duplexRecord('c', 1n)]), store.deleteDuplexRecord('c'), store.saveDuplexRecords([duplexRecord('c', 2n)])];
      await Promise.all(calls);
      await store.deleteDuplexRecord('missing'); // nothing to delete is no error
      await expect(store.deleteDuplexRecord('')).rejects.toThrow(TypeError);
      await store.close();
      store = await openStore();
      expect((await store.loadDuplexRecords()).map(paidOfRecord)).toEqual(['b1', 'c2']);
    });

    it('rejects every call after close with STORE_CLOSED; close twice is harmless', async () => {
      const store = await openStore();
      await store.close();
      await store.close();
      const sig = new Uint8Array(64);
      const calls: (() => Promise<unknown>)[] = [
        () => store.savePayeeChannel('a', paid(1)),
        () => store.savePayeePayment('a', 1n, sig),
        () => store.savePayerChannel('a', v2.payer[0]!),
        () => store.savePayerPayment('a', 1n, sig),
        () => store.saveDuplexRecords([duplexRecord('a', 1n)]),
        () => store.deleteDuplexRecord('a'),
        () => store.putMeta('a', 'b'),
        () => store.getMeta('a'),
        () => store.nextCounter('a'),
        () => store.loadPayeeChannels(),
        () => store.loadPayerChannels(),
        () => store.loadDuplexRecords(),
      ];
      for (const call of calls) await expect(call()).rejects.toThrow(/STORE_CLOSED/);
    });

    it('refuses bad arguments with a TypeError, writing nothing', async () => {
      const store = await openStore();
      await expect(store.savePayeeChannel('', paid(1))).rejects.toThrow(TypeError);
      await expect(store.savePayeeChannel('a', {} as PayeeState)).rejects.toThrow(/must be a channel state/);
      await expect(store.savePayeePayment('a', 1n, new Uint8Array(63))).rejects.toThrow(TypeError);
      await expect(store.putMeta('', 'v')).rejects.toThrow(TypeError);
      await expect(store.putMeta('k', 5 as unknown as string)).rejects.toThrow(TypeError);
      await expect(store.nextCounter('')).rejects.toThrow(TypeError);
      const cyclic = { ...paid(1) } as Record<string, unknown>;
      cyclic.self = cyclic;
      await expect(store.savePayeeChannel('bad', cyclic as unknown as PayeeState)).rejects.toThrow(/savePayeeChannel\(bad\): the state cannot be encoded/);
      expect(await store.loadPayeeChannels()).toEqual([]);
      expect(await store.getMeta('k')).toBeUndefined();
      expect(await store.nextCounter('n')).toBe(0);
    });

    it.skipIf(hooks.blockCommits === undefined)('rejects every save of a batch whose commit fails, stores none of them, and carries on', async () => {
      const store = await openStore();
      await Promise.all([store.savePayeeChannel('a', paid(1)), store.putMeta('m', 'old')]);
      const release = await hooks.blockCommits!();
      const results = await Promise.allSettled([store.savePayeeChannel('a', paid(2)), store.savePayeeChannel('b', paid(1)), store.putMeta('m', 'new'), store.nextCounter('n'), store.saveDuplexRecords([duplexRecord('d', 1n)])]);
      await release();
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected', 'rejected']);
      expect(await store.loadDuplexRecords()).toEqual([]);
      expect((await store.loadPayeeChannels()).map((r) => [r.tempId, paidOf(r.state)])).toEqual([['a', 1n]]);
      expect(await store.getMeta('m')).toBe('old');
      // The next batch commits, and the counter value of the failed batch was not used up.
      expect(await store.nextCounter('n')).toBe(0);
      await store.savePayeeChannel('b', paid(3));
      expect((await store.loadPayeeChannels()).map((r) => r.tempId)).toEqual(['a', 'b']);
    });
  });
}

// ---------------------------------------------------------------------------------------------

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-store-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let files = 0;
const freshFile = (): string => path.join(tmp, `store-${++files}.db`);
const modeOf = (file: string): number => fs.statSync(file).mode & 0o777;

describe('SQLite', () => {
  let file: string;
  beforeEach(() => {
    file = freshFile();
  });
  storeContract('SqliteStore', () => Promise.resolve(openSqliteStore(file, { busyTimeoutMs: 50 })), {
    blockCommits: () => {
      const lock = new Database(file);
      lock.exec('BEGIN IMMEDIATE');
      return Promise.resolve(() => {
        lock.exec('ROLLBACK');
        lock.close();
        return Promise.resolve();
      });
    },
  });
});

describe('memory', () => {
  let db: MemoryDatabase;
  beforeEach(() => {
    db = new MemoryDatabase();
  });
  storeContract('MemoryStore', () => Promise.resolve(new MemoryStore(db)));
});

describe('IndexedDB in Chromium', () => {
  // The page's store behind a proxy (test/helpers/browser-store.ts): the same suite, in a real browser.
  let browser: BrowserStores;
  let name: string;
  let dbs = 0;
  beforeAll(async () => {
    browser = await startBrowserStores();
  });
  afterAll(() => browser?.close());
  beforeEach(() => {
    name = `contract-${++dbs}`;
  });
  storeContract('IndexedDbStore', () => browser.open(name));
});

describe.skipIf(POSTGRES_UNAVAILABLE !== undefined)(`PostgreSQL${POSTGRES_UNAVAILABLE ? ` (skipped: ${POSTGRES_UNAVAILABLE})` : ''}`, () => {
  let server: PostgresServer;
  let url: string;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(() => server?.stop());
  beforeEach(async () => {
    url = await server.createDatabase(); // a fresh database per test: the contract's rule
  });
  // Through open-store's table, as `--db postgres://…` opens it. Payee writes on PostgreSQL are
  // fenced by channel leases (docs/scale.md): this "instance" takes the leases of every payee
  // tempId the contract writes, as an instance does for the channels it serves.
  const contractTempIds = ['p', 'a', 'b', 'c', 'd', 'x', 'same', 'bad', ...Array.from({ length: 64 }, (_, i) => `e${i}`), ...Array.from({ length: 8 }, (_, i) => `k${i}`)];
  const openContractStore = async (): Promise<Store> => {
    const store = openStore(url, { owner: 'contract' }) as PostgresStore;
    await store.leases.acquire(contractTempIds).catch(() => undefined); // a closed server: the contract's own check
    return store;
  };
  storeContract('PostgresStore', openContractStore, {
    blockCommits: async () => {
      // Another session holds every table's lock; the store's commits wait lock_timeout (5 s), then fail.
      const pg = (await import('pg')).default;
      const lock = new pg.Client({ connectionString: url });
      await lock.connect();
      await lock.query('BEGIN');
      await lock.query('LOCK TABLE payee_channels, payee_payments, payer_channels, meta, counters, duplex_records IN ACCESS EXCLUSIVE MODE');
      return async () => {
        await lock.query('ROLLBACK');
        await lock.end();
      };
    },
  });

  it('refuses a database whose schema a newer paychan wrote', async () => {
    const first = openStore(url) as PostgresStore;
    await first.ready();
    await first.close();
    const pg = (await import('pg')).default;
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(`INSERT INTO paychan_schema (version, description) VALUES (999, 'future')`);
    await c.end();
    const newer = openStore(url) as PostgresStore;
    await expect(newer.ready()).rejects.toThrow(/SCHEMA_TOO_NEW/);
    await expect(newer.loadPayeeChannels()).rejects.toThrow(/SCHEMA_TOO_NEW/);
    await newer.close();
  });

  it('commits the payments of many channels in few transactions (group commit)', async () => {
    const store = openStore(url) as PostgresStore;
    await store.leases.acquire(Array.from({ length: 200 }, (_, i) => `c${i}`));
    const sig = new Uint8Array(64).fill(9);
    await Promise.all(Array.from({ length: 200 }, (_, i) => store.savePayeeChannel(`c${i}`, paid(1))));
    const before = store.stats().commits;
    await Promise.all(Array.from({ length: 2000 }, (_, i) => store.savePayeePayment(`c${i % 200}`, BigInt(2 + i), sig)));
    const commits = store.stats().commits - before;
    expect(commits).toBeGreaterThanOrEqual(1);
    expect(commits).toBeLessThan(20);
    const loaded = await store.loadPayeeChannels();
    expect(loaded).toHaveLength(200);
    expect(paidOf(loaded[199]!.state)).toBe(2001n);
    await store.close();
  });

  it('fails a commit on a server that stops answering (the driver\'s read timeout), and commits again on a new connection once it answers', async () => {
    // A TCP relay to the server that can stop forwarding, as a black-holed primary: the server
    // never sees the statement, so only the client can give up on it.
    const relay = await stallingRelay(server.port);
    try {
      const relayed = new URL(url);
      relayed.port = String(relay.port);
      const log: string[] = [];
      const store = openPostgresStore(relayed.toString(), { owner: 'stalled', statementTimeoutMs: 300, log: (l) => log.push(l) });
      await store.leases.acquire(['p']);
      await store.savePayeeChannel('p', paid(1));
      relay.stall();
      await expect(store.savePayeeChannel('p', paid(2))).rejects.toMatchObject({ code: 'COMMIT_FAILED' });
      expect(log.join('\n')).toMatch(/timeout/i);
      relay.resume();
      await store.savePayeeChannel('p', paid(3));
      expect(paidOf((await store.loadPayeeChannels())[0]!.state)).toBe(3n);
      await store.close();
    } finally {
      relay.close();
    }
  });

  it('fails a statement that runs past statementTimeoutMs (the server\'s statement_timeout)', async () => {
    const store = openPostgresStore(url, { owner: 'slow', statementTimeoutMs: 300, lockTimeoutMs: 600_000 });
    await store.leases.acquire(['p']);
    await store.savePayeeChannel('p', paid(1));
    const pg = (await import('pg')).default;
    const lock = new pg.Client({ connectionString: url });
    await lock.connect();
    try {
      await lock.query('BEGIN');
      await lock.query('LOCK TABLE payee_channels IN ACCESS EXCLUSIVE MODE');
      // The lock wait alone would last 10 minutes: the statement's own bound ends it.
      await expect(store.savePayeeChannel('p', paid(2))).rejects.toMatchObject({ code: 'COMMIT_FAILED', message: expect.stringMatching(/statement timeout/) });
    } finally {
      await lock.query('ROLLBACK');
      await lock.end();
    }
    await store.savePayeeChannel('p', paid(3));
    expect(paidOf((await store.loadPayeeChannels())[0]!.state)).toBe(3n);
    await store.close();
  });

  it('refuses a statementTimeoutMs out of range', () => {
    expect(() => openPostgresStore(url, { statementTimeoutMs: 0 })).toThrow(/statementTimeoutMs/);
  });

  describe('channel leases (several instances, one writer per channel)', () => {
    const sig = new Uint8Array(64).fill(3);
    const instance = (owner: string, leaseMs = 400): PostgresStore => openStore(`${url}?paychan_lease_ms=${leaseMs}`, { owner }) as PostgresStore;

    it('refuses a payee write without the lease, storing nothing', async () => {
      const a = instance('a');
      await expect(a.savePayeeChannel('ch', paid(1))).rejects.toMatchObject({ code: 'FENCED' });
      await expect(a.savePayeePayment('ch', 5n, sig)).rejects.toMatchObject({ code: 'FENCED' });
      expect(await a.loadPayeeChannels()).toEqual([]);
      await a.close();
    });

    it('fences off the former holder once another instance takes an expired lease', async () => {
      const a = instance('a');
      const b = instance('b');
      const lostByA: string[] = [];
      a.leases.onLost((t) => lostByA.push(t));
      expect(await a.leases.acquire(['ch'])).toEqual(new Set(['ch']));
      await a.savePayeeChannel('ch', paid(10));
      await a.savePayeePayment('ch', 11n, sig);
      // Held and renewed by a: b cannot take it.
      expect(await b.leases.acquire(['ch'])).toEqual(new Set());
      await expect(b.savePayeePayment('ch', 99n, sig)).rejects.toMatchObject({ code: 'FENCED' });
      // a stops renewing (as a paused process does); b takes the lease once it expired.
      a.leases.close();
      expect(await b.leases.acquireWaiting('ch', 5_000)).toBe(true);
      const loaded = await b.loadPayeeChannel!('ch');
      expect(paidOf(loaded!.state)).toBe(11n); // b sees every write a committed before the takeover
      // a still believes it holds the channel: its writes are refused by the token, not stored.
      expect(a.leases.holds('ch')).toBe(true);
      await expect(a.savePayeePayment('ch', 12n, sig)).rejects.toMatchObject({ code: 'FENCED' });
      expect(lostByA).toEqual(['ch']);
      expect(a.leases.holds('ch')).toBe(false);
      await expect(a.savePayeeChannel('ch', paid(13))).rejects.toMatchObject({ code: 'FENCED' });
      expect(a.stats().fencedWrites).toBe(1);
      await b.savePayeePayment('ch', 14n, sig);
      expect(paidOf((await b.loadPayeeChannels())[0]!.state)).toBe(14n);
      await Promise.all([a.close(), b.close()]);
    });

    it('lets the writes of other channels in a fenced write\'s batch commit', async () => {
      const a = instance('a');
      const b = instance('b');
      await a.leases.acquire(['x1', 'x2']);
      await Promise.all([a.savePayeeChannel('x1', paid(1)), a.savePayeeChannel('x2', paid(1))]);
      a.leases.close();
      expect(await b.leases.acquireWaiting('x1', 5_000)).toBe(true);
      const results = await Promise.allSettled([a.savePayeePayment('x1', 2n, sig), a.savePayeePayment('x2', 2n, sig)]);
      expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled']);
      const byId = new Map((await b.loadPayeeChannels()).map((c) => [c.tempId, paidOf(c.state)]));
      expect(byId).toEqual(new Map([['x1', 1n], ['x2', 2n]]));
      await Promise.all([a.close(), b.close()]);
    });

    it('gives its leases up on close: another instance takes them at once', async () => {
      const a = instance('a', 60_000);
      const b = instance('b', 60_000);
      await a.leases.acquire(['r1']);
      await a.savePayeeChannel('r1', paid(1));
      expect(await b.leases.acquire(['r1'])).toEqual(new Set());
      await a.close();
      expect(await b.leases.acquire(['r1'])).toEqual(new Set(['r1']));
      await b.close();
    });

    it('finds the lease lost at renewal, and lists channels nobody holds as orphans', async () => {
      const a = instance('a');
      const b = instance('b');
      await a.leases.acquire(['o1', 'o2']);
      await Promise.all([a.savePayeeChannel('o1', paid(1)), a.savePayeeChannel('o2', paid(1))]);
      expect(await b.leases.orphans(10)).toEqual([]);
      await a.leases.release('o2');
      expect(await b.leases.orphans(10)).toEqual(['o2']);
      const lost: string[] = [];
      a.leases.onLost((t) => lost.push(t));
      a.leases.close();
      expect(await b.leases.acquireWaiting('o1', 5_000)).toBe(true);
      await a.leases.renew();
      expect(lost).toEqual(['o1']);
      // A restarted instance (same owner) takes its own lease back at once, with a new token.
      const b2 = instance('b');
      expect(await b2.leases.acquire(['o1'])).toEqual(new Set(['o1']));
      await expect(b.savePayeePayment('o1', 5n, sig)).rejects.toMatchObject({ code: 'FENCED' });
      await Promise.all([a.close(), b.close(), b2.close()]);
    });
  });
});

describe('SqliteStore', () => {
  let file: string;
  const opened: SqliteStore[] = [];
  const open = (options?: SqliteStoreOptions): SqliteStore => {
    const store = openSqliteStore(file, options);
    opened.push(store);
    return store;
  };
  /** A second connection, as an operator's sqlite3 shell would have. */
  const operator = (): Database.Database => new Database(file);
  beforeEach(() => {
    file = freshFile();
  });
  afterEach(async () => {
    await Promise.allSettled(opened.splice(0).map((s) => s.close()));
  });

  describe('group commit', () => {
    it('commits 10,000 saves made in one turn in one transaction', async () => {
      const store = open();
      const before = store.stats();
      await Promise.all(Array.from({ length: 10_000 }, (_, i) => store.savePayeeChannel(`c${i}`, paid(i))));
      const after = store.stats();
      expect(after.commits - before.commits).toBe(1);
      expect(after.rows - before.rows).toBe(10_000);
      expect(after.requests - before.requests).toBe(10_000);
      const loaded = await store.loadPayeeChannels();
      expect(loaded).toHaveLength(10_000);
      expect(loaded[9_999]).toEqual({ tempId: 'c9999', state: paid(9_999) });
    });

    it('writes saves of one key in one batch as one row', async () => {
      const store = open();
      await Promise.all(Array.from({ length: 1000 }, (_, i) => store.savePayeeChannel(`c${i % 10}`, paid(i))));
      expect(store.stats()).toMatchObject({ commits: 1, rows: 10, requests: 1000 });
      expect((await store.loadPayeeChannels()).map((r) => paidOf(r.state))).toEqual(Array.from({ length: 10 }, (_, i) => BigInt(990 + i)));
    });

    it('commits saves awaited one by one in one transaction each', async () => {
      const store = open();
      for (let i = 0; i < 5; i++) await store.putMeta('k', String(i));
      expect(store.stats()).toMatchObject({ commits: 5, rows: 5 });
    });

    it('holds a batch open for groupCommitMaxDelayMs to gather saves from later turns', async () => {
      // The batch's timer is faked, so "later turns" are before it fires however slow the machine.
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      try {
        const store = open({ groupCommitMaxDelayMs: 30 });
        const saves = [store.putMeta('a', '1')];
        await nextTurn();
        saves.push(store.putMeta('b', '1'));
        await nextTurn();
        saves.push(store.savePayeeChannel('c', paid(1)));
        expect(store.stats()).toMatchObject({ commits: 0 });
        vi.advanceTimersByTime(30);
        await Promise.all(saves);
        expect(store.stats()).toMatchObject({ commits: 1, rows: 3 });
      } finally {
        vi.useRealTimers();
      }
    });

    it('commits a batch still held open by groupCommitMaxDelayMs on close, without waiting for its timer', async () => {
      // The batch's timer never fires here (fake timers that nobody advances): close must commit
      // the batch itself, so both promises settle and the save is durable.
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      try {
        const store = open({ groupCommitMaxDelayMs: 60_000 });
        const save = store.putMeta('k', 'v');
        await store.close();
        await save;
        expect(store.stats()).toMatchObject({ commits: 1, rows: 1 });
      } finally {
        vi.useRealTimers();
      }
      expect(await open().getMeta('k')).toBe('v');
    });

    it('lets reads wait for saves already made, so they see them', async () => {
      const store = open();
      void store.savePayeeChannel('a', paid(5));
      void store.putMeta('m', 'v');
      expect(await store.getMeta('m')).toBe('v');
      expect((await store.loadPayeeChannels()).map((r) => paidOf(r.state))).toEqual([5n]);
    });
  });

  describe('failures', () => {
    it('names the call in STORE_CLOSED, and refuses pragmas after close', async () => {
      const store = open();
      await store.close();
      await expect(store.savePayeeChannel('a', paid(1))).rejects.toThrow(/STORE_CLOSED: savePayeeChannel: the store is closed/);
      expect(() => store.pragmas()).toThrow(/STORE_CLOSED/);
    });

    it('reports a failed commit with COMMIT_FAILED and the driver error, and counts it', async () => {
      const store = open({ busyTimeoutMs: 20 });
      const lock = operator();
      lock.exec('BEGIN IMMEDIATE'); // holds the write lock: the store's next BEGIN IMMEDIATE fails
      const results = await Promise.allSettled([store.putMeta('a', '1'), store.putMeta('b', '1'), store.nextCounter('n')]);
      lock.exec('ROLLBACK');
      lock.close();
      for (const r of results) expect(isStoreError(r.status === 'rejected' ? r.reason : null, 'COMMIT_FAILED')).toBe(true);
      const reason = (results[0] as PromiseRejectedResult).reason as Error;
      expect(reason.message).toBe('COMMIT_FAILED: 3 rows: database is locked');
      expect(reason.cause).toMatchObject({ code: 'SQLITE_BUSY' });
      expect(store.stats()).toMatchObject({ commits: 0, failedCommits: 1 });
    });

    it('rejects close when the last batch cannot be committed, and closes anyway', async () => {
      const log: string[] = [];
      const store = open({ busyTimeoutMs: 20, log: (line) => log.push(line) });
      const lock = operator();
      lock.exec('BEGIN IMMEDIATE');
      const save = expect(store.putMeta('k', 'v')).rejects.toThrow(/COMMIT_FAILED/); // handled from the start
      await expect(store.close()).rejects.toThrow(/COMMIT_FAILED/);
      await save;
      lock.exec('ROLLBACK');
      lock.close();
      expect(log.some((l) => l.includes('COMMIT_FAILED'))).toBe(true);
      await expect(store.getMeta('k')).rejects.toThrow(/STORE_CLOSED/);
      const reopened = open();
      expect(await reopened.getMeta('k')).toBeUndefined();
    });

    it('rejects a state the codec cannot encode on its own, without failing the batch', async () => {
      const store = open();
      const cyclic = { ...paid(1) } as Record<string, unknown>;
      cyclic.self = cyclic;
      const good = store.savePayeeChannel('good', paid(1));
      const bad = store.savePayeeChannel('bad', cyclic as unknown as PayeeState);
      await expect(bad).rejects.toThrow(TypeError);
      await expect(bad).rejects.toThrow(/savePayeeChannel\(bad\): the state cannot be encoded/);
      await good;
      expect((await store.loadPayeeChannels()).map((r) => r.tempId)).toEqual(['good']);
    });

    it('refuses bad arguments and options', async () => {
      const store = open();
      await expect(store.savePayeeChannel('', paid(1))).rejects.toThrow(TypeError);
      await expect(store.savePayeeChannel('a', {} as PayeeState)).rejects.toThrow(/must be a channel state/);
      await expect(store.putMeta('', 'v')).rejects.toThrow(TypeError);
      await expect(store.putMeta('k', 5 as unknown as string)).rejects.toThrow(TypeError);
      await expect(store.nextCounter('')).rejects.toThrow(TypeError);
      expect(store.stats().requests).toBe(0);
      expect(() => openSqliteStore(file, { groupCommitMaxDelayMs: -1 })).toThrow(RangeError);
      expect(() => openSqliteStore(file, { busyTimeoutMs: 1.5 })).toThrow(RangeError);
      expect(() => openSqliteStore('')).toThrow(TypeError);
    });

    it('names the row when a stored state cannot be decoded', async () => {
      const store = open();
      await store.savePayeeChannel('broken', paid(1));
      const db = operator();
      db.prepare("UPDATE payee_channels SET state = '{\"$n\":\"x\"}' WHERE temp_id = 'broken'").run();
      db.close();
      await expect(store.loadPayeeChannels()).rejects.toThrow(/CORRUPT_ROW: payee_channels broken/);
    });
  });

  describe('schema and settings', () => {
    it('creates the schema at the newest version, with numbered migrations', () => {
      expect(MIGRATIONS.map((m) => m.version)).toEqual(Array.from({ length: MIGRATIONS.length }, (_, i) => i + 1));
      const log: string[] = [];
      open({ log: (line) => log.push(line) });
      expect(log).toEqual([`store ${file}: schema version 0 -> ${SCHEMA_VERSION}`]);
      const db = operator();
      expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").pluck().all();
      expect(tables).toEqual(['counters', 'duplex_records', 'meta', 'payee_channels', 'payee_payments', 'payer_channels', 'payer_payments']);
      const indexes = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL ORDER BY name").pluck().all();
      expect(indexes).toEqual(['duplex_records_channel_id', 'payee_channels_channel_id', 'payer_channels_channel_id']);
      db.close();
    });

    it('drops the unfunded proposals an older paychan stored, and keeps every channel', async () => {
      const store = open();
      const channel = v1.payee.find((s) => s.type === 'Open')!;
      await store.savePayeeChannel('channel', channel);
      await store.close();
      // As paychan wrote them before opening cookies (schema 3): a proposal row of each kind.
      const db = operator();
      const insert = db.prepare("INSERT INTO payee_channels (temp_id, seq, state, updated_at, channel_id, state_type, paid_sat) VALUES (?, ?, '{}', 0, NULL, ?, NULL)");
      ['AwaitingRefundRequest', 'AwaitingFunding', 'Abandoned'].forEach((type, i) => insert.run(`old${i}`, 10 + i, type));
      db.exec('DROP TABLE duplex_records'); // not in schema 3 (migration 5)
      db.pragma('user_version = 3');
      db.close();
      const upgraded = open();
      expect(await upgraded.loadPayeeChannels()).toEqual([{ tempId: 'channel', state: channel }]);
    });

    it('reopens without migrating again', () => {
      open();
      const log: string[] = [];
      open({ log: (line) => log.push(line) });
      expect(log).toEqual([]);
    });

    it('refuses a database written by a newer schema, leaving it untouched', async () => {
      await open().close();
      const db = operator();
      db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
      db.close();
      let error: unknown;
      try {
        openSqliteStore(file);
      } catch (err) {
        error = err;
      }
      expect(isStoreError(error, 'SCHEMA_TOO_NEW')).toBe(true);
      expect(String(error)).toMatch(`has schema version ${SCHEMA_VERSION + 1}; this paychan knows up to ${SCHEMA_VERSION}`);
      const check = operator();
      expect(check.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION + 1);
      check.close();
    });

    it('runs in WAL mode with synchronous=NORMAL (the store syncs the WAL itself), foreign keys and a busy timeout', () => {
      const store = open({ busyTimeoutMs: 1234 });
      expect(store.pragmas()).toEqual({ journalMode: 'wal', synchronous: 1, foreignKeys: true, busyTimeoutMs: 1234 });
      const db = operator();
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal'); // WAL is a property of the file
      db.close();
    });

    it('works in memory, for tests', async () => {
      const store = openSqliteStore(':memory:');
      await store.savePayeeChannel('a', paid(1));
      expect(await store.loadPayeeChannels()).toEqual([{ tempId: 'a', state: paid(1) }]);
      expect(await store.nextCounter('n')).toBe(0);
      await store.close();
    });

    it('copies what an operator queries into columns: channel id, state type, amounts', async () => {
      const store = open();
      const awaiting = v1.payee.find((s) => s.type === 'AwaitingConfirmation')!;
      const payerOpen = v2.payer.filter((s) => s.type === 'Open').at(-1)!;
      await Promise.all([store.savePayeeChannel('open', paid(2n ** 64n)), store.savePayeeChannel('new', awaiting), store.savePayerChannel('p', payerOpen), store.savePayerChannel('q', v2.payer[0]!)]);
      const db = operator();
      const payee = db.prepare('SELECT temp_id, channel_id, state_type, paid_sat FROM payee_channels ORDER BY seq').all();
      const payer = db.prepare('SELECT temp_id, channel_id, state_type, acked_sat FROM payer_channels ORDER BY seq').all();
      const plan = db.prepare('EXPLAIN QUERY PLAN SELECT temp_id FROM payee_channels WHERE channel_id = ?').all('x') as { detail: string }[];
      db.close();
      if (!('channel' in openPayee) || payerOpen.type !== 'Open') throw new Error('unreachable');
      expect(payee).toEqual([
        { temp_id: 'open', channel_id: openPayee.channel.id, state_type: 'Open', paid_sat: '18446744073709551616' },
        { temp_id: 'new', channel_id: awaiting.channel.id, state_type: 'AwaitingConfirmation', paid_sat: null },
      ]);
      expect(payer).toEqual([
        { temp_id: 'p', channel_id: payerOpen.channel.id, state_type: 'Open', acked_sat: payerOpen.ackedTotalSat.toString() },
        { temp_id: 'q', channel_id: null, state_type: 'Proposed', acked_sat: null },
      ]);
      expect(plan.map((p) => p.detail).join()).toMatch(/USING INDEX payee_channels_channel_id/);
    });
  });

  describe('duplex records', () => {
    it('copies the channel id into an indexed column, the record opaque beside it', async () => {
      const store = open();
      await store.saveDuplexRecords([duplexRecord('t1', 1n, 'ab:1'), openingRecord('t2')]);
      const db = operator();
      const rows = db.prepare('SELECT temp_id, channel_id FROM duplex_records ORDER BY seq').all();
      const plan = db.prepare('EXPLAIN QUERY PLAN SELECT temp_id FROM duplex_records WHERE channel_id = ?').all('x') as { detail: string }[];
      db.close();
      expect(rows).toEqual([
        { temp_id: 't1', channel_id: 'ab:1' },
        { temp_id: 't2', channel_id: null },
      ]);
      expect(plan.map((p) => p.detail).join()).toMatch(/USING INDEX duplex_records_channel_id/);
    });

    it('names the row when a stored record cannot be decoded', async () => {
      const store = open();
      await store.saveDuplexRecords([duplexRecord('broken', 1n)]);
      const db = operator();
      db.prepare("UPDATE duplex_records SET record = '{\"tempId\":\"other\"}' WHERE temp_id = 'broken'").run();
      db.close();
      await expect(store.loadDuplexRecords()).rejects.toThrow(/CORRUPT_ROW: duplex_records broken/);
    });

    it('adds the duplex table to a database of schema 4, keeping its channels', async () => {
      const store = open();
      await store.savePayeeChannel('channel', paid(3));
      await store.putMeta('wallet', 'w');
      await store.close();
      const db = operator();
      db.exec('DROP TABLE duplex_records');
      db.pragma('user_version = 4');
      db.close();
      const log: string[] = [];
      const upgraded = open({ log: (line) => log.push(line) });
      expect(log).toEqual([`store ${file}: schema version 4 -> ${SCHEMA_VERSION}`]);
      expect((await upgraded.loadPayeeChannels()).map((r) => paidOf(r.state))).toEqual([3n]);
      expect(await upgraded.getMeta('wallet')).toBe('w');
      await upgraded.saveDuplexRecords([duplexRecord('d', 1n)]);
      expect(await upgraded.loadDuplexRecords()).toEqual([duplexRecord('d', 1n)]);
    });
  });

  describe('file permissions', () => {
    it('creates the database, its WAL and shared-memory files with mode 0600', async () => {
      const store = open();
      await store.putMeta('k', 'v');
      expect(modeOf(file)).toBe(0o600);
      expect(modeOf(`${file}-wal`)).toBe(0o600);
      expect(modeOf(`${file}-shm`)).toBe(0o600);
    });

    it('creates 0600 whatever the umask', async () => {
      const old = process.umask(0);
      try {
        const store = open();
        await store.putMeta('k', 'v');
      } finally {
        process.umask(old);
      }
      expect(modeOf(file)).toBe(0o600);
      expect(modeOf(`${file}-wal`)).toBe(0o600);
    });

    it('warns about an existing database that others can read, and tightens stale -wal/-shm files', async () => {
      fs.writeFileSync(file, '', { mode: 0o644 });
      fs.chmodSync(file, 0o644);
      fs.writeFileSync(`${file}-wal`, '', { mode: 0o644 });
      fs.chmodSync(`${file}-wal`, 0o644);
      const log: string[] = [];
      const store = open({ log: (line) => log.push(line) });
      await store.putMeta('k', 'v');
      expect(log.some((l) => l.includes('mode 644 lets other users read channel states'))).toBe(true);
      expect(modeOf(file)).toBe(0o644); // the operator's file: warned about, not changed
      expect(modeOf(`${file}-wal`)).toBe(0o600);
    });
  });

  describe('crash', () => {
    const CHILD = fileURLToPath(new URL('../helpers/store-crash-child.ts', import.meta.url));
    const ROOT = fileURLToPath(new URL('../..', import.meta.url));

    /** Runs the writing child until it has printed `lines` acknowledgements, then SIGKILLs it. */
    async function runAndKill(lines: number): Promise<string[]> {
      const child = spawn(process.execPath, ['--import', 'tsx', CHILD, file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      let seen = 0;
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
        seen += chunk.split('\n').length - 1;
        if (seen >= lines) child.kill('SIGKILL');
      });
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
      const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
      expect({ code, signal, err }).toEqual({ code: null, signal: 'SIGKILL', err: '' });
      return out.split('\n').slice(0, -1); // the last piece is empty or a line cut by the kill
    }

    it('keeps every acknowledged save and counter value through SIGKILL of the writing process', async () => {
      const counterValues: number[] = [];
      for (const lines of [300, 1500, 4000]) {
        const printed = await runAndKill(lines);
        const lastAcked = new Map<string, number>();
        for (const line of printed) {
          const [kind, a, b] = line.split(' ');
          if (kind === 'w') lastAcked.set(`writer-${a}`, Number(b));
          else if (kind === 'c') counterValues.push(Number(a));
          else throw new Error(`unexpected line ${line}`);
        }
        expect(lastAcked.size).toBe(8);
        const store = open();
        const channels = new Map((await store.loadPayeeChannels()).map((r) => [r.tempId, paidOf(r.state)]));
        for (const [tempId, acked] of lastAcked) {
          const stored = channels.get(tempId) ?? -1n;
          // Durable on resolve: nothing acknowledged is lost (more may be stored, not yet printed).
          expect(stored).toBeGreaterThanOrEqual(BigInt(acked));
          // One batch, one transaction: the channel and the meta key saved with it agree.
          expect(await store.getMeta(tempId)).toBe(stored.toString());
        }
        await store.close();
      }
      expect(new Set(counterValues).size).toBe(counterValues.length); // never handed out twice
      const store = open();
      expect(await store.nextCounter('crash')).toBeGreaterThan(Math.max(...counterValues));
    });
  });
});

/** A TCP relay to 127.0.0.1:`port` that stops forwarding (both ways) while stalled, holding what arrives. */
async function stallingRelay(port: number): Promise<{ readonly port: number; stall(): void; resume(): void; close(): void }> {
  let stalled = false;
  const pipes = new Set<net.Socket>();
  const relay = net.createServer((inbound) => {
    const outbound = net.connect(port, '127.0.0.1');
    for (const [from, to] of [[inbound, outbound], [outbound, inbound]] as const) {
      pipes.add(from);
      from.on('data', (chunk) => {
        if (stalled) from.pause();
        to.write(chunk);
      });
      from.on('error', () => to.destroy());
      from.on('close', () => {
        pipes.delete(from);
        to.destroy();
      });
    }
  });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  return {
    port: (relay.address() as net.AddressInfo).port,
    stall: () => {
      stalled = true;
      for (const p of pipes) p.pause();
    },
    resume: () => {
      stalled = false;
      for (const p of pipes) p.resume();
    },
    close: () => {
      for (const p of pipes) p.destroy();
      relay.close();
    },
  };
}
