/**
 * paychan's public API: one call for each side (`createPayee`, `createPayer`: data dir, node,
 * service or wallet, with the CLI's defaults), then what they are made of (the payee service and its server, the
 * 402 paywall and the x402 scheme, the payer client and paying fetch, stores, the chain
 * adapter, the wallet) and the pure protocol underneath. The `paychan` command is built from
 * the same pieces (src/cli).
 *
 * By audience (package.json `exports`): `paychan/payer` (browser-safe, src/payer.ts),
 * `paychan/payee` (src/payee.ts) and `paychan/regtest` (src/regtest.ts); this entry has it all,
 * for Node.
 */
export { createPayee, type CreatePayeeOptions, type Payee, type NodePaywallMiddleware } from './app/create-payee.js';
export { createPayer, type CreatePayerOptions, type Payer } from './app/create-payer.js';
export type { DuplexChannel } from './app/duplex-channel.js';
export type { NodeOption } from './app/node-option.js';
export type { ChannelListRow, ChannelRow } from './app/channel-list.js';
export type { PayeeApp } from './app/payee-app.js';
export { DataDirInUseError } from './app/data-dir.js';
export { PayeeService, type PayeeServiceOptions } from './payee/payee-service.js';
export { PayerClient, PeerError, type PayerClientOptions, type OpenOptions, type FundingSource, type ExternalFunding } from './payer/payer-client.js';
export { PsbtFundingError, PSBT_FUNDING_ERROR_CODES, readFundingPsbt, type PsbtFundingErrorCode } from './wallet/psbt-funding.js';
export { PayerWatcher, type PayerWatcherOptions, type WatchEvent } from './payer/watcher.js';
export { createPayingFetch, PaymentRefusedError, type PayingFetchOptions } from './payer/paying-fetch.js';
export { payRepeatedly, type PayRun, type PayRunOptions } from './payer/pay-run.js';
export { CannotPayError } from './protocol/payer-machine.js';
export { startPayeeServer, type PayeeServer, type PayeeServerOptions } from './transport/payee-server.js';
export { connectPayee, describeConnectFailure, LinkClosedError, PayeeUnreachableError, WsPeerLink, type ConnectFailure, type ConnectPayeeOptions } from './transport/ws-client.js';
export { Paywall, formatPaymentHeader, parsePaymentHeader, submitPayment, PAYMENT_HEADER, ACK_HEADER, CREDIT_HEADER, type PaymentRequiredBody, type PaywallPayee } from './transport/paywall.js';
export { paywallMiddleware, paywallHono, type HonoContextLike, type HonoPaywallMiddleware, type RoutePrice } from './transport/paywall-http.js';
export type { PeerLink } from './transport/link.js';
export { openSqliteStore, SqliteStore } from './store/sqlite-store.js';
export { MemoryStore } from './store/memory-store.js';
export type { Store } from './store/store.js';
export { connectBackend, BACKEND_SCHEMES, type ConnectBackendOptions } from './chain/connect.js';
export { connectRpcBackend, type RpcChainBackend } from './chain/rpc-backend.js';
export { BroadcastRejectedError, ChainBackendError, type ChainBackend, type RegtestMining } from './chain/backend.js';
export { startRegtestNode, type RegtestNode } from './chain/regtest/index.js';
export { Wallet } from './wallet/wallet.js';
export { WalletKeys } from './wallet/keys.js';
export { secp256k1, wasmSecp256k1, type Secp256k1 } from './crypto/index.js';
export { nobleSecp256k1 } from './crypto/noble.js';
export { payeePolicy, payerPolicy, type PayeePolicy, type PayerPolicy } from './protocol/policy.js';
export { ProtocolError, PROTOCOL_ERROR_CODES, type ProtocolErrorCode } from './protocol/errors.js';
export { encodeMessage, decodeMessage, type Message } from './protocol/messages.js';
export type { Variant } from './protocol/scripts.js';
export { VARIANT_NAMES, variantOf, type ChannelVariant, type VariantName } from './protocol/variants/index.js';
export type { NetworkName } from './protocol/network.js';
export {
  paychanX402,
  PaychanServerScheme,
  PaychanFacilitator,
  PaychanClientScheme,
  PAYCHAN_SCHEME,
  satAsset,
  readOffer,
  encodePayload,
  decodePayload,
  reasonOf,
  codeOfReason,
  type PaychanX402,
  type PaychanX402Options,
  type PaychanClientOptions,
  type ChannelOffer,
  type PaychanPayload,
  type X402Reason,
} from './x402/index.js';
export { CAIP2_IDS, GENESIS_HASHES, caip2Of, caip2OfGenesis, networkOfCaip2, type Caip2Id } from './protocol/caip2.js';
