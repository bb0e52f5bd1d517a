/**
 * A {@link Store} in the browser's IndexedDB: the payer's state in a page, under the same contract
 * as SQLite's (src/store/store.ts), held to it by the same suite run in Chromium
 * (test/integration/store.test.ts, "IndexedDB in Chromium").
 *
 * - **Durable on resolve.** Every commit is a `readwrite` transaction with `durability: 'strict'`
 *   (the browser flushes to disk before `complete`; its default, `relaxed`, may report a commit
 *   that a power cut then loses), and a save resolves only on its transaction's `complete`.
 * - **Ordered, group commit.** Saves queue; one transaction is in flight at a time and takes every
 *   save queued when it starts, so under load a thousand payments share one disk flush, and a
 *   later batch never commits before an earlier one. A failed transaction rejects each of its
 *   saves with `COMMIT_FAILED` and nothing in it is stored (IndexedDB aborts it whole).
 * - **First-save order.** Channel and duplex rows carry a sequence number given at their first
 *   save; the numbers in use are read once at open, so the hot path reads nothing.
 * - **Reads see earlier writes**: a read waits for the saves queued before it.
 *
 * Values are the codec's text (src/store/codec.ts) as in the other adapters; payments are kept
 * apart from the state (the hot path writes a total and a signature, not the whole state).
 */
import type { PayeeState } from '../protocol/payee-machine.js';
import type { PayerState } from '../protocol/payer-machine.js';
import { decodeDuplexState } from '../protocol/duplex-state-legacy.js';
import { checkChannelState, checkMeta, checkPayment, encodeChecked, encodeDuplexSave } from './checks.js';
import { decodeState } from './codec.js';
import { closedError, StoreError } from './store-error.js';
import { withNewestPayment, withNewestSignedPayment, type Store, type StoredDuplexRecord, type StoredPayeeChannel, type StoredPayerChannel } from './store.js';

/** The object stores; bump DB_VERSION (with an upgrade step) to change them. */
const STORES = ['payer', 'payee', 'duplex', 'payerPayments', 'payeePayments', 'meta', 'counters'] as const;
type StoreName = (typeof STORES)[number];
type OrderedStore = 'payer' | 'payee' | 'duplex';
const DB_VERSION = 1;

/** A channel or duplex row: its key, first-save sequence number and encoded value. */
interface OrderedRow {
  readonly key: string;
  readonly seq: number;
  readonly value: string;
}
interface PaymentRow {
  readonly totalSat: bigint;
  readonly signature: Uint8Array;
}

/** One write of a save: put `value` under `key` (undefined: delete the key). */
interface Op {
  readonly store: StoreName;
  readonly key: string;
  readonly value: unknown;
}

/** A save waiting for its batch: its writes, its promise's ends, and what to undo if it fails. */
interface Save {
  readonly op: Op | null;
  readonly more: readonly Op[] | null;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
  readonly undo: (() => void) | null;
}

export interface IndexedDbStoreOptions {
  /** The database's name (one per payer; default `paychan`). */
  readonly name?: string;
  /**
   * Default: the page's `indexedDB`. Typed loosely (an `IDBFactory`) so that Node programs
   * importing paychan/payer type-check without the DOM library.
   */
  readonly factory?: object;
}

/**
 * Opens (creating if needed) the database.
 * @throws StoreError `COMMIT_FAILED` (rejects) if the browser refuses to open it (private mode
 *   without storage, a newer version open elsewhere).
 */
export async function openIndexedDbStore(options: IndexedDbStoreOptions = {}): Promise<IndexedDbStore> {
  const factory = (options.factory ?? indexedDB) as IDBFactory;
  const name = options.name ?? 'paychan';
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const request = factory.open(name, DB_VERSION);
    request.onupgradeneeded = () => {
      for (const store of STORES) if (!request.result.objectStoreNames.contains(store)) request.result.createObjectStore(store);
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(new StoreError('COMMIT_FAILED', `cannot open IndexedDB ${name}: ${request.error?.message ?? 'unknown error'}`, { cause: request.error }));
    request.onblocked = () => reject(new StoreError('COMMIT_FAILED', `IndexedDB ${name} is held at an older version by another tab`));
  });
  const tx = db.transaction(['payer', 'payee', 'duplex', 'counters'], 'readonly');
  const [payer, payee, duplex, counterKeys, counterValues] = await Promise.all([
    request<OrderedRow[]>(tx.objectStore('payer').getAll()),
    request<OrderedRow[]>(tx.objectStore('payee').getAll()),
    request<OrderedRow[]>(tx.objectStore('duplex').getAll()),
    request<IDBValidKey[]>(tx.objectStore('counters').getAllKeys()),
    request<number[]>(tx.objectStore('counters').getAll()),
  ]);
  const counters = new Map<string, number>(counterKeys.map((k, i) => [String(k), counterValues[i]!]));
  return new IndexedDbStore(db, { payer: seqsOf(payer), payee: seqsOf(payee), duplex: seqsOf(duplex) }, counters);
}

