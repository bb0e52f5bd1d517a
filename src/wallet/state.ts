/**
 * The wallet's whole state as one plain object, and the functions that move it forward (no I/O).
 *
 * {@link WalletState} holds only data (strings, numbers, bigints, arrays, records), no keys, no
 * class instances: a store can persist it as it is (JSON needs a bigint replacer) and the wallet
 * reopens from it with the seed. It is two layers:
 * - the confirmed layer, built only from blocks: coins created and spent on the best chain, with
 *   the heights that let a reorg undo them ({@link rollbackTo});
 * - the mempool layer, the effects of the wallet's own unconfirmed transactions (change spendable,
 *   inputs spent), rebuilt from {@link WalletState.ownTxs} on top of the confirmed layer whenever
 *   the confirmed layer changes ({@link removeMempoolLayer}, {@link applyMempoolLayer}). Rebuilding
 *   instead of patching is what makes a conflict simple: an own transaction whose input a block
 *   spent differently cannot be re-applied, so it is dropped with everything that depended on it.
 *
 * Incoming payments are seen in blocks only, never unconfirmed: nobody can double-spend a coin
 * the wallet counts, except the wallet itself.
 *
 * These functions mutate the state they are given; its owner (the Wallet) serialises access.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { hashToTxid } from '../protocol/bytes.js';
import { Transaction } from 'bitcoinjs-lib';
import type { NetworkName } from '../protocol/network.js';
import { COINBASE_MATURITY } from './coin-selection.js';
import type { KeyChain } from './keys.js';

export const WALLET_STATE_VERSION = 1;
/**
 * How many recent block hashes are remembered to find the fork point of a reorg, and for how
 * long spent coins are kept so a reorg can unspend them. A deeper reorg falls back to a rescan
 * from the birthday height: slow, but never wrong.
 */
export const REORG_WINDOW = 100;

/** Which key an output pays. */
export interface KeyRef {
  readonly chain: KeyChain;
  readonly index: number;
}

export type CoinOrigin =
  | { readonly type: 'confirmed'; readonly height: number }
  /** An output of one of the wallet's own unconfirmed transactions. */
  | { readonly type: 'own-mempool'; readonly txid: string };

export type CoinSpend =
  | { readonly type: 'unspent' }
  | { readonly type: 'own-mempool'; readonly txid: string }
  | { readonly type: 'confirmed'; readonly txid: string; readonly height: number };

/** An output that pays one of the wallet's P2WPKH scripts. */
export interface WalletCoin {
  readonly txid: string;
  readonly vout: number;
  readonly valueSat: bigint;
  readonly scriptHex: string;
  readonly key: KeyRef;
  readonly coinbase: boolean;
  origin: CoinOrigin;
  spend: CoinSpend;
}

export type OwnTxStatus = { readonly type: 'mempool' } | { readonly type: 'confirmed'; readonly height: number };

/** A transaction the wallet built and broadcast. Kept until it is {@link REORG_WINDOW} deep. */
export interface OwnTx {
  readonly txid: string;
  readonly hex: string;
  status: OwnTxStatus;
}

/** A transaction `fund` signed but nobody broadcast yet: its inputs are not offered again. */
export interface Reservation {
  readonly txid: string;
  readonly hex: string;
  /** Outpoint keys (`txid:vout`) of its inputs. */
  readonly inputs: readonly string[];
}

/** Where a BIP84 chain stands: the next index to hand out, the highest seen paid on chain. */
export interface ChainCursor {
  nextIndex: number;
  /** -1 while no output to this chain has been seen. */
  highestUsed: number;
}

export interface BlockRef {
  readonly height: number;
  readonly hash: string;
}

export interface WalletState {
  readonly version: typeof WALLET_STATE_VERSION;
  readonly network: NetworkName;
  /** No block below this height is scanned: the seed had no coins before it. */
  readonly birthdayHeight: number;
  /** How many unused addresses past the last used one each chain watches. */
  readonly gapLimit: number;
  /** Height of the last block applied; `birthdayHeight - 1` before the first sync. */
  syncedHeight: number;
  /** Hashes of the last applied blocks, ascending, at most {@link REORG_WINDOW}. */
  recentBlocks: BlockRef[];
  keys: { receive: ChainCursor; change: ChainCursor; nextChannelIndex: number };
  /** Keyed by {@link outpointKey}. */
  coins: Record<string, WalletCoin>;
  /** In the order they were broadcast, so a child always comes after its parent. */
  ownTxs: OwnTx[];
  reservations: Reservation[];
}

