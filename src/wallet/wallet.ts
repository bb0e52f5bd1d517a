/**
 * A small on-chain wallet with one job: fund payment channels. BIP84 P2WPKH coins from one seed,
 * synced by scanning blocks from a {@link ChainBackend}, spent by {@link Wallet.fund} into
 * transactions it signs but does not broadcast (the channel protocol decides who broadcasts).
 *
 * The class does the I/O and the locking; every decision is a pure function over one plain
 * {@link WalletState} (state.ts, coin-selection.ts), so the state can be persisted as it is.
 * All operations run one at a time (an async lock): a `fund` never sees a half-synced state,
 * where the wallet's own unconfirmed spends are momentarily not applied.
 */
import { address as baddress, type Transaction } from 'bitcoinjs-lib';
import { hashToTxid } from '../protocol/bytes.js';
import { BroadcastRejectedError, type BlockTip, type ChainBackend, type Outpoint } from '../chain/backend.js';
import type { Secp256k1 } from '../crypto/secp256k1.js';
import { bitcoinjsNetwork, type NetworkName } from '../protocol/network.js';
import { AddressBook } from './address-book.js';
import { type CandidateUtxo, selectCoins, type TxOutputSpec } from './coin-selection.js';
import { WalletError } from './errors.js';
import { type KeyPair, WalletKeys } from './keys.js';
import { signP2wpkhInput, signP2wpkhTransaction } from './sign.js';
import {
  applyBlock,
  applyMempoolLayer,
  type Balance,
  balanceOf,
  coinConfirmations,
  createWalletState,
  outpointKey,
  mergeWalletStates,
  pruneReservations,
  recordOwnBroadcast,
  removeMempoolLayer,
  rollbackTo,
  unreservedCoins,
  type WalletState,
  WALLET_STATE_VERSION,
} from './state.js';

/** BIP44's gap limit: how many unused addresses past the last used one are watched. */
export const DEFAULT_GAP_LIMIT = 20;
/** Blocks fetched concurrently while scanning. */
const BLOCK_FETCH_BATCH = 8;
/** A long scan keeps its progress every this many blocks (one extra getBlock each time). */
const SCAN_CHECKPOINT_BLOCKS = 144;
/** How many times a sync restarts because the chain changed under it before giving up. */
const MAX_SYNC_ATTEMPTS = 5;

export interface WalletOpenOptions {
  /** BIP32 seed, 16 to 64 bytes (for a BIP39 mnemonic: its 64-byte seed). */
  readonly seed: Uint8Array;
  readonly network: NetworkName;
  readonly backend: ChainBackend;
  readonly secp: Secp256k1;
  /**
   * First block that can hold the wallet's coins. Default 0: never misses a coin, but scans the
   * whole chain; pass the height at which the seed was created.
   */
  readonly birthdayHeight?: number;
  /** Default {@link DEFAULT_GAP_LIMIT}. */
  readonly gapLimit?: number;
  /**
   * A state saved from {@link Wallet.state} to reopen from (then birthdayHeight and gapLimit, if
   * given, must match it).
   */
  readonly state?: WalletState;
}

export interface FundResult {
  readonly txHex: string;
  readonly txid: string;
  /** Σ inputs − Σ outputs. */
  readonly feeSat: bigint;
  /** The signed transaction's virtual size; feeSat / vsize ≥ the requested rate. */
  readonly vsize: number;
  /** Index of the change output (always after the requested outputs), if there is change. */
  readonly changeVout?: number;
  readonly inputs: readonly Outpoint[];
}

export interface SyncResult {
  /** The tip the wallet is synced to. */
  readonly tip: BlockTip;
  /**
   * Blocks undone: above the fork of a reorg, or scanned by an attempt that found the chain
   * changed under it (0 normally).
   */
  readonly blocksRolledBack: number;
  /** Blocks applied, by every attempt. */
  readonly blocksScanned: number;
  /** Own unconfirmed transactions the node no longer had and refused again: forgotten. */
  readonly droppedTxids: readonly string[];
}

