/**
 * What the state machines ask their drivers to do. Effects are data; a driver carries them out
 * in order, and an effect that follows a `persist` runs only after that persist is durable (this
 * is how "store before acknowledging" and "store the refund before showing the funding" are
 * guaranteed).
 */
import type { Message } from './messages.js';

export type Effect =
  /** Send a message to the peer. */
  | { readonly type: 'send'; readonly message: Message }
  /** Store the new state durably before running the effects after this one. */
  | { readonly type: 'persist' }
  /**
   * Hand the funding transaction to the network (the mempool must accept it). Closes and refunds
   * are broadcast by the payee's closer and the payer's watcher, which follow the funding outpoint.
   */
  | { readonly type: 'broadcast'; readonly txid: string; readonly txHex: string }
  /** Tell the state machine (input `confirmed`) once the funding has `confirmations` confirmations. */
  | { readonly type: 'watch-confirmations'; readonly txid: string; readonly confirmations: number }
  /** Payer: ask the wallet for a signed, unbroadcast transaction paying `valueSat` to `script`. */
  | { readonly type: 'create-funding'; readonly script: Uint8Array; readonly valueSat: bigint }
  /** Payer: the channel was abandoned before funding; unreserve the wallet's coins. */
  | { readonly type: 'release-funding'; readonly txid: string }
  /** Payee: the payer asked for a close; the driver picks a fee rate and sends input `close`. */
  | { readonly type: 'close-requested' }
  /** The peer reported an error; the driver surfaces it to the user. */
  | { readonly type: 'peer-error'; readonly message: Extract<Message, { type: 'error' }> };

export interface Step<S> {
  readonly state: S;
  readonly effects: readonly Effect[];
}
