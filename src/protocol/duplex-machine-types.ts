/**
 * The vocabulary of the duplex machine (duplex-machine.ts): what it needs from its driver (the
 * context), what comes in (inputs), and what it asks the driver to do (effects).
 *
 * Everything the machine needs from outside comes in an input or the context: the tip height,
 * fee rates, the wallet's coin selections and signatures, the node's view of the other side's
 * coins. The machine never reads a clock, the node or the wallet; it asks with an effect
 * (`contribute`, `check-inputs`, `allocate-key`, `sign-funding-inputs`, `publish-funding`) and the
 * driver feeds the answer back as an input, as the payer's `create-funding` → `funding-created`.
 */
import type { Secp256k1 } from '../crypto/secp256k1.js';
import type { FundingInput, FundingOutput } from './duplex-funding.js';
import type { CloseRecord, DuplexChannelState, Settlement, SignedState } from './duplex-state.js';
import type { DuplexRole } from './duplex-tx.js';
import type { DuplexPolicy } from './duplex-update.js';
import type { PeerErrorEffect, PersistEffect, SendEffect } from './effects.js';
import type { ProtocolError } from './errors.js';
import type { Message } from './messages.js';
import type { NetworkName } from './network.js';

export interface DuplexContext {
  readonly role: DuplexRole;
  readonly network: NetworkName;
  readonly secp: Secp256k1;
  readonly policy: DuplexPolicy;
  /** Signs `digest` with our duplex key `keyIndex` (deterministic derivation: a pure function). */
  readonly sign: (keyIndex: number, digest: Uint8Array) => Uint8Array;
}

/** What the node says of an outpoint the other side put into a funding (the driver looks it up). */
export interface InputFact {
  readonly txid: string;
  readonly vout: number;
  readonly state: 'unspent' | 'spent' | 'unknown';
  /** The output's script (hex) and value, when unspent. */
  readonly scriptHex: string;
  readonly valueSat: bigint;
  /** Whether it is a coin of this side's wallet (an opener naming our coins is refused). */
  readonly ownCoin: boolean;
}

/** A witness of a funding input (the wallet signs its own inputs). */
export interface InputWitness {
  readonly index: number;
  readonly stack: readonly Uint8Array[];
}

/** A's request to open, with what the driver read and allocated for it. */
export interface OpenRequest {
  readonly tempId: string;
  readonly tipHeight: number;
  readonly keyIndex: number;
  readonly publicKey: Uint8Array;
  /** A's payout script (also its fee reserve's). */
  readonly payoutScript: Uint8Array;
  readonly contributionASat: bigint;
  readonly contributionBSat: bigint;
  readonly fundingFeeRateSatPerVb: number;
  readonly stateFeeRateSatPerVb: number;
}

/** What an error from the peer names: a state index (`/i`) or a pay request (`#id`). */
export interface ErrorAbout {
  readonly index?: number;
  readonly requestId?: string;
}

export type DuplexInput =
  /**
   * A message from the peer, with the tip the driver read before the step (its awaits come
   * first, so nothing the step checks changes before it signs), and, for `duplex-close` and
   * `duplex-rollover`, the lowest rate this side signs a close at (half its fee estimate).
   */
  | {
      readonly type: 'message';
      readonly message: Message;
      readonly tipHeight: number;
      readonly closeFloorSatPerVb: number | null;
      /** The challenge this side's transport sent first on the connection the message came on (a resume must sign it). */
      readonly challenge?: Uint8Array;
    }
  /** The wallet selected and reserved coins for our contribution: its inputs and our outputs after the funding output. */
  | { readonly type: 'contributed'; readonly inputs: readonly FundingInput[]; readonly outputs: readonly FundingOutput[] }
  /** The wallet cannot put in what was asked (its error code). */
  | { readonly type: 'contribute-failed'; readonly reason: string }
  /** The node's view of the outpoints a `check-inputs` asked about, in its order. */
  | { readonly type: 'inputs-checked'; readonly inputs: readonly InputFact[] }
  /** B's key and payout script for an opening (`allocate-key`). */
  | { readonly type: 'key-allocated'; readonly keyIndex: number; readonly publicKey: Uint8Array; readonly payoutScript: Uint8Array }
  /** The wallet's witnesses for the inputs `sign-funding-inputs` named (`txHex`: the transaction it named). */
  | { readonly type: 'funding-inputs-signed'; readonly txHex: string; readonly witnesses: readonly InputWitness[] }
  /** A: the node took the funding (or may have it: a lost connection is not a refusal). */
  | { readonly type: 'funding-published' }
  /** A: the node refused the funding while A's coins are unspent: it can never happen. */
  | { readonly type: 'funding-refused'; readonly reason: string }
  /** A pays (`payer` A) or proposes B's requested payment (`payer` B, with its request). */
  | { readonly type: 'pay'; readonly payer: DuplexRole; readonly amountSat: bigint; readonly requestId: string | null; readonly tipHeight: number }
  /** B asks A to propose a state in which B pays `amountSat` (`requestId`: fresh random bytes). */
  | { readonly type: 'pay-back'; readonly amountSat: bigint; readonly requestId: string }
  /** A, after (re)connecting: tell B the newest index (signed over the connection's `challenge`) and resend what B may have missed. */
  | { readonly type: 'resume'; readonly challenge: Uint8Array }
  /** Close cooperatively at `feeRateSatPerVb`. */
  | { readonly type: 'close'; readonly feeRateSatPerVb: number; readonly tipHeight: number }
  /** A: roll the channel over into a new one at `feeRateSatPerVb` (L0 planned from the tip). */
  | { readonly type: 'rollover'; readonly feeRateSatPerVb: number; readonly tipHeight: number }
  /** The peer refused something of ours; `rolloverAwaited`: a rollover call waits for B's answer. */
  | { readonly type: 'peer-error'; readonly code: string; readonly text: string; readonly about: ErrorAbout; readonly tipHeight: number; readonly rolloverAwaited: boolean }
  /** The funding has its confirmations (at `height`, when the node said). */
  | { readonly type: 'funding-confirmed'; readonly height: number | null }
  /** Close alone: publish the newest state as soon as it is final. */
  | { readonly type: 'force-close' }
  /** The unilateral close (this version) is in the node since `height`. */
  | { readonly type: 'close-broadcast'; readonly height: number }
  /** Another acceptable spend of the funding was first seen in the mempool at `height`. */
  | { readonly type: 'rival-seen'; readonly height: number }
  /** The watcher replaced the published state with a version carrying a fee coin. */
  | { readonly type: 'bumped'; readonly txid: string; readonly txHex: string; readonly feeSat: bigint; readonly feeRateSatPerVb: number; readonly height: number; readonly reservation: string }
  /** The funding output is spent by a confirmed transaction. */
  | { readonly type: 'settled'; readonly settlement: Settlement }
  /** B: its funding coins went back to the wallet (the funding never reached the node). */
  | { readonly type: 'inputs-released' }
  /** The opening stopped, or its funding can never confirm. */
  | { readonly type: 'abort'; readonly reason: string };

