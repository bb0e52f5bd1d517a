/**
 * Errors a peer causes. A {@link ProtocolError} carries a stable `code` that is sent to the peer
 * and says what the receiver did about it (`reject`: the message was refused and nothing changed;
 * `close`: the channel cannot continue safely and should be closed on chain).
 *
 * Misuse of the API by our own caller is a TypeError/RangeError instead; adapter failures carry
 * their origin (see src/chain/backend.ts).
 */

export const PROTOCOL_ERROR_CODES = {
  MALFORMED_MESSAGE: 'the bytes are not a valid message of this protocol version',
  MESSAGE_TOO_LARGE: 'the message is larger than the protocol allows',
  UNSUPPORTED_VERSION: 'the protocol version is not supported',
  UNEXPECTED_MESSAGE: 'the message is not valid in the channel state it was received in',
  UNKNOWN_CHANNEL: 'no channel with that id',
  DUPLICATE_CHANNEL: 'a channel with that id already exists',
  INVALID_COOKIE: 'the opening cookie does not match the proposal, or this payee did not issue it; send hello again',
  COOKIE_EXPIRED: 'the opening cookie is too old; send hello again',
  WRONG_NETWORK: 'the peer is on another network',
  UNSUPPORTED_VARIANT: 'the channel variant is not supported by this peer',
  INVALID_PUBKEY: 'not a valid compressed secp256k1 public key',
  INVALID_SCRIPT: 'the output script is not acceptable',
  CAPACITY_TOO_SMALL: 'capacity below the peer minimum',
  CAPACITY_TOO_LARGE: 'capacity above the peer maximum',
  EXPIRY_TOO_SOON: 'expiry is too close to the current height',
  EXPIRY_TOO_LATE: 'expiry is too far from the current height',
  REFUND_MALFORMED: 'the refund transaction cannot be parsed',
  REFUND_EXTRA_INPUT: 'the refund transaction must spend exactly one input: the funding outpoint',
  REFUND_WRONG_OUTPOINT: 'the refund transaction spends another outpoint than the funding one',
  REFUND_LOCKTIME_MISMATCH: 'the refund locktime is not the agreed expiry height',
  REFUND_SEQUENCE_INVALID: 'the refund input sequence must enable locktime and RBF (0xfffffffd)',
  REFUND_VERSION_INVALID: 'the refund transaction must be version 2',
  FUNDING_MALFORMED: 'the funding transaction cannot be parsed',
  FUNDING_MISMATCH: 'the funding transaction does not pay the agreed script and amount at the agreed outpoint',
  FUNDING_NOT_SEGWIT: 'every funding input must be segwit, or the funding txid could change',
  FUNDING_REJECTED: 'the node refused the funding transaction',
  INVALID_SIGNATURE: 'the signature does not verify',
  CHANNEL_NOT_OPEN: 'the channel is not open for payments',
  CHANNEL_EXPIRING: 'the channel has reached its close deadline (expiry minus the payee close margin) and takes no more payments; open a new channel',
  AMOUNT_NOT_INCREASING: 'a payment must raise the total paid',
  AMOUNT_EXCEEDS_CAPACITY: 'the total paid would exceed what the channel allows',
  CHANGE_BELOW_DUST: 'the payer change would be dust; pay the whole capacity instead',
  PAYMENT_TOO_SMALL: 'the first payment must cover the close fee and a non-dust output',
  FEE_TOO_HIGH: 'the fee would take more than the close can pay',
  RATE_LIMITED: 'too many messages; slow down',
  ZERO_CONF_LIMIT: 'the funding is unconfirmed and the payment is above the zero-conf limit; retry once it confirms',
  PAYMENT_REPLAYED: 'this payment was already used; sign a higher total',
  STATE_INDEX_MISMATCH: 'the duplex state number is not the next one',
  BALANCE_MISMATCH: 'the duplex balances do not add up to the capacity, or move money the wrong way',
  INSUFFICIENT_BALANCE: 'the paying side does not have that much in the channel',
  UPDATE_BUDGET_EXHAUSTED: 'no further duplex state fits before the locktime margin: close (and reopen)',
  LOCKTIME_INVALID: 'the duplex initial locktime or Δ is outside the peer policy',
  FEE_RATE_INVALID: 'the fee rate is outside the peer policy',
  UPDATE_IN_FLIGHT: 'another duplex update is waiting for its countersignature',
  AUTH_REQUIRED: 'this connection has not authenticated as the channel payer: answer the connection challenge with an auth message first',
  AUTH_INVALID: 'the auth signature does not verify against this connection challenge and the channel payer key',
  CHANNEL_MOVED: 'another payee instance serves this channel now; reconnect (to another instance) and resume',
  INTERNAL_ERROR: 'the peer failed to process the message',
} as const;

export type ProtocolErrorCode = keyof typeof PROTOCOL_ERROR_CODES;

/** What the receiver of a bad message did. */
export type ErrorAction = 'reject' | 'close';

export class ProtocolError extends Error {
  constructor(
    readonly code: ProtocolErrorCode,
    detail?: string,
    readonly action: ErrorAction = 'reject',
  ) {
    super(detail ? `${code}: ${detail}` : `${code}: ${PROTOCOL_ERROR_CODES[code]}`);
    this.name = 'ProtocolError';
  }
}

export function isProtocolErrorCode(value: unknown): value is ProtocolErrorCode {
  return typeof value === 'string' && Object.hasOwn(PROTOCOL_ERROR_CODES, value);
}
