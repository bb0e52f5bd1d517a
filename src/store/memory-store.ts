/**
 * A {@link Store} in memory: for the in-process demo and tests that do not test durability.
 * It keeps the port's contract except durability across the process: writes resolve in call
 * order, values are encoded when saved (a caller mutating a state afterwards cannot change what
 * was "stored"), arguments are checked as SQLite's adapter checks them, and a closed store refuses
 * every call. Its data lives in a {@link MemoryDatabase} that a test may hand to a new
 * MemoryStore to "reopen" it.
 */
import { decodeDuplexState } from '../protocol/duplex-state-legacy.js';
import type { PayeeState } from '../protocol/payee-machine.js';
import type { PayerState } from '../protocol/payer-machine.js';
import { checkChannelState, checkMeta, checkPayment, encodeChecked, encodeDuplexSave } from './checks.js';
import { decodeState } from './codec.js';
import { closedError } from './store-error.js';
import { withNewestPayment, withNewestSignedPayment, type Store, type StoredDuplexRecord, type StoredPayeeChannel, type StoredPayerChannel } from './store.js';

type Payment = { readonly totalSat: bigint; readonly signature: Uint8Array };

/** What a {@link MemoryStore} holds; Maps keep first-insertion order, the port's load order. */
export class MemoryDatabase {
  readonly payee = new Map<string, string>();
  readonly payer = new Map<string, string>();
  readonly payeePayments = new Map<string, Payment>();
  readonly payerPayments = new Map<string, Payment>();
  readonly duplex = new Map<string, string>();
  readonly meta = new Map<string, string>();
  readonly counters = new Map<string, number>();
}

export class MemoryStore implements Store {
  #closed = false;

  constructor(private readonly db: MemoryDatabase = new MemoryDatabase()) {}

  async loadPayeeChannels(): Promise<StoredPayeeChannel[]> {
    this.#open('loadPayeeChannels');
    return [...this.db.payee].map(([tempId, s]) => ({ tempId, state: withNewestPayment(decodeState<PayeeState>(s), this.db.payeePayments.get(tempId)) }));
  }
  async hasPayeeChannel(tempId: string): Promise<boolean> {
    this.#open('hasPayeeChannel');
    return this.db.payee.has(tempId);
  }
  async savePayeePayment(tempId: string, totalSat: bigint, signature: Uint8Array): Promise<void> {
    this.#open('savePayeePayment');
    checkPayment('savePayeePayment', tempId, signature);
    this.db.payeePayments.set(tempId, { totalSat, signature: Uint8Array.from(signature) });
  }
  async savePayeeChannel(tempId: string, state: PayeeState): Promise<void> {
    this.#open('savePayeeChannel');
    checkChannelState('savePayeeChannel', tempId, state);
    this.db.payee.set(tempId, encodeChecked('savePayeeChannel', tempId, state));
  }
  async loadPayerChannels(): Promise<StoredPayerChannel[]> {
    this.#open('loadPayerChannels');
    return [...this.db.payer].map(([tempId, s]) => ({ tempId, state: withNewestSignedPayment(decodeState<PayerState>(s), this.db.payerPayments.get(tempId)) }));
  }
  async savePayerPayment(tempId: string, totalSat: bigint, signature: Uint8Array): Promise<void> {
    this.#open('savePayerPayment');
    checkPayment('savePayerPayment', tempId, signature);
    this.db.payerPayments.set(tempId, { totalSat, signature: Uint8Array.from(signature) });
  }
  async savePayerChannel(tempId: string, state: PayerState): Promise<void> {
    this.#open('savePayerChannel');
    checkChannelState('savePayerChannel', tempId, state);
    this.db.payer.set(tempId, encodeChecked('savePayerChannel', tempId, state));
  }
  async loadDuplexRecords(): Promise<StoredDuplexRecord[]> {
    this.#open('loadDuplexRecords');
    return [...this.db.duplex.values()].map((r) => decodeDuplexState(decodeState<unknown>(r)));
  }
  async saveDuplexRecords(records: readonly StoredDuplexRecord[], meta?: ReadonlyMap<string, string>): Promise<void> {
    this.#open('saveDuplexRecords');
    // Everything checked before anything is written: all or nothing.
    const { rows, entries } = encodeDuplexSave(records, meta);
    for (const row of rows) this.db.duplex.set(row.tempId, row.encoded);
    for (const [key, value] of entries) this.db.meta.set(key, value);
  }
  async deleteDuplexRecord(tempId: string): Promise<void> {
    this.#open('deleteDuplexRecord');
    if (typeof tempId !== 'string' || tempId === '') throw new TypeError('deleteDuplexRecord: tempId must be a non-empty string');
    this.db.duplex.delete(tempId);
  }
  async getMeta(key: string): Promise<string | undefined> {
    this.#open('getMeta');
    return this.db.meta.get(key);
  }
  async putMeta(key: string, value: string): Promise<void> {
    this.#open('putMeta');
    checkMeta(key, value);
    this.db.meta.set(key, value);
  }
  async nextCounter(name: string): Promise<number> {
    this.#open('nextCounter');
    if (typeof name !== 'string' || name === '') throw new TypeError('nextCounter: name must be a non-empty string');
    const next = this.db.counters.get(name) ?? 0;
    this.db.counters.set(name, next + 1);
    return next;
  }
  async close(): Promise<void> {
    this.#closed = true;
  }

  /** @throws StoreError `STORE_CLOSED` after close. */
  #open(what: string): void {
    if (this.#closed) throw closedError(what);
  }
}
