/**
 * `paychan/payer`: the payer, for browsers and for Node. Nothing in this module's import graph
 * touches a Node module (no `node:*`, no `ws`, no SQLite, no native addon): ESLint's browser-safe
 * rule covers its files (eslint.config.js, `BROWSER_SAFE`) and test/unit/payer-bundle.test.ts
 * bundles it with esbuild for the browser and fails on any Node module. Signing is
 * {@link nobleSecp256k1} (pure JS; see src/crypto/noble.ts for why not the WASM one here).
 *
 * In Node, `paychan` (everything) and `paychan/payee` remain; this entry is what a page imports.
 */
export { PayerClient, PeerError, type PayerClientOptions, type PayerChain, type OpenOptions, type FundingSource, type ExternalFunding } from './payer/payer-client.js';
export { createPayingFetch, PaymentRefusedError, type PayingFetchOptions } from './payer/paying-fetch.js';
export { payRepeatedly, type PayRun, type PayRunOptions } from './payer/pay-run.js';
export { CannotPayError, type PayerState } from './protocol/payer-machine.js';
export { PsbtFundingError, PSBT_FUNDING_ERROR_CODES, readFundingPsbt, type PsbtFundingErrorCode } from './wallet/psbt-funding.js';
export { nobleSecp256k1 } from './crypto/noble.js';
export type { Secp256k1 } from './crypto/secp256k1.js';
export { MemoryStore } from './store/memory-store.js';
export { openIndexedDbStore, IndexedDbStore, type IndexedDbStoreOptions } from './store/indexeddb-store.js';
export { StoreError, isStoreError, STORE_ERROR_CODES, type StoreErrorCode } from './store/store-error.js';
export type { Store, StoredPayerChannel } from './store/store.js';
export type { PeerLink } from './transport/link.js';
export { connectPayeeFromBrowser, BrowserPeerLink, type BrowserLinkOptions, type WebSocketLike, type WebSocketConstructor } from './transport/browser-link.js';
export { LinkClosedError, type ReconnectOptions } from './transport/reconnect.js';
export { formatPaymentHeader, PAYMENT_HEADER, ACK_HEADER, CREDIT_HEADER, type PaymentRequiredBody } from './transport/paywall.js';
export { payerPolicy, type PayerPolicy } from './protocol/policy.js';
export { ProtocolError, PROTOCOL_ERROR_CODES, type ProtocolErrorCode } from './protocol/errors.js';
export { encodeMessage, decodeMessage, type Message } from './protocol/messages.js';
export { VARIANT_NAMES, variantOf, type ChannelVariant, type VariantName } from './protocol/variants/index.js';
export type { NetworkName } from './protocol/network.js';
export type { Channel } from './protocol/channel.js';
export { openBrowserPayer, BrowserPayer, type BrowserPayerOptions, type FundingRequest, type RefundKit } from './web/browser-payer.js';
export { StoreInUseError } from './web/tab-lock.js';
export { esploraChain, electrumScriptHash, type FundingLookup, type PageChain } from './web/esplora-chain.js';
export { payeeChain } from './web/payee-chain.js';