function seqsOf(rows: readonly OrderedRow[]): Map<string, number> {
  return new Map(rows.map((r) => [r.key, r.seq]));
}

function request<T>(req: IDBRequest): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result as T);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
  });
}

export class IndexedDbStore implements Store {
  #closed = false;
  #queue: Save[] = [];
  #committing = false;
  #scheduled = false;
  #nextSeq: number;

  readonly #db: IDBDatabase;

  /**
   * Prefer {@link openIndexedDbStore}. `db` is an open `IDBDatabase` (typed loosely: see
   * {@link IndexedDbStoreOptions.factory}).
   */
  constructor(
    db: object,
    private readonly seqs: Record<OrderedStore, Map<string, number>>,
    private readonly counters: Map<string, number>,
  ) {
    this.#db = db as IDBDatabase;
    let max = -1;
    for (const map of Object.values(seqs)) for (const seq of map.values()) max = Math.max(max, seq);
    this.#nextSeq = max + 1;
    // Another tab upgrading the schema: let it, and refuse further calls here.
    this.#db.onversionchange = () => {
      this.#closed = true;
      this.#db.close();
    };
  }

  loadPayeeChannels(): Promise<StoredPayeeChannel[]> {
    return this.#loadChannels('loadPayeeChannels', 'payee', 'payeePayments', (s, p) => withNewestPayment(decodeState<PayeeState>(s), p));
  }
  async savePayeeChannel(tempId: string, state: PayeeState): Promise<void> {
    this.#open('savePayeeChannel');
    checkChannelState('savePayeeChannel', tempId, state);
    return this.#saveOrdered('payee', tempId, encodeChecked('savePayeeChannel', tempId, state));
  }
  async savePayeePayment(tempId: string, totalSat: bigint, signature: Uint8Array): Promise<void> {
    this.#open('savePayeePayment');
    checkPayment('savePayeePayment', tempId, signature);
    return this.#enqueue({ store: 'payeePayments', key: tempId, value: { totalSat, signature: Uint8Array.from(signature) } satisfies PaymentRow }, null, null);
  }
  loadPayerChannels(): Promise<StoredPayerChannel[]> {
    return this.#loadChannels('loadPayerChannels', 'payer', 'payerPayments', (s, p) => withNewestSignedPayment(decodeState<PayerState>(s), p));
  }
  /** The payer's hot path: one queued write, committed with the others of its batch. */
  async savePayerPayment(tempId: string, totalSat: bigint, signature: Uint8Array): Promise<void> {
    this.#open('savePayerPayment');
    checkPayment('savePayerPayment', tempId, signature);
    return this.#enqueue({ store: 'payerPayments', key: tempId, value: { totalSat, signature: Uint8Array.from(signature) } satisfies PaymentRow }, null, null);
  }
  async savePayerChannel(tempId: string, state: PayerState): Promise<void> {
    this.#open('savePayerChannel');
    checkChannelState('savePayerChannel', tempId, state);
    return this.#saveOrdered('payer', tempId, encodeChecked('savePayerChannel', tempId, state));
  }
  async loadDuplexRecords(): Promise<StoredDuplexRecord[]> {
    this.#open('loadDuplexRecords');
    await this.#settled();
    const rows = await this.#read((tx) => request<OrderedRow[]>(tx.objectStore('duplex').getAll()), ['duplex']);
    return rows.sort((a, b) => a.seq - b.seq).map((r) => decodeDuplexState(decodeState<unknown>(r.value)));
  }
  async saveDuplexRecords(records: readonly StoredDuplexRecord[], meta?: ReadonlyMap<string, string>): Promise<void> {
    this.#open('saveDuplexRecords');
    // Everything checked before anything is queued: all or nothing.
    const { rows, entries } = encodeDuplexSave(records, meta);
    const ops: Op[] = [];
    const undos: (() => void)[] = [];
    for (const row of rows) {
      const { seq, undo } = this.#seqFor('duplex', row.tempId);
      if (undo) undos.push(undo);
      ops.push({ store: 'duplex', key: row.tempId, value: { key: row.tempId, seq, value: row.encoded } satisfies OrderedRow });
    }
    for (const [key, value] of entries) ops.push({ store: 'meta', key, value });
    return this.#enqueue(null, ops, undos.length > 0 ? () => undos.reverse().forEach((u) => u()) : null);
  }
  async deleteDuplexRecord(tempId: string): Promise<void> {
    this.#open('deleteDuplexRecord');
    if (typeof tempId !== 'string' || tempId === '') throw new TypeError('deleteDuplexRecord: tempId must be a non-empty string');
    // A record saved again after its deletion is a new record: it goes to the end of the list.
    const seq = this.seqs.duplex.get(tempId);
    this.seqs.duplex.delete(tempId);
    return this.#enqueue({ store: 'duplex', key: tempId, value: undefined }, null, seq === undefined ? null : () => this.seqs.duplex.set(tempId, seq));
  }
  async getMeta(key: string): Promise<string | undefined> {
    this.#open('getMeta');
    await this.#settled();
    return this.#read((tx) => request<string | undefined>(tx.objectStore('meta').get(key)), ['meta']);
  }
  async putMeta(key: string, value: string): Promise<void> {
    this.#open('putMeta');
    checkMeta(key, value);
    return this.#enqueue({ store: 'meta', key, value }, null, null);
  }
  async nextCounter(name: string): Promise<number> {
    this.#open('nextCounter');
    if (typeof name !== 'string' || name === '') throw new TypeError('nextCounter: name must be a non-empty string');
    const value = this.counters.get(name) ?? 0;
    this.counters.set(name, value + 1);
    // A failed batch hands its values out again (it stored none of them).
    await this.#enqueue({ store: 'counters', key: name, value: value + 1 }, null, () => {
      if ((this.counters.get(name) ?? 0) > value) this.counters.set(name, value);
    });
    return value;
  }
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#settled();
    this.#db.close();
  }

  /** Saves a channel row, keeping its first-save sequence number. */
  #saveOrdered(store: OrderedStore, key: string, value: string): Promise<void> {
    const { seq, undo } = this.#seqFor(store, key);
    return this.#enqueue({ store, key, value: { key, seq, value } satisfies OrderedRow }, null, undo);
  }

  #seqFor(store: OrderedStore, key: string): { seq: number; undo: (() => void) | null } {
    const known = this.seqs[store].get(key);
    if (known !== undefined) return { seq: known, undo: null };
    const seq = this.#nextSeq++;
    this.seqs[store].set(key, seq);
    return { seq, undo: () => void (this.seqs[store].get(key) === seq && this.seqs[store].delete(key)) };
  }

  #enqueue(op: Op | null, more: readonly Op[] | null, undo: (() => void) | null): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ op, more, resolve, reject, undo });
      if (!this.#committing && !this.#scheduled) {
        this.#scheduled = true;
        // Gather the saves of this turn into one transaction.
        queueMicrotask(() => this.#commit());
      }
    });
  }

  /** Commits everything queued in one transaction; the next batch starts when it ends. */
  #commit(): void {
    this.#scheduled = false;
    if (this.#committing || this.#queue.length === 0) return;
    this.#committing = true;
    const batch = this.#queue;
    this.#queue = [];
    const done = (err: Error | null): void => {
      if (err) {
        for (let i = batch.length - 1; i >= 0; i--) batch[i]!.undo?.();
        const failure = new StoreError('COMMIT_FAILED', `IndexedDB transaction failed: ${err.message}`, { cause: err });
        for (const save of batch) save.reject(failure);
      } else {
        for (const save of batch) save.resolve();
      }
      this.#committing = false;
      if (this.#queue.length > 0) this.#commit();
    };
    let tx: IDBTransaction;
    try {
      tx = this.#db.transaction(STORES, 'readwrite', { durability: 'strict' });
      for (const save of batch) {
        if (save.op) apply(tx, save.op);
        if (save.more) for (const op of save.more) apply(tx, op);
      }
    } catch (err) {
      done(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    tx.oncomplete = () => done(null);
    tx.onabort = () => done(tx.error ?? new Error('transaction aborted'));
  }

  /** Resolves once every save queued before it has committed or failed. */
  #settled(): Promise<void> {
    if (!this.#committing && this.#queue.length === 0) return Promise.resolve();
    return this.#enqueue(null, null, null).catch(() => undefined);
  }

  async #read<T>(run: (tx: IDBTransaction) => Promise<T>, stores: StoreName[]): Promise<T> {
    return run(this.#db.transaction(stores, 'readonly'));
  }

  async #loadChannels<S>(what: string, store: OrderedStore, payments: StoreName, decode: (value: string, payment: PaymentRow | undefined) => S): Promise<{ tempId: string; state: S }[]> {
    this.#open(what);
    await this.#settled();
    const [rows, paymentKeys, paymentRows] = await this.#read(
      (tx) =>
        Promise.all([
          request<OrderedRow[]>(tx.objectStore(store).getAll()),
          request<IDBValidKey[]>(tx.objectStore(payments).getAllKeys()),
          request<PaymentRow[]>(tx.objectStore(payments).getAll()),
        ]),
      [store, payments],
    );
    const byKey = new Map(paymentKeys.map((k, i) => [String(k), paymentRows[i]!]));
    return rows.sort((a, b) => a.seq - b.seq).map((r) => ({ tempId: r.key, state: decode(r.value, byKey.get(r.key)) }));
  }

  /** @throws StoreError `STORE_CLOSED` after close. */
  #open(what: string): void {
    if (this.#closed) throw closedError(what);
  }
}

function apply(tx: IDBTransaction, op: Op): void {
  const store = tx.objectStore(op.store);
  if (op.value === undefined) store.delete(op.key);
  else store.put(op.value, op.key);
}
