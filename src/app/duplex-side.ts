/**
 * One side of duplex channels on disk: the data dir's one wallet and one store (the records sit
 * beside the Spilman channels, the wallet state is the one Spilman funding uses too), the peer
 * and its chain watcher. The payee app runs side B on its own data dir; the payer commands run
 * side A on the payer's.
 */
import type { ChainBackend } from '../chain/backend.js';
import { secp256k1, type Secp256k1 } from '../crypto/index.js';
import { DuplexPeer } from '../duplex/duplex-peer.js';
import { duplexStatePort } from '../duplex/duplex-store.js';
import { DuplexWatcher } from '../duplex/duplex-watcher.js';
import type { DuplexRole } from '../protocol/duplex-tx.js';
import { duplexPolicy, type DuplexPolicy } from '../protocol/duplex-update.js';
import type { NetworkName } from '../protocol/network.js';
import { Wallet } from '../wallet/wallet.js';
import { loadWalletState, openDataDir, saveWalletState, type DataDir } from './data-dir.js';

export interface DuplexSideOptions {
  readonly role: DuplexRole;
  readonly network: NetworkName;
  readonly backend: ChainBackend;
  /** The side's data dir: A's is the payer's (payer.db), B's the payee's (payee.db). */
  readonly dataDir: string;
  /**
   * The data dir already opened by the app this side runs in (the payee app for B): its store and
   * lock are used and left open by {@link DuplexSide.close}. Without it the side opens the data
   * dir itself, and closes it.
   */
  readonly opened?: DataDir;
  /**
   * The data dir's wallet, already open in this process (createPayer's, for side A): one wallet
   * object per seed and store, or two would hand out the same keys and spend the same coins.
   * Without it the side opens the wallet from the store.
   */
  readonly wallet?: Wallet;
  readonly fallbackFeeRateSatPerVb: number;
  readonly policy?: Partial<DuplexPolicy>;
  readonly log: (line: string) => void;
}

export interface DuplexSide {
  readonly peer: DuplexPeer;
  readonly watcher: DuplexWatcher;
  readonly wallet: Wallet;
  /** Syncs the wallet and runs the watcher once (also done on every new tip once started). */
  refresh(): Promise<void>;
  /** Follows new tips: syncs the wallet and runs the watcher on each. */
  start(): void;
  close(): Promise<void>;
}

export async function openDuplexSide(options: DuplexSideOptions): Promise<DuplexSide> {
  const dir = options.opened ?? (await openDataDir(options.dataDir, { defaultDb: options.role === 'A' ? 'payer.db' : 'payee.db', log: options.log }));
  try {
    return await openSide(options, dir);
  } catch (err) {
    if (!options.opened) await dir.close().catch(() => undefined);
    throw err;
  }
}

async function openWallet(options: DuplexSideOptions, { store, seed }: DataDir, secp: Secp256k1): Promise<Wallet> {
  const saved = await loadWalletState(store);
  // The payee's wallet is new with duplex: on a real chain it starts at today's tip rather than
  // scanning from genesis (the payer's wallet, which Spilman funding uses too, holds older coins).
  const birthdayHeight = saved === undefined && options.role === 'B' && options.network !== 'regtest' ? (await options.backend.getTip()).height : undefined;
  return Wallet.open({
    seed,
    network: options.network,
    backend: options.backend,
    secp,
    ...(saved === undefined ? (birthdayHeight === undefined ? {} : { birthdayHeight }) : { state: saved }),
  });
}

async function openSide(options: DuplexSideOptions, dir: DataDir): Promise<DuplexSide> {
  const { store } = dir;
  const secp = secp256k1();
  const wallet = options.wallet ?? (await openWallet(options, dir, secp));
  const saveWallet = () => saveWalletState(store, wallet);
  await saveWallet(); // the wallet syncs in refresh(), which start() runs at once
  const peer = await DuplexPeer.open({
    role: options.role,
    network: options.network,
    secp,
    policy: duplexPolicy({ network: options.network, ...options.policy }),
    backend: options.backend,
    wallet,
    store: duplexStatePort(store),
    saveWallet,
    fallbackFeeRateSatPerVb: options.fallbackFeeRateSatPerVb,
    log: options.log,
  });
  const watcher = new DuplexWatcher(peer);
  let unsubscribe: (() => void) | null = null;
  let refreshing: Promise<void> | null = null;
  const refresh = () =>
    (refreshing ??= (async () => {
      try {
        await wallet.sync();
        await saveWallet();
        await watcher.check();
      } finally {
        refreshing = null;
      }
    })());
  return {
    peer,
    watcher,
    wallet,
    refresh,
    start() {
      unsubscribe ??= options.backend.subscribeTips(() => void refresh().catch((err: Error) => options.log(`duplex: refresh failed: ${err.message}`)));
      void refresh().catch((err: Error) => options.log(`duplex: refresh failed: ${err.message}`));
    },
    async close() {
      unsubscribe?.();
      await refreshing?.catch(() => undefined);
      try {
        await saveWallet();
      } finally {
        if (!options.opened) await dir.close();
      }
    },
  };
}
