/**
 * What the state machines ask their drivers to do. Effects are data; a driver carries them out
 * in order, and an effect that follows a `persist` runs only after that persist is durable (this
 * is how "store before acknowledging" and "store the refund before showing the funding" are
 * guaranteed). The runner of every driver is src/driver/effect-runner.ts.
 *
 * Effects per role. Each machine's step returns only its own role's effects ({@link PayeeEffect},
 * {@link PayerEffect}), so each driver's `carryOut` is an exhaustive switch over what its machine
 * can ask, ending in a never-check: a new effect that a driver does not carry out is a type
 * error, not a silent no-op. The pieces every role shares ({@link PersistEffect},
 * {@link SendEffect}, {@link PeerErrorEffect}) are exported one by one so that another role's
 * union (the duplex machine's) is built from them too.
 */
import type { Message, MessageOf } from './messages.js';

/** Store the new state durably before running the effects after this one. */
export type PersistEffect = { readonly type: 'persist' };
/** The one `persist` value: effects are data, and this one carries nothing (no object per payment). */
export const PERSIST: PersistEffect = Object.freeze({ type: 'persist' });
/** A step with nothing to do (an acknowledgement on the payer): one frozen empty list. */
export const NO_EFFECTS: readonly never[] = Object.freeze([]);
/** Send a message to the peer. */
export type SendEffect = { readonly type: 'send'; readonly message: Message };
/** The peer reported an error; the driver surfaces it to the user. */
export type PeerErrorEffect = { readonly type: 'peer-error'; readonly message: MessageOf<'error'> };

/**
 * Payee: hand the funding transaction to the network (the mempool must accept it). Closes are
 * broadcast by the payee's closer, which follows the funding outpoint.
 */
export type BroadcastEffect = { readonly type: 'broadcast'; readonly txid: string; readonly txHex: string };
/** Payee: tell the state machine (input `confirmed`) once the funding has `confirmations` confirmations. */
export type WatchConfirmationsEffect = { readonly type: 'watch-confirmations'; readonly txid: string; readonly confirmations: number };
/** Payee: the payer asked for a close; the driver picks a fee rate and sends input `close`. */
export type CloseRequestedEffect = { readonly type: 'close-requested' };

/** Payer: ask the wallet for a signed, unbroadcast transaction paying `valueSat` to `script`. */
export type CreateFundingEffect = { readonly type: 'create-funding'; readonly script: Uint8Array; readonly valueSat: bigint };
/** Payer: the channel was abandoned before funding; unreserve the wallet's coins. */
export type ReleaseFundingEffect = { readonly type: 'release-funding'; readonly txid: string };

/** Everything the payee machine may ask of its driver (src/payee/payee-service.ts). */
export type PayeeEffect = PersistEffect | SendEffect | PeerErrorEffect | BroadcastEffect | WatchConfirmationsEffect | CloseRequestedEffect;
/** Everything the payer machine may ask of its driver (src/payer/payer-client.ts); refunds are the watcher's. */
export type PayerEffect = PersistEffect | SendEffect | PeerErrorEffect | CreateFundingEffect | ReleaseFundingEffect;

/** One step of a machine of role effects `E`: its new state and what the driver must do. */
export interface Step<S, E extends { readonly type: string }> {
  readonly state: S;
  readonly effects: readonly E[];
}

/**
 * The end of an exhaustive switch over a role's effects: a type error when a case is missing,
 * and a loud failure if a value outside the union gets here at run time.
 * @throws TypeError always.
 */
export function unknownEffect(effect: never): never {
  throw new TypeError(`no driver case for effect ${(effect as { type?: unknown }).type as string}`);
}
