/**
 * The Store port: where payee and payer keep what must survive a crash.
 *
 * Contract (the shared suite in test/integration/store.test.ts holds every adapter to it):
 * - **Durable on resolve.** When a `save*` promise resolves, the data is on stable storage
 *   (SQLite: committed with `synchronous=FULL` in WAL mode); a crash, even a power cut, after that
 *   point cannot lose it. Drivers send an acknowledgement only after this.
 * - **Ordered.** Saves of the same key become durable in call order, and a later save never
 *   becomes durable before an earlier one of any key (one commit sequence). So a reader after a
 *   crash sees a prefix of the saves, never a later one without an earlier one.
 * - **Group commit.** Adapters may batch saves made close together into one transaction (one
 *   disk flush for many payments); each promise still resolves only after its own batch commits.
 * - **Last write wins per key.** A channel is one row: its newest state.
 * - A failed commit rejects every save in that batch; nothing in it is durable.
 *
 * States are the protocol's plain values (bigint, Uint8Array inside); adapters serialize them
 * with `src/store/codec.ts`.
 */
import type { PayeeState } from '../protocol/payee-machine.js';
import type { PayerState } from '../protocol/payer-machine.js';

export interface StoredPayeeChannel {
  /** The channel's temporary id, its key from the first message on. */
  readonly tempId: string;
  readonly state: PayeeState;
}

export interface StoredPayerChannel {
  readonly tempId: string;
  readonly state: PayerState;
}

export interface Store {
  /** Every payee channel, in the order first saved. */
  loadPayeeChannels(): Promise<StoredPayeeChannel[]>;
  /** Saves the newest state of a payee channel (see the contract above). */
  savePayeeChannel(tempId: string, state: PayeeState): Promise<void>;
  /**
   * Saves a new payment of an Open payee channel: its total and the payer's signature, without
   * the rest of the state (the hot path). Same durability and ordering as the other saves.
   * `loadPayeeChannels` returns Open and Suspended states with their newest payment applied.
   */
  savePayeePayment(tempId: string, totalSat: bigint, signature: Uint8Array): Promise<void>;
  /** Every payer channel; Open states come with their newest payment applied. */
  loadPayerChannels(): Promise<StoredPayerChannel[]>;
  /** Saves a new payment the payer signed on an Open channel (the hot path; see savePayeePayment). */
  savePayerPayment(tempId: string, totalSat: bigint, signature: Uint8Array): Promise<void>;
  savePayerChannel(tempId: string, state: PayerState): Promise<void>;
  /**
   * A small durable key/value space for metadata (the next key index, a wallet's sync state).
   * `putMeta` follows the same durability and ordering contract as the channel saves.
   */
  getMeta(key: string): Promise<string | undefined>;
  putMeta(key: string, value: string): Promise<void>;
  /**
   * Atomically reserves and returns the next value of counter `name` (0, 1, 2, ...), durably:
   * a value is never handed out twice, even across crashes. Used for channel key indexes.
   */
  nextCounter(name: string): Promise<number>;
  /** Flushes pending saves and releases the database. */
  close(): Promise<void>;
}

/** The newest of a state's own payment and a separately saved one (totals only grow). */
export function withNewestPayment(state: PayeeState, payment: { totalSat: bigint; signature: Uint8Array } | undefined): PayeeState {
  if (!payment || (state.type !== 'Open' && state.type !== 'Suspended') || payment.totalSat <= state.paidSat) return state;
  return { ...state, paidSat: payment.totalSat, signature: payment.signature };
}

/** The payer's counterpart of {@link withNewestPayment}. */
export function withNewestSignedPayment(state: PayerState, payment: { totalSat: bigint; signature: Uint8Array } | undefined): PayerState {
  if (!payment || state.type !== 'Open' || payment.totalSat <= state.signedTotalSat) return state;
  return { ...state, signedTotalSat: payment.totalSat, signature: payment.signature };
}