/** Which scripts are the wallet's; extends its lookahead as addresses get used. */
export interface ScriptBook {
  /** @returns the key `scriptHex` pays, or undefined if it is not a watched script. */
  lookup(scriptHex: string): KeyRef | undefined;
  /** Records that `ref` was paid. @returns true if that made new scripts watched. */
  markUsed(ref: KeyRef): boolean;
}

export interface Balance {
  /** Confirmed coins spendable now (coinbase ones only once mature), not spent by an own tx. */
  readonly confirmedSat: bigint;
  /** Coinbase outputs with fewer than 100 confirmations. */
  readonly immatureSat: bigint;
  /** Outputs of the wallet's own unconfirmed transactions (its change). */
  readonly unconfirmedSat: bigint;
}

/** @returns the key of an outpoint in {@link WalletState.coins}: `txid:vout`. */
export function outpointKey(txid: string, vout: number): string {
  return `${txid}:${vout}`;
}

/** @returns a new, empty state. */
export function createWalletState(network: NetworkName, birthdayHeight: number, gapLimit: number): WalletState {
  return {
    version: WALLET_STATE_VERSION,
    network,
    birthdayHeight,
    gapLimit,
    syncedHeight: birthdayHeight - 1,
    recentBlocks: [],
    keys: { receive: { nextIndex: 0, highestUsed: -1 }, change: { nextIndex: 0, highestUsed: -1 }, nextChannelIndex: 0 },
    coins: {},
    ownTxs: [],
    reservations: [],
  };
}


/**
 * Adds the outputs of `tx` that pay the wallet. Loops until no output is new, because paying one
 * address can extend the lookahead to a script another output of the same transaction pays.
 */
function addOutputs(state: WalletState, tx: Transaction, txid: string, origin: CoinOrigin, book: ScriptBook): void {
  const coinbase = tx.isCoinbase();
  const seen = new Set<number>();
  let grew = true;
  while (grew) {
    grew = false;
    tx.outs.forEach((out, vout) => {
      if (seen.has(vout)) return;
      const scriptHex = bytesToHex(out.script);
      const key = book.lookup(scriptHex);
      if (!key) return;
      seen.add(vout);
      state.coins[outpointKey(txid, vout)] = { txid, vout, valueSat: out.value, scriptHex, key, coinbase, origin, spend: { type: 'unspent' } };
      if (book.markUsed(key)) grew = true;
    });
  }
}

/**
 * Applies block `block` (the next one: `syncedHeight + 1`) to the confirmed layer. Call with the
 * mempool layer removed.
 * @throws RangeError if the block is not the next height.
 */
export function applyBlock(state: WalletState, block: { readonly height: number; readonly hash: string; readonly txs: readonly string[] }, book: ScriptBook): void {
  if (block.height !== state.syncedHeight + 1) {
    throw new RangeError(`block ${block.height} does not follow synced height ${state.syncedHeight}`);
  }
  for (const hex of block.txs) {
    const tx = Transaction.fromHex(hex);
    const txid = tx.getId();
    if (!tx.isCoinbase()) {
      for (const input of tx.ins) {
        const coin = state.coins[outpointKey(hashToTxid(input.hash), input.index)];
        if (coin) coin.spend = { type: 'confirmed', txid, height: block.height };
      }
    }
    addOutputs(state, tx, txid, { type: 'confirmed', height: block.height }, book);
    const own = state.ownTxs.find((t) => t.txid === txid);
    if (own) own.status = { type: 'confirmed', height: block.height };
  }
  state.syncedHeight = block.height;
  state.recentBlocks.push({ height: block.height, hash: block.hash });
  if (state.recentBlocks.length > REORG_WINDOW) state.recentBlocks.splice(0, state.recentBlocks.length - REORG_WINDOW);
  prune(state);
}

/** Forgets what no reorg within {@link REORG_WINDOW} can bring back. */
function prune(state: WalletState): void {
  const deepHeight = state.syncedHeight - REORG_WINDOW;
  for (const [key, coin] of Object.entries(state.coins)) {
    if (coin.spend.type === 'confirmed' && coin.spend.height <= deepHeight) delete state.coins[key];
  }
  state.ownTxs = state.ownTxs.filter((t) => !(t.status.type === 'confirmed' && t.status.height <= deepHeight));
}

