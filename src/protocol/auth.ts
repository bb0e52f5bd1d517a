/**
 * Proving, on one connection, that the sender holds a channel's payer key.
 *
 * A payment proves nothing about who sends it: it is the payer's signature, but anyone who saw
 * it (a `Paychan-Payment` header, a plain `ws://` stream) can send it again. So everything that
 * acts on a channel other than paying — close and status requests, taking over the channel's
 * link — is taken only from a connection that answered the payee's challenge: the payee sends 32
 * random bytes first on every connection (`challenge`), and the payer signs
 *
 *   sha256("paychan/v1/auth" ‖ 0x00 ‖ challenge ‖ tempId ‖ 0x00 ‖ "auth")
 *
 * with the channel's payer key (`auth`). The challenge is fresh per connection, so a signature
 * seen on one connection is worth nothing on any other; the domain tag keeps it from ever being
 * a valid signature of a transaction or of another protocol's message (a sighash is a double
 * SHA-256 of a transaction serialization, which cannot start with this tag).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import type { Secp256k1 } from '../crypto/secp256k1.js';
import { concatBytes } from './bytes.js';
import { ProtocolError } from './errors.js';
import { msg, type MessageOf } from './messages.js';

const TAG = new TextEncoder().encode('paychan/v1/auth\0');
const TYPE = new TextEncoder().encode('\0auth');
export const CHALLENGE_BYTES = 32;

/** The digest a payer signs to authenticate for channel `tempId` on the connection that sent `challenge`. */
export function authDigest(challenge: Uint8Array, tempId: string): Uint8Array {
  if (challenge.length !== CHALLENGE_BYTES) throw new RangeError(`a challenge is ${CHALLENGE_BYTES} bytes, got ${challenge.length}`);
  return sha256(concatBytes(TAG, challenge, new TextEncoder().encode(tempId), TYPE));
}

/** The payer's answer to `challenge` for channel `tempId`. */
export function authMessage(secp: Secp256k1, challenge: Uint8Array, tempId: string, payerPrivateKey: Uint8Array): MessageOf<'auth'> {
  return msg('auth', { tempId, signature: secp.ecdsaSign(authDigest(challenge, tempId), payerPrivateKey) });
}

/**
 * Checks an `auth` against the challenge of the connection it arrived on.
 * @throws ProtocolError AUTH_INVALID if no challenge was sent on that connection, or the
 *   signature is not the payer's over it.
 */
export function verifyAuth(secp: Secp256k1, challenge: Uint8Array | undefined, payerPubkey: Uint8Array, auth: MessageOf<'auth'>): void {
  if (challenge === undefined) throw new ProtocolError('AUTH_INVALID', 'no challenge was issued on this connection');
  if (!secp.ecdsaVerify(auth.signature, authDigest(challenge, auth.tempId), payerPubkey)) {
    throw new ProtocolError('AUTH_INVALID', `the signature is not the payer's over this connection's challenge for ${auth.tempId}`);
  }
}
