/** What a duplex peer is built with, and what opening a channel asks for. */
import type { ChainBackend } from '../chain/backend.js';
import type { Secp256k1 } from '../crypto/secp256k1.js';
import type { DuplexRole } from '../protocol/duplex-tx.js';
import type { DuplexPolicy } from '../protocol/duplex-update.js';
import type { NetworkName } from '../protocol/network.js';
import type { PeerLink } from '../transport/link.js';
import type { Wallet } from '../wallet/wallet.js';
import type { DuplexStatePort } from './duplex-store.js';

export interface DuplexPeerOptions {
  readonly role: DuplexRole;
  readonly network: NetworkName;
  readonly secp: Secp256k1;
  readonly policy: DuplexPolicy;
  readonly backend: ChainBackend;
  readonly wallet: Wallet;
  readonly store: DuplexStatePort;
  /** Saves the wallet's state (its key counter and reservations) wherever the app keeps it. */
  readonly saveWallet: () => Promise<void> | void;
  /** Fee rate when the node has no estimate (always on a fresh regtest chain). */
  readonly fallbackFeeRateSatPerVb: number;
  /** How long pay/close/open wait for the peer's answer, ms. Default 30,000. */
  readonly answerTimeoutMs?: number;
  readonly log?: (line: string) => void;
}

export interface OpenDuplexRequest {
  readonly link: PeerLink;
  readonly contributionASat: bigint;
  /** What A asks B to put in; 0 (the default) for a channel A funds alone. */
  readonly contributionBSat?: bigint;
  readonly fundingFeeRateSatPerVb?: number;
  readonly stateFeeRateSatPerVb?: number;
}