/** A coin of the wallet, as {@link Wallet.coins} lists it. */
export interface CoinInfo {
  readonly outpoint: Outpoint;
  readonly valueSat: bigint;
  readonly confirmations: number;
  readonly coinbase: boolean;
  readonly address: string;
  /** Held by a funded transaction not yet broadcast. */
  readonly reserved: boolean;
}

interface ScanProgress {
  scanned: number;
  rolledBack: number;
}

export class Wallet {
  readonly #backend: ChainBackend;
  readonly #secp: Secp256k1;
  readonly #keys: WalletKeys;
  readonly #state: WalletState;
  readonly #book: AddressBook;
  #lock: Promise<unknown> = Promise.resolve();

  private constructor(options: WalletOpenOptions, state: WalletState) {
    this.#backend = options.backend;
    this.#secp = options.secp;
    this.#keys = WalletKeys.fromSeed(options.seed, options.network);
    this.#state = state;
    this.#book = new AddressBook(this.#keys, state);
  }

  /**
   * Opens a wallet (nothing is scanned until {@link sync}).
   * @throws WalletError `NETWORK_MISMATCH` if the backend or the saved state is on another
   *   network; RangeError for a seed not 16–64 bytes, a negative or fractional birthday height,
   *   a gap limit not in [1, 1000], or options that contradict the saved state.
   */
  static async open(options: WalletOpenOptions): Promise<Wallet> {
    const { network, backend } = options;
    if (backend.network !== network) {
      throw new WalletError('NETWORK_MISMATCH', { wallet: network, backend: backend.network }, `wallet is on ${network}, backend on ${backend.network}`);
    }
    const birthdayHeight = options.birthdayHeight ?? options.state?.birthdayHeight ?? 0;
    const gapLimit = options.gapLimit ?? options.state?.gapLimit ?? DEFAULT_GAP_LIMIT;
    if (!Number.isInteger(birthdayHeight) || birthdayHeight < 0) throw new RangeError(`bad birthday height ${birthdayHeight}`);
    if (!Number.isInteger(gapLimit) || gapLimit < 1 || gapLimit > 1000) throw new RangeError(`gap limit must be in [1, 1000], got ${gapLimit}`);
    let state: WalletState;
    if (options.state) {
      const saved = options.state;
      if (saved.version !== WALLET_STATE_VERSION) throw new RangeError(`unsupported wallet state version ${String(saved.version)}`);
      if (saved.network !== network) {
        throw new WalletError('NETWORK_MISMATCH', { wallet: network, backend: saved.network }, `saved state is on ${saved.network}, wallet on ${network}`);
      }
      if (saved.birthdayHeight !== birthdayHeight || saved.gapLimit !== gapLimit) {
        throw new RangeError('birthdayHeight/gapLimit differ from the saved state');
      }
      state = structuredClone(saved);
    } else {
      state = createWalletState(network, birthdayHeight, gapLimit);
    }
    return new Wallet(options, state);
  }

  /**
   * One saved state for two of the same seed: see {@link mergeWalletStates} for which parts of
   * which win. Used once, when a data dir's two wallets (payer.db, duplex.db) become one.
   * @throws RangeError if the states are of different networks.
   */
  static mergeStates(seed: Uint8Array, ours: WalletState, theirs: WalletState): WalletState {
    const keys = WalletKeys.fromSeed(seed, ours.network);
    return mergeWalletStates(ours, theirs, (state) => new AddressBook(keys, state));
  }

  get network(): NetworkName {
    return this.#state.network;
  }

  /** Height of the last block the wallet has applied (birthday − 1 before the first sync). */
  get syncedHeight(): number {
    return this.#state.syncedHeight;
  }