/**
 * Undoes every block above `height` in the confirmed layer: coins they created disappear, spends
 * they made are undone, own transactions they confirmed are unconfirmed again. Call with the
 * mempool layer removed. `rollbackTo(state, birthdayHeight - 1)` empties the confirmed layer for
 * a full rescan.
 */
export function rollbackTo(state: WalletState, height: number): void {
  for (const [key, coin] of Object.entries(state.coins)) {
    if (coin.origin.type === 'confirmed' && coin.origin.height > height) delete state.coins[key];
    else if (coin.spend.type === 'confirmed' && coin.spend.height > height) coin.spend = { type: 'unspent' };
  }
  for (const own of state.ownTxs) {
    if (own.status.type === 'confirmed' && own.status.height > height) own.status = { type: 'mempool' };
  }
  state.recentBlocks = state.recentBlocks.filter((b) => b.height <= height);
  state.syncedHeight = height;
}

/** Takes the effects of the wallet's own unconfirmed transactions out of the coins. */
export function removeMempoolLayer(state: WalletState): void {
  for (const [key, coin] of Object.entries(state.coins)) {
    if (coin.origin.type === 'own-mempool') delete state.coins[key];
    else if (coin.spend.type === 'own-mempool') coin.spend = { type: 'unspent' };
  }
}

/**
 * Re-applies the wallet's own unconfirmed transactions, in broadcast order. One whose input is
 * gone or already spent (a block spent it differently, or its parent was dropped) can never
 * confirm: it is dropped from {@link WalletState.ownTxs}.
 * @returns the txids dropped.
 */
export function applyMempoolLayer(state: WalletState, book: ScriptBook): string[] {
  const dropped: string[] = [];
  state.ownTxs = state.ownTxs.filter((own) => {
    if (own.status.type !== 'mempool') return true;
    if (applyOwnTx(state, own, book)) return true;
    dropped.push(own.txid);
    return false;
  });
  return dropped;
}

/** Applies one own unconfirmed transaction; false (and no change) if an input is not available. */
function applyOwnTx(state: WalletState, own: OwnTx, book: ScriptBook): boolean {
  const tx = Transaction.fromHex(own.hex);
  const inputs = tx.ins.map((input) => state.coins[outpointKey(hashToTxid(input.hash), input.index)]);
  if (inputs.some((coin) => coin === undefined || coin.spend.type !== 'unspent')) return false;
  for (const coin of inputs) coin!.spend = { type: 'own-mempool', txid: own.txid };
  addOutputs(state, tx, own.txid, { type: 'own-mempool', txid: own.txid }, book);
  return true;
}

/**
 * Records that the wallet's own transaction `hex` is in the mempool: its inputs are spent, its
 * outputs to the wallet spendable, its reservation (if any) is released.
 * @returns false if an input is not an unspent coin of the wallet (nothing changed then).
 */
export function recordOwnBroadcast(state: WalletState, hex: string, book: ScriptBook): boolean {
  const txid = Transaction.fromHex(hex).getId();
  if (state.ownTxs.some((t) => t.txid === txid)) return true;
  const own: OwnTx = { txid, hex, status: { type: 'mempool' } };
  // The reservation is what kept the inputs from being selected again; the spend now does.
  const reservations = state.reservations;
  state.reservations = reservations.filter((r) => r.txid !== txid);
  if (!applyOwnTx(state, own, book)) {
    state.reservations = reservations;
    return false;
  }
  state.ownTxs.push(own);
  return true;
}

/**
 * Drops reservations that can no longer be broadcast: an input is gone or spent (by the
 * reserved transaction itself, which someone else broadcast, or by another one).
 */
export function pruneReservations(state: WalletState): void {
  state.reservations = state.reservations.filter((r) => r.inputs.every((key) => state.coins[key]?.spend.type === 'unspent'));
}

/** @returns confirmations of `coin` at the state's synced height (0 for own unconfirmed). */
export function coinConfirmations(state: WalletState, coin: WalletCoin): number {
  return coin.origin.type === 'confirmed' ? state.syncedHeight - coin.origin.height + 1 : 0;
}

