/**
 * paychan's x402 scheme (docs/x402.md): the seller's server scheme and in-process facilitator,
 * the buyer's client scheme, and the scheme's wire format.
 */
export { paychanX402, PaychanServerScheme, PaychanFacilitator, type PaychanX402, type PaychanX402Options, type PayeeChannels } from './server.js';
export { PaychanClientScheme, type PaychanClientOptions } from './client.js';
export { proxyX402, type ProxyX402Options } from './proxy-binding.js';
export {
  PAYCHAN_SCHEME,
  satAsset,
  readOffer,
  encodePayload,
  decodePayload,
  checkPayload,
  reasonOf,
  codeOfReason,
  type ChannelOffer,
  type ChannelTerms,
  type PaychanPayload,
  type CheckedPayment,
  type X402Reason,
} from './paychan-scheme.js';