  /**
   * @returns a copy of the whole state, plain data without keys, for a store to persist and
   *   {@link open} to take back.
   */
  state(): WalletState {
    return structuredClone(this.#state);
  }

  /**
   * @returns a receive address never handed out before (and never seen paid): one per payer or
   *   deposit, so payments are never linked and each is attributable. The wallet watches every
   *   address it handed out, plus the gap limit.
   */
  receiveAddress(): string {
    return this.#book.next('receive').address;
  }

  /** @returns a change address never handed out before (fund() takes its own). */
  changeAddress(): string {
    return this.#book.next('change').address;
  }

  /**
   * Allocates a fresh channel key (path `m/1017'/coin'/0'/index'`): the index is never given out
   * twice, so no two channels share a key.
   */
  nextChannelKey(): KeyPair & { readonly index: number } {
    const index = this.#state.keys.nextChannelIndex++;
    return { index, ...this.#keys.channelKey(index) };
  }

  /** Allocates a fresh duplex channel key (see {@link WalletKeys.duplexKey}); never the same index twice. */
  nextDuplexKey(): KeyPair & { readonly index: number } {
    const index = this.#state.keys.nextChannelIndex++;
    return { index, ...this.#keys.duplexKey(index) };
  }

  /** The duplex key allocated as `index` earlier, for a channel reloaded from its store. */
  duplexKey(index: number): KeyPair {
    return this.#keys.duplexKey(index);
  }

  /**
   * @returns the balance as of the last sync plus the wallet's own unconfirmed transactions.
   *   Coins reserved by {@link fund} still count: they are not spent until broadcast.
   */
  balance(): Balance {
    return balanceOf(this.#state);
  }

  /** @returns the unspent coins (including reserved ones and own unconfirmed change). */
  coins(): CoinInfo[] {
    const reserved = new Set(this.#state.reservations.flatMap((r) => r.inputs));
    return Object.entries(this.#state.coins)
      .filter(([, coin]) => coin.spend.type === 'unspent')
      .map(([key, coin]) => ({
        outpoint: { txid: coin.txid, vout: coin.vout },
        valueSat: coin.valueSat,
        confirmations: coinConfirmations(this.#state, coin),
        coinbase: coin.coinbase,
        address: this.#book.address(coin.key).address,
        reserved: reserved.has(key),
      }));
  }

  /**
   * Scans the blocks from the last synced height to the backend's tip. A reorg is detected by
   * comparing the remembered hashes of recent blocks with the node's; the blocks above the fork
   * are undone and the new branch scanned (deeper than 100 blocks: a full rescan). Then checks
   * that the node still has each own unconfirmed transaction; one it lost is broadcast again,
   * and forgotten (its inputs spendable again) if the node refuses it.
   * @throws ChainBackendError when the backend fails (the state stays consistent, and keeps the
   *   blocks scanned up to the last checkpoint, every 144 blocks); WalletError `SYNC_UNSTABLE`
   *   if the chain changed under each of 5 attempts.
   */
  sync(): Promise<SyncResult> {
    return this.#exclusive(async () => {
      const progress: ScanProgress = { scanned: 0, rolledBack: 0 };
      for (let attempt = 1; attempt <= MAX_SYNC_ATTEMPTS; attempt++) {
        const tip = await this.#backend.getTip();
        removeMempoolLayer(this.#state);
        let stable: boolean;
        try {
          progress.rolledBack += await this.#rollBackToFork(tip);
          stable = await this.#scanTo(tip, progress);
        } finally {
          applyMempoolLayer(this.#state, this.#book);
          pruneReservations(this.#state);
        }
        if (stable) {
          const droppedTxids = await this.#recheckOwnMempool();
          return { tip, blocksRolledBack: progress.rolledBack, blocksScanned: progress.scanned, droppedTxids };
        }
      }
      throw new WalletError('SYNC_UNSTABLE', { attempts: MAX_SYNC_ATTEMPTS });
    });
  }

  /**
   * Selects coins, signs a transaction paying `outputs` (in this order, change after them) at
   * `feeRateSatPerVb` or slightly more, and reserves its inputs so that no later `fund` spends
   * them, until {@link release} or the transaction is seen spent. Does not broadcast. Inputs opt
   * in to RBF; nLockTime is the synced height (anti fee sniping, as Bitcoin Core does).
   * @throws WalletError `INVALID_FEE_RATE`, `INVALID_OUTPUT`, `OUTPUT_BELOW_DUST`,
   *   `INSUFFICIENT_FUNDS` (with `missingSat`).
   */
  fund(outputs: readonly TxOutputSpec[], feeRateSatPerVb: number): Promise<FundResult> {
    return this.#exclusive(async () => this.#fund(outputs, feeRateSatPerVb));
  }

  /**
   * Un-reserves the inputs of a funded transaction that will not be broadcast.
   * @returns false if no such reservation exists (never funded, already broadcast or released,
   *   or its inputs were spent on chain).
   */
  release(txid: string): Promise<boolean> {
    return this.#exclusive(async () => {
      const before = this.#state.reservations.length;
      this.#state.reservations = this.#state.reservations.filter((r) => r.txid !== txid);
      return this.#state.reservations.length < before;
    });
  }

  /**
   * Broadcasts a transaction {@link fund} made; from then on its change is spendable and its
   * inputs spent, without waiting for a block.
   * @throws WalletError `UNKNOWN_TRANSACTION` if it is not reserved; BroadcastRejectedError if
   *   the node refuses it (it stays reserved: {@link release} it or retry).
   */
  broadcast(txid: string): Promise<string> {
    return this.#exclusive(async () => this.#broadcast(txid));
  }

  /**
   * Pays `valueSat` to `address` and broadcasts the transaction.
   * @throws WalletError `INVALID_ADDRESS` and everything {@link fund} throws;
   *   BroadcastRejectedError if the node refuses it (its inputs are released then);
   *   ChainBackendError if the broadcast failed otherwise: the node may or may not have the
   *   transaction, so its inputs stay reserved (a later sync drops the reservation once the
   *   transaction confirms; `state().reservations` lists it for {@link release}).
   */
  send(address: string, valueSat: bigint, feeRateSatPerVb: number): Promise<FundResult> {
    return this.#exclusive(async () => {
      let script: Uint8Array;
      try {
        script = baddress.toOutputScript(address, bitcoinjsNetwork(this.#state.network));
      } catch {
        throw new WalletError('INVALID_ADDRESS', { address }, `not a ${this.#state.network} address: ${address}`);
      }
      const funded = this.#fund([{ script, valueSat }], feeRateSatPerVb);
      try {
        await this.#broadcast(funded.txid);
      } catch (err) {
        // Only a refusal is certain; after a lost connection the transaction may be in the
        // mempool, and spending its inputs again would make the wallet conflict with itself.
        if (err instanceof BroadcastRejectedError) {
          this.#state.reservations = this.#state.reservations.filter((r) => r.txid !== funded.txid);
        }
        throw err;
      }
      return funded;
    });
  }

  #fund(outputs: readonly TxOutputSpec[], feeRateSatPerVb: number): FundResult {
    const state = this.#state;
    const changeAddress = this.#book.peek('change');
    const selection = selectCoins({ utxos: this.#candidates(), outputs, feeRateSatPerVb, changeScript: changeAddress.script });
    const inputs = selection.inputs.map((utxo) => {
      const coin = state.coins[outpointKey(utxo.outpoint.txid, utxo.outpoint.vout)]!;
      return { outpoint: utxo.outpoint, valueSat: coin.valueSat, key: this.#keys.addressKey(coin.key.chain, coin.key.index) };
    });
    const tx = signP2wpkhTransaction({ inputs, outputs: selection.outputs, locktime: Math.max(0, state.syncedHeight) }, this.#secp);
    const vsize = tx.virtualSize();
    if (vsize > selection.vsize) throw new Error(`internal: signed vsize ${vsize} exceeds the estimate ${selection.vsize}`);
    if (selection.change.type === 'change') this.#book.next('change');
    const txid = tx.getId();
    const txHex = tx.toHex();
    state.reservations.push({ txid, hex: txHex, inputs: inputs.map((i) => outpointKey(i.outpoint.txid, i.outpoint.vout)) });
    return {
      txHex,
      txid,
      feeSat: selection.feeSat,
      vsize,
      ...(selection.change.type === 'change' ? { changeVout: selection.change.vout } : {}),
      inputs: inputs.map((i) => i.outpoint),
    };
  }

  /**
   * Reserves coins for this wallet's part of a transaction built with another party (a dual-funded
   * channel): inputs worth `outputs` plus the fee for a whole transaction with those inputs,
   * outputs and a change output at `feeRateSatPerVb` (so each party pays at least its own share
   * of the joint transaction; the header is paid by both, a few vbytes). Nothing is signed: see
   * {@link signContribution}. The reservation is named `reservationId` for {@link release}.
   * @returns the inputs and this wallet's outputs (`outputs`, then change if any).
   * @throws WalletError as {@link fund}.
   */
  contribute(
    reservationId: string,
    outputs: readonly TxOutputSpec[],
    feeRateSatPerVb: number,
  ): Promise<{ inputs: readonly { outpoint: Outpoint; valueSat: bigint }[]; outputs: readonly TxOutputSpec[]; feeSat: bigint }> {
    return this.#exclusive(async () => {
      const selection = selectCoins({ utxos: this.#candidates(), outputs, feeRateSatPerVb, changeScript: this.#book.peek('change').script });
      if (selection.change.type === 'change') this.#book.next('change');
      this.#state.reservations.push({ txid: reservationId, hex: '', inputs: selection.inputs.map((i) => outpointKey(i.outpoint.txid, i.outpoint.vout)) });
      return { inputs: selection.inputs.map((i) => ({ outpoint: i.outpoint, valueSat: i.valueSat })), outputs: selection.outputs, feeSat: selection.feeSat };
    });
  }

  /**
   * Signs the inputs of `tx` that spend this wallet's coins (P2WPKH, SIGHASH_ALL) and returns
   * their witnesses; other inputs are left alone.
   * @throws WalletError `UNKNOWN_TRANSACTION` if `indexes` names an input that is not the wallet's.
   */
  signContribution(tx: Transaction, indexes: readonly number[]): { index: number; stack: Uint8Array[] }[] {
    return indexes.map((index) => {
      const input = tx.ins[index];
      const txid = input ? hashToTxid(input.hash) : '';
      const coin = input ? this.#state.coins[outpointKey(txid, input.index)] : undefined;
      if (!input || !coin) throw new WalletError('UNKNOWN_TRANSACTION', { txid: `input ${index}` }, `input ${index} does not spend a coin of this wallet`);
      const key = this.#keys.addressKey(coin.key.chain, coin.key.index);
      return { index, stack: signP2wpkhInput(tx, index, coin.valueSat, key, this.#secp) };
    });
  }

  /**
   * The smallest confirmed, unreserved coin worth at least `minValueSat` and at most
   * `maxValueSat`, reserved under `reservationId`: a fee input for a transaction whose outputs
   * are fixed (a duplex state signed SIGHASH_ALL|ANYONECANPAY), so its whole value becomes fee.
   * @returns null if there is none.
   */
  reserveFeeCoin(reservationId: string, minValueSat: bigint, maxValueSat: bigint): Promise<{ outpoint: Outpoint; valueSat: bigint } | null> {
    return this.#exclusive(async () => {
      const coin = this.#candidates()
        .filter((c) => c.confirmations >= 1 && !c.coinbase && c.valueSat >= minValueSat && c.valueSat <= maxValueSat)
        .sort((a, b) => (a.valueSat < b.valueSat ? -1 : a.valueSat > b.valueSat ? 1 : 0))[0];
      if (!coin) return null;
      this.#state.reservations.push({ txid: reservationId, hex: '', inputs: [outpointKey(coin.outpoint.txid, coin.outpoint.vout)] });
      return { outpoint: coin.outpoint, valueSat: coin.valueSat };
    });
  }

  #candidates(): CandidateUtxo[] {
    const state = this.#state;
    return unreservedCoins(state).map((coin) => ({
      outpoint: { txid: coin.txid, vout: coin.vout },
      valueSat: coin.valueSat,
      confirmations: coinConfirmations(state, coin),
      coinbase: coin.coinbase,
      fromOwnTransaction: coin.origin.type === 'own-mempool',
    }));
  }

  async #broadcast(txid: string): Promise<string> {
    const reservation = this.#state.reservations.find((r) => r.txid === txid);
    // Coins held for a transaction someone else completes (contribute, reserveFeeCoin) have no
    // transaction of the wallet's to broadcast.
    if (!reservation || reservation.hex === '') throw new WalletError('UNKNOWN_TRANSACTION', { txid });
    await this.#backend.broadcast(reservation.hex);
    if (!recordOwnBroadcast(this.#state, reservation.hex, this.#book)) {
      throw new Error(`internal: reserved transaction ${txid} spends coins the wallet no longer has`);
    }
    return txid;
  }

  /**
   * Finds the highest remembered block still on the node's best chain and undoes the blocks
   * above it. @returns how many blocks were undone.
   */
  async #rollBackToFork(tip: BlockTip): Promise<number> {
    const state = this.#state;
    const synced = state.syncedHeight;
    if (synced < state.birthdayHeight) return 0;
    for (let height = Math.min(synced, tip.height); ; height--) {
      const remembered = state.recentBlocks.find((b) => b.height === height);
      if (!remembered) break; // past the remembered window (or the birthday): rescan everything
      const block = await this.#backend.getBlock(height);
      if (block.hash === remembered.hash) {
        if (height < synced) rollbackTo(state, height);
        return synced - height;
      }
    }
    rollbackTo(state, state.birthdayHeight - 1);
    return synced - state.syncedHeight;
  }

  /**
   * Applies the blocks up to `tip`. Blocks carry no parent hash here, so a reorg in the middle of
   * the scan would leave blocks of two branches applied, which no later hash comparison could
   * see. So the scan only keeps what it has verified: the blocks up to a checkpoint are kept once
   * `tip` is still on the node's best chain (then every block fetched before it was an ancestor
   * of `tip`); on a failure or a changed chain the scan rolls back to the last checkpoint.
   * @returns false if the chain changed meanwhile: the sync must start over.
   * @throws ChainBackendError from the backend, after rolling back to the last checkpoint.
   */
  async #scanTo(tip: BlockTip, progress: ScanProgress): Promise<boolean> {
    const state = this.#state;
    if (tip.height < state.birthdayHeight) return true;
    // The block at the synced height was just compared with the node's (or none is applied).
    let verified = state.syncedHeight;
    const undo = (): void => {
      progress.rolledBack += state.syncedHeight - verified;
      rollbackTo(state, verified);
    };
    try {
      while (state.syncedHeight < tip.height) {
        const first = state.syncedHeight + 1;
        const count = Math.min(BLOCK_FETCH_BATCH, tip.height - first + 1);
        const blocks = await Promise.all(Array.from({ length: count }, (_, i) => this.#backend.getBlock(first + i)));
        for (const block of blocks) {
          if (block.height !== state.syncedHeight + 1) {
            throw new Error(`backend returned block ${block.height} for height ${state.syncedHeight + 1}`);
          }
          applyBlock(state, block, this.#book);
          progress.scanned++;
        }
        if (state.syncedHeight < tip.height && state.syncedHeight - verified >= SCAN_CHECKPOINT_BLOCKS) {
          if ((await this.#backend.getBlock(tip.height)).hash !== tip.hash) {
            undo();
            return false;
          }
          verified = state.syncedHeight;
        }
      }
    } catch (err) {
      undo();
      throw err;
    }
    if (state.recentBlocks.at(-1)?.hash !== tip.hash) {
      undo();
      return false;
    }
    return true;
  }

  /** @returns the txids of own unconfirmed transactions the node lost and refused again. */
  async #recheckOwnMempool(): Promise<string[]> {
    const lost: string[] = [];
    for (const own of this.#state.ownTxs) {
      if (own.status.type !== 'mempool') continue;
      if ((await this.#backend.getTransaction(own.txid)) !== null) continue;
      try {
        await this.#backend.broadcast(own.hex);
      } catch (err) {
        if (!(err instanceof BroadcastRejectedError)) throw err;
        lost.push(own.txid);
      }
    }
    if (lost.length === 0) return [];
    removeMempoolLayer(this.#state);
    this.#state.ownTxs = this.#state.ownTxs.filter((t) => !lost.includes(t.txid));
    const dependants = applyMempoolLayer(this.#state, this.#book);
    pruneReservations(this.#state);
    return [...lost, ...dependants];
  }

  #exclusive<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.#lock.then(operation);
    this.#lock = result.catch(() => undefined);
    return result;
  }
}
