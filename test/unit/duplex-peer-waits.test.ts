/**
 * The duplex driver's waits for the peer's answers: one that fails before its caller awaits it
 * must reach the caller, never the process as an unhandled rejection (Node 20 exits on one).
 */
import { describe, expect, it } from 'vitest';
import type { ChainBackend } from '../../src/chain/backend.js';
import { secp256k1 } from '../../src/crypto/index.js';
import { DuplexPeer } from '../../src/duplex/duplex-peer.js';
import type { DuplexChannelState } from '../../src/protocol/duplex-state.js';
import { msg } from '../../src/protocol/messages.js';
import { duplexPolicy } from '../../src/protocol/duplex-update.js';
import type { PeerLink } from '../../src/transport/link.js';
import type { Wallet } from '../../src/wallet/wallet.js';

const secp = secp256k1();
const key = new Uint8Array(32).fill(7);
const sig = new Uint8Array(64);

/** A's open channel with state 4 proposed and not yet countersigned. */
const CHANNEL_ID = `${'aa'.repeat(32)}:0`;
const openWithPending = {
  type: 'Open', tempId: 't1', role: 'A', keyIndex: 0, fundingFeeRateSatPerVb: 1, minFundingConfirmations: 1, openedHeight: 1, openedBy: null, ownInputs: [], ownOutputs: [],
  channelId: CHANNEL_ID, terms: {}, fundingTxHex: '', fundingConfirmed: true, fundingHeight: 1, fundingSignedHeight: null, ownInputsReleased: false,
  current: { index: 3, balanceASat: 1000n, balanceBSat: 0n, sigA: sig, sigB: sig },
  pending: { index: 4, balanceASat: 900n, balanceBSat: 100n, sigA: sig },
  refusedIndex: null, proposedRequests: [], rolloverProposal: null, payBackQueue: [], predecessorId: null, updates: 3, paidAtoBSat: 0n, paidBtoASat: 0n,
} as unknown as DuplexChannelState;

describe('duplex peer waits', () => {
  it('a resume B never answers rejects the resume, and the countersignature it also waited for does not crash the process', async () => {
    const peer = new DuplexPeer(
      {
        role: 'A',
        network: 'regtest',
        secp,
        policy: duplexPolicy({ network: 'regtest' }),
        backend: {} as ChainBackend,
        wallet: { duplexKey: () => ({ privateKey: key, publicKey: secp.publicKeyCreate(key) }) } as unknown as Wallet,
        store: { save: () => Promise.resolve(), delete: () => Promise.resolve(), loadAll: () => Promise.resolve([]) },
        saveWallet: () => undefined,
        fallbackFeeRateSatPerVb: 1,
        answerTimeoutMs: 50,
      },
      [openWithPending],
    );
    const silent = { send: () => undefined } as unknown as PeerLink; // B is gone again
    await expect(peer.resume(CHANNEL_ID, silent)).rejects.toThrow(/timed out after 50 ms waiting for the peer's connection challenge/);
    await peer.receive(msg('challenge', { challenge: new Uint8Array(32).fill(3) }), silent); // B greeted
    peer.connectionClosed(silent); // …and the connection dropped: that challenge is void
    await expect(peer.resume(CHANNEL_ID, silent)).rejects.toThrow(/timed out after 50 ms waiting for the peer's connection challenge/);
    await peer.receive(msg('challenge', { challenge: new Uint8Array(32).fill(4) }), silent); // the next connection's, then B went silent
    await expect(peer.resume(CHANNEL_ID, silent)).rejects.toThrow(/timed out after 50 ms waiting for B to answer the resume/);
    // The countersignature's wait timed out in the same timer turn, before anyone awaited it:
    // vitest fails the run on an unhandled rejection, so outliving the next turn is the check.
    await new Promise<void>((resolve) => setImmediate(resolve));
  });
});