/** @returns the balance as of the last synced block plus the own unconfirmed transactions. */
export function balanceOf(state: WalletState): Balance {
  let confirmedSat = 0n;
  let immatureSat = 0n;
  let unconfirmedSat = 0n;
  for (const coin of Object.values(state.coins)) {
    if (coin.spend.type !== 'unspent') continue;
    if (coin.origin.type === 'own-mempool') unconfirmedSat += coin.valueSat;
    else if (coin.coinbase && coinConfirmations(state, coin) < COINBASE_MATURITY) immatureSat += coin.valueSat;
    else confirmedSat += coin.valueSat;
  }
  return { confirmedSat, immatureSat, unconfirmedSat };
}

/** @returns the unspent coins no reservation holds, in a stable order. */
export function unreservedCoins(state: WalletState): WalletCoin[] {
  const reserved = new Set(state.reservations.flatMap((r) => r.inputs));
  return Object.entries(state.coins)
    .filter(([key, coin]) => coin.spend.type === 'unspent' && !reserved.has(key))
    .map(([, coin]) => coin);
}

/**
 * One state for two saved states of the same seed (a data dir that kept a wallet in payer.db and
 * another in duplex.db before they became one). Which one wins: neither, wholly.
 * - The chain layer (coins, recent blocks, synced height) is the **newer sync's** (`ours` on a
 *   tie): both scanned the same chain for the same scripts, so the further one knows at least
 *   what the other knew of the chain. Different birthdays or gap limits take the lower birthday
 *   and the larger gap limit with an empty chain layer: a rescan, slow but never wrong.
 * - **Reservations of both** are kept (by id): each guards coins one side's channel is funding
 *   with, a transaction not yet broadcast or a duplex contribution. Dropping one would let the
 *   other side select the same coin. A sync prunes those whose coins are spent.
 * - **Own unconfirmed transactions of both** are kept (in broadcast order, ours first) and the
 *   mempool layer rebuilt, so neither side's unconfirmed spend is selected again; one that
 *   conflicts with the chain layer is dropped as the wallet always does.
 * - **Key cursors take the maximum**: no receive, change or channel/duplex key index is handed
 *   out twice (channel and duplex keys share one counter on different derivation paths).
 * @param bookFor the script book over the merged state (the wallet's AddressBook).
 * @throws RangeError if the states are of different networks.
 */
export function mergeWalletStates(ours: WalletState, theirs: WalletState, bookFor: (state: WalletState) => ScriptBook): WalletState {
  if (ours.network !== theirs.network) throw new RangeError(`cannot merge wallet states of ${ours.network} and ${theirs.network}`);
  const sameScan = ours.birthdayHeight === theirs.birthdayHeight && ours.gapLimit === theirs.gapLimit;
  const newer = theirs.syncedHeight > ours.syncedHeight ? theirs : ours;
  const base: WalletState = sameScan
    ? structuredClone(newer)
    : createWalletState(ours.network, Math.min(ours.birthdayHeight, theirs.birthdayHeight), Math.max(ours.gapLimit, theirs.gapLimit));
  const cursor = (a: ChainCursor, b: ChainCursor): ChainCursor => ({ nextIndex: Math.max(a.nextIndex, b.nextIndex), highestUsed: Math.max(a.highestUsed, b.highestUsed) });
  base.keys = {
    receive: cursor(ours.keys.receive, theirs.keys.receive),
    change: cursor(ours.keys.change, theirs.keys.change),
    nextChannelIndex: Math.max(ours.keys.nextChannelIndex, theirs.keys.nextChannelIndex),
  };
  const reservations = new Map<string, Reservation>();
  for (const r of [...ours.reservations, ...theirs.reservations]) if (!reservations.has(r.txid)) reservations.set(r.txid, structuredClone(r));
  base.reservations = [...reservations.values()];
  removeMempoolLayer(base);
  const known = new Set(base.ownTxs.map((t) => t.txid));
  for (const own of [...ours.ownTxs, ...theirs.ownTxs]) {
    if (own.status.type !== 'mempool' || known.has(own.txid)) continue;
    known.add(own.txid);
    base.ownTxs.push(structuredClone(own));
  }
  // The chain layer is empty on a rescan: the own transactions wait in ownTxs for their coins.
  if (sameScan) applyMempoolLayer(base, bookFor(base));
  return base;
}
