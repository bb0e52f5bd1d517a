/**
 * Errors of the on-chain wallet. Each {@link WalletError} carries a stable `code` from
 * {@link WALLET_ERROR_CODES} and, per code, exactly the details that code has (a tagged union,
 * so `err.details.missingSat` type-checks only after `err.code === 'INSUFFICIENT_FUNDS'`).
 *
 * Programming mistakes that no retry can fix (a seed of the wrong length, a negative index) are
 * TypeError/RangeError instead; backend failures propagate as the chain adapter's own errors.
 */

export const WALLET_ERROR_CODES = {
  INSUFFICIENT_FUNDS: 'the spendable coins do not cover the outputs and the fee',
  OUTPUT_BELOW_DUST: 'an output is below the dust threshold for its script, so nodes would not relay it',
  INVALID_FEE_RATE: 'the fee rate is not a finite number in (0, MAX_FEE_RATE_SAT_PER_VB] sat/vB',
  INVALID_OUTPUT: 'an output is malformed (empty script, non-positive or too large value)',
  NETWORK_MISMATCH: 'the chain backend is on another network than the wallet',
  UNKNOWN_TRANSACTION: 'no transaction with that txid was funded by this wallet and is awaiting broadcast',
  INVALID_ADDRESS: 'the address is not valid for the wallet network',
  SYNC_UNSTABLE: 'the chain kept reorganising while the wallet synced; try again',
} as const;

export type WalletErrorCode = keyof typeof WALLET_ERROR_CODES;

/** What each code tells the caller, besides the message. */
export interface WalletErrorDetails {
  /**
   * `missingSat`: the value of one more coin that would make the transaction possible (it pays
   * for its own input too); `availableSat`: the total of the coins that are spendable now.
   */
  INSUFFICIENT_FUNDS: { readonly missingSat: bigint; readonly availableSat: bigint };
  OUTPUT_BELOW_DUST: { readonly outputIndex: number; readonly valueSat: bigint; readonly dustSat: bigint };
  INVALID_FEE_RATE: { readonly feeRateSatPerVb: number };
  INVALID_OUTPUT: { readonly outputIndex: number; readonly reason: string };
  NETWORK_MISMATCH: { readonly wallet: string; readonly backend: string };
  UNKNOWN_TRANSACTION: { readonly txid: string };
  INVALID_ADDRESS: { readonly address: string };
  SYNC_UNSTABLE: { readonly attempts: number };
}

/** An error of the wallet, with a stable `code` and that code's details. */
export class WalletError<C extends WalletErrorCode = WalletErrorCode> extends Error {
  constructor(
    readonly code: C,
    readonly details: WalletErrorDetails[C],
    detail?: string,
  ) {
    super(`${code}: ${detail ?? WALLET_ERROR_CODES[code]}`);
    this.name = 'WalletError';
  }
}

/** @returns true if `err` is a {@link WalletError} (with `code`, when given). */
export function isWalletError<C extends WalletErrorCode>(err: unknown, code?: C): err is WalletError<C> {
  return err instanceof WalletError && (code === undefined || err.code === code);
}
