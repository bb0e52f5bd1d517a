/**
 * The on-chain wallet that funds payment channels: {@link Wallet} plus the pure pieces it is
 * made of (keys, coin selection, sizes, state), exported for tests and for tools.
 */
export { Wallet, DEFAULT_GAP_LIMIT } from './wallet.js';
export type { WalletOpenOptions, FundResult, SyncResult, CoinInfo } from './wallet.js';
export { WalletKeys, addressPath, channelKeyPath, coinType } from './keys.js';
export type { DerivedAddress, KeyChain, KeyPair } from './keys.js';
export { selectCoins, isSpendable, checkFeeRate, checkOutputs, COINBASE_MATURITY, MAX_FEE_RATE_SAT_PER_VB } from './coin-selection.js';
export type { CandidateUtxo, CoinSelection, ChangeDecision, SelectCoinsRequest, TxOutputSpec } from './coin-selection.js';
export { feeForVsize, p2wpkhSpendVsize, p2wpkhSpendWeight, MAX_P2WPKH_SIGNATURE_BYTES, P2WPKH_INPUT_VBYTES } from './tx-size.js';
export { signP2wpkhTransaction, RBF_SEQUENCE } from './sign.js';
export type { P2wpkhInput, SignRequest } from './sign.js';
export { WalletError, isWalletError, WALLET_ERROR_CODES } from './errors.js';
export type { WalletErrorCode, WalletErrorDetails } from './errors.js';
export { createWalletState, REORG_WINDOW, WALLET_STATE_VERSION } from './state.js';
export type { Balance, WalletState, WalletCoin, OwnTx, Reservation, KeyRef } from './state.js';
