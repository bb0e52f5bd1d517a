/**
 * The Store port: everything one side (payee or payer) keeps to survive a crash, in one store per
 * data dir: Spilman channels and their payments, duplex channel records, the wallet's state
 * (a meta value), counters.
 *
 * Contract (the shared suite in test/integration/store.test.ts holds every adapter to it):
 * - **Durable on resolve.** When a `save*`/`putMeta`/`delete*`/`nextCounter` promise resolves,
 *   the write is on stable storage (SQLite: committed in WAL mode and the WAL fdatasync-ed); a
 *   crash, even a power cut, after that point cannot lose it. Drivers send an acknowledgement (or
 *   a signature that depends on the write) only after this.
 * - **Ordered.** Writes of the same key become durable in call order, and a later write never
 *   becomes durable before an earlier one of any key or kind (one commit sequence). So a reader
 *   after a crash sees a prefix of the writes, never a later one without an earlier one.
 *   Promises resolve in call order.
 * - **Group commit.** Adapters may batch writes made close together into one transaction (one
 *   disk flush for many payments); each promise still resolves only after its own batch commits.
 * - **Atomic where one call writes several things.** `saveDuplexRecords` commits all its records
 *   (and meta values) or none: a rollover ends one channel and starts the next in one commit.
 * - **Last write wins per key.** A channel is one row: its newest state. A delete is a write.
 * - A failed commit rejects every write in that batch; nothing in it is durable, and the store
 *   carries on with the next batch. A batch written but whose flush to disk failed (SQLite:
 *   `SYNC_FAILED`) is rejected too, with every later write: durability is then unknown, and the
 *   store must be reopened.
 * - **Reads see every write made before them** (they wait for pending batches), in first-save
 *   order for lists; updating an entry does not move it.
 * - Arguments are checked when the call is made: a bad one rejects that call alone with a
 *   TypeError and writes nothing. After `close`, every call rejects with `STORE_CLOSED`.
 *
 * Values are the protocol's plain values (bigint, Uint8Array inside); adapters serialize them
 * with `src/store/codec.ts`, so a stored value is opaque to SQL except for the few columns an
 * adapter copies out for queries. The port is asynchronous and names no database type: an adapter
 * (SQLite, memory, PostgreSQL) is one file implementing it.
 */
import type { DuplexChannelState } from '../protocol/duplex-state.js';
import type { PayeeState } from '../protocol/payee-machine.js';
import type { PayerState } from '../protocol/payer-machine.js';

/**
 * What the store keeps per duplex channel: the duplex machine's tagged state (src/protocol). The
 * store reads only `tempId` (the key) and the channel id (a column for queries) from it; a row
 * written before the machine (a record with a `phase`) is read as the state it stands for.
 */
export type StoredDuplexRecord = DuplexChannelState;

/**
 * The meta key under which a data dir's one wallet keeps its state (the codec's encoding of
 * `WalletState`). A meta value rather than typed methods: the store then names no wallet type
 * (the store layer depends on the protocol only), the state is one value written a few times per
 * channel, never on the payment path, and payer.db has kept it there since the first release.
 */
export const WALLET_META_KEY = 'wallet';

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
  /** Every duplex record, in first-save order (a rollover's successor after its predecessor). */
  loadDuplexRecords(): Promise<StoredDuplexRecord[]>;
  /**
   * Saves the newest version of each record, and the `meta` values if any, in one commit: all of
   * them become durable together, or none does. Keyed by `tempId`.
   * @throws TypeError (rejects) for a record without a tempId or one the codec cannot encode.
   */
  saveDuplexRecords(records: readonly StoredDuplexRecord[], meta?: ReadonlyMap<string, string>): Promise<void>;
  /** Forgets a duplex record (an opening abandoned before this side signed anything). */
  deleteDuplexRecord(tempId: string): Promise<void>;
  /**
   * A small durable key/value space for metadata: the wallet's state ({@link WALLET_META_KEY}),
   * the payer's current channel and its URL.
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
  /**
   * Present on a store several payee instances share (PostgreSQL): the per-channel leases that
   * make one instance at a time the writer of a payee channel. With it, every payee write
   * (`savePayeeChannel`, `savePayeePayment`) is fenced: it rejects with StoreError `FENCED`, and
   * stores nothing, unless this instance holds the channel's lease at commit time.
   */
  readonly leases?: ChannelLeases;
  /**
   * One payee channel by tempId or channel id (funding outpoint), with its newest payment
   * applied: how an instance loads a channel another instance opened. Present with `leases`.
   */
  loadPayeeChannel?(ref: string): Promise<StoredPayeeChannel | undefined>;
  /**
   * Whether a payee channel row exists under `tempId`, in any state; waits for saves already
   * made. The payee asks before it makes a new channel: a tempId is the payer's nonce, and a new
   * channel stored under a used one would overwrite that row (and inherit its newest payment).
   * Optional: a store without it relies on the payee holding every stored channel in memory.
   */
  hasPayeeChannel?(tempId: string): Promise<boolean>;
}

/**
 * Per-channel leases with fencing tokens (docs/scale.md). Contract:
 * - A lease names one owner (an instance: one data dir) and expires `leaseMs` after it was last
 *   taken or renewed, by the database's clock (instances' clocks do not matter).
 * - Taking a lease another owner holds succeeds only once it expired, and increments the
 *   channel's token: from the moment the takeover commits, every write of the former holder is
 *   refused (`FENCED`). A write that committed before the takeover is seen by the new holder,
 *   which loads the channel only after taking the lease.
 * - The holder renews its leases in the background; a lease found lost (renewal or a fenced
 *   write) is reported once to `onLost`: the instance must drop the channel from memory and
 *   acknowledge nothing more for it.
 */
export interface ChannelLeases {
  /** Who this instance is in the lease table. */
  readonly owner: string;
  /** How long a lease lasts unrenewed, ms: how soon a dead instance's channels can move. */
  readonly leaseMs: number;
  /**
   * Takes the leases of these payee channels (those free, expired, or already this owner's).
   * @returns the tempIds now held.
   */
  acquire(tempIds: readonly string[]): Promise<Set<string>>;
  /**
   * Takes one channel's lease, waiting (at most `maxWaitMs`) for another owner's to expire.
   * @returns true when held.
   */
  acquireWaiting(tempId: string, maxWaitMs: number): Promise<boolean>;
  /** Whether this instance holds the lease (as far as it knows: a takeover is found at the next renewal or write). */
  holds(tempId: string): boolean;
  /** Gives a lease up (a channel this instance drops), so another instance can take it at once. */
  release(tempId: string): Promise<void>;
  /** Payee channels not Closed whose lease expired or that never had one: for adoption by a live instance. */
  orphans(limit: number): Promise<string[]>;
  /** `listener` is told of every lease this instance lost, once each. */
  onLost(listener: (tempId: string) => void): void;
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
