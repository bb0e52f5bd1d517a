/**
 * One side of duplex channels on disk: a wallet from the data dir's seed (its state kept in
 * `duplex.db`), the channel records, the peer and its chain watcher. The payee app runs side B,
 * the payer commands side A.
 */
import path from 'node:path';
import type { ChainBackend } from '../chain/backend.js';
import { secp256k1 } from '../crypto/index.js';
import { DuplexPeer } from '../duplex/duplex-peer.js';
import { DuplexStore } from '../duplex/duplex-store.js';
import { DuplexWatcher } from '../duplex/duplex-watcher.js';
import type { DuplexRole } from '../protocol/duplex-tx.js';
import { duplexPolicy, type DuplexPolicy } from '../protocol/duplex-update.js';
import type { NetworkName } from '../protocol/network.js';
import { decodeState, encodeState } from '../store/codec.js';
import type { WalletState } from '../wallet/state.js';
import { Wallet } from '../wallet/wallet.js';
import { ensurePrivateDir, loadOrCreateSeed } from './files.js';

const META_WALLET = 'wallet';

export interface DuplexSideOptions {
  readonly role: DuplexRole;
  readonly network: NetworkName;
  readonly backend: ChainBackend;
  readonly dataDir: string;
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
  ensurePrivateDir(options.dataDir);
  const seed = loadOrCreateSeed(path.join(options.dataDir, 'seed'));
  const store = DuplexStore.open(path.join(options.dataDir, 'duplex.db'));
  const saved = store.getMeta(META_WALLET);
  const secp = secp256k1();
  // The payee's duplex wallet is new with this feature: on a real chain it starts at today's tip
  // rather than scanning from genesis (the payer's wallet, like PayerApp's, holds older coins).
  const birthdayHeight = saved === undefined && options.role === 'B' && options.network !== 'regtest' ? (await options.backend.getTip()).height : undefined;
  const wallet = await Wallet.open({
    seed,
    network: options.network,
    backend: options.backend,
    secp,
    ...(saved === undefined ? (birthdayHeight === undefined ? {} : { birthdayHeight }) : { state: decodeState<WalletState>(saved) }),
  });
  const saveWallet = () => store.putMeta(META_WALLET, encodeState(wallet.state()));
  saveWallet(); // the wallet syncs in refresh(), which start() runs at once
  const peer = new DuplexPeer({
    role: options.role,
    network: options.network,
    secp,
    policy: duplexPolicy({ network: options.network, ...options.policy }),
    backend: options.backend,
    wallet,
    store,
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
        saveWallet();
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
      saveWallet();
      store.close();
    },
  };
}
