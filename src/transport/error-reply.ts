/**
 * The one mapping from a failure to the `error` message a peer receives, on every route a message
 * takes (the connection's decoding, the payee service, the duplex router): a ProtocolError is the
 * peer's to know (its stable code, its text, and what to do: reject or close); anything else is
 * ours: it is logged here, and the peer is told only INTERNAL_ERROR (a stack or a node's reject
 * reason is no business of a peer's).
 */
import { BroadcastRejectedError } from '../chain/backend.js';
import { ProtocolError } from '../protocol/errors.js';
import { errorMessage, type MessageOf } from '../protocol/messages.js';
import { logText } from './log-text.js';

/**
 * @param ref what the error answers (a tempId or channel id), echoed so the peer can match it.
 * @returns the `error` message to send for `err`.
 */
export function errorReply(err: unknown, ref: string | undefined, log?: (line: string) => void): MessageOf<'error'> {
  if (err instanceof ProtocolError) return errorMessage(err.code, err.message, err.action, ref);
  if (err instanceof RangeError || err instanceof BroadcastRejectedError) {
    // Misuse or a node's refusal: expected enough that a stack would be noise.
    log?.(`refused: ${logText(err.message)}`);
  } else {
    log?.(`internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  }
  return errorMessage('INTERNAL_ERROR', 'the payee failed to process the message', 'reject', ref);
}
