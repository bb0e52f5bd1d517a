/**
 * `paychan/payee`: what a seller runs, in Node: the one-call payee, its service and server, the
 * HTTP paywall and its middleware, the x402 server side, the stores and the chain adapter.
 * Node-only (SQLite, sockets, the native secp256k1); a page imports `paychan/payer`.
 */
export { createPayee, type CreatePayeeOptions, type Payee, type NodePaywallMiddleware } from './app/create-payee.js';
export type { NodeOption } from './app/node-option.js';
export type { ChannelListRow, ChannelRow } from './app/channel-list.js';
export type { PayeeApp } from './app/payee-app.js';
export { DataDirInUseError } from './app/data-dir.js';
export { PayeeService, type PayeeServiceOptions } from './payee/payee-service.js';
export { startPayeeServer, type PayeeServer, type PayeeServerOptions } from './transport/payee-server.js';
export { Paywall, parsePaymentHeader, submitPayment, PAYMENT_HEADER, ACK_HEADER, CREDIT_HEADER, type PaymentRequiredBody, type PaywallPayee } from './transport/paywall.js';
export { paywallMiddleware, paywallHono, type HonoContextLike, type HonoPaywallMiddleware, type RoutePrice } from './transport/paywall-http.js';
export { openSqliteStore, SqliteStore } from './store/sqlite-store.js';
export { MemoryStore } from './store/memory-store.js';
export type { Store } from './store/store.js';
export { connectBackend, BACKEND_SCHEMES, type ConnectBackendOptions } from './chain/connect.js';
export { connectRpcBackend, type RpcChainBackend } from './chain/rpc-backend.js';
export { BroadcastRejectedError, ChainBackendError, type ChainBackend } from './chain/backend.js';
export { secp256k1, type Secp256k1 } from './crypto/index.js';
export { payeePolicy, type PayeePolicy } from './protocol/policy.js';
export { ProtocolError, PROTOCOL_ERROR_CODES, type ProtocolErrorCode } from './protocol/errors.js';
export { paychanX402, PaychanServerScheme, PaychanFacilitator, PAYCHAN_SCHEME, satAsset, type PaychanX402, type PaychanX402Options } from './x402/index.js';