/** The answers calls of the driver wait for (`countersign:<i>`, `request:<id>`, `opened`, `closed`, `rolled`, `resumed`). */
export type WaiterKey = string;

export type DuplexEffect =
  | SendEffect
  | PersistEffect
  | PeerErrorEffect
  /** Send if the peer is connected; a pay request queued while it is away goes on resume. */
  | { readonly type: 'send-if-connected'; readonly message: Message }
  /** Broadcast a close or rollover both signed; a failure is logged (the watcher retries). */
  | { readonly type: 'broadcast'; readonly txid: string; readonly txHex: string }
  /** A: broadcast the signed funding; answer `funding-published` or `funding-refused`. */
  | { readonly type: 'publish-funding'; readonly txid: string; readonly txHex: string; readonly firstOwnInput: FundingInput }
  /** Store a new channel together with this one, in the same durable write (a rollover's new channel). */
  | { readonly type: 'create'; readonly state: DuplexChannelState }
  /** Ask the wallet to select and reserve coins paying `outputs` (answer `contributed`). */
  | { readonly type: 'contribute'; readonly reservation: string; readonly outputs: readonly FundingOutput[]; readonly feeRateSatPerVb: number }
  /** Give a wallet reservation back (an opening that will not happen, a fee coin no longer in use). */
  | { readonly type: 'release'; readonly reservation: string }
  /** Look the other side's funding inputs up on the node (answer `inputs-checked`). */
  | { readonly type: 'check-inputs'; readonly inputs: readonly { readonly txid: string; readonly vout: number }[] }
  /** B: allocate a duplex key and a payout address (answer `key-allocated`). */
  | { readonly type: 'allocate-key' }
  /** Sign our own inputs of the funding `txHex` (answer `funding-inputs-signed`). */
  | { readonly type: 'sign-funding-inputs'; readonly txHex: string; readonly inputIndexes: readonly number[] }
  /** Messages of this channel go to the link the current message came on (it proved to be the peer's). */
  | { readonly type: 'adopt-link' }
  /** The link proved to belong to a payer (the transport stops counting it as a stranger's). */
  | { readonly type: 'link-proven' }
  /** Drop the channel from memory and the store (B signed nothing for it). */
  | { readonly type: 'forget' }
  /** A (on B's pay request): propose that payment now (the driver runs `pay`, rolling over first if it must). */
  | { readonly type: 'propose-request'; readonly amountSat: bigint; readonly requestId: string }
  /** The call waiting on `key` gets `value`. */
  | { readonly type: 'resolve'; readonly key: WaiterKey; readonly value: SignedState | string | number | undefined }
  /** The call waiting on `key` fails with `error`. */
  | { readonly type: 'reject'; readonly key: WaiterKey; readonly error: ProtocolError }
  /** Every call waiting on this channel fails, except queued pay requests (they may still be applied). */
  | { readonly type: 'reject-all'; readonly error: ProtocolError }
  | { readonly type: 'log'; readonly line: string };

export interface DuplexStep {
  readonly state: DuplexChannelState;
  readonly effects: readonly DuplexEffect[];
}

export type { CloseRecord };
