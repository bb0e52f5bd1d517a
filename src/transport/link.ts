/**
 * A peer link: how a driver sends a message to the other side. Transports (WebSocket, HTTP, the
 * in-process loopback used by tests and the demo) implement it; the drivers never know which.
 */
import { encodeMessage, msg, type Message } from '../protocol/messages.js';

export interface PeerLink {
  /**
   * Queues `message` for the peer. Never throws for a closed link; the message is dropped.
   * @param replacedSat with a `payment-ack`: the channel's paid total just before this payment
   *   was stored, read in the same step as the ack (so no other carrier's payment can come
   *   between). A link that counts credit (the HTTP paywall) credits `total − replacedSat`.
   */
  send(message: Message, replacedSat?: bigint): void;
  /**
   * Who is at the other end, as far as the transport can tell (the remote address), for
   * per-peer limits. Absent for in-process links.
   */
  readonly peer?: string;
  /** False once the connection is gone for good. */
  isOpen?(): boolean;
  /**
   * The random bytes the transport sent the peer first on this connection (`challenge`), which an
   * `auth` on it must sign (src/protocol/auth.ts). Absent: nothing can authenticate on this link.
   */
  readonly challenge?: Uint8Array;
  /**
   * Called by the service when the peer proved to be a payer here: a verified `auth`, or a
   * funding the node took (it cost its sender coins); other services have their own proofs. The
   * transport then counts the connection as a payer's rather than a stranger's
   * (server-limits.ts). A hello proves nothing: it is free. Idempotent.
   * @param channel what the proof was for (the channel's tempId): the transport keeps only a few
   *   proven connections per channel, so one cheap channel cannot hold every slot.
   */
  proven?(channel?: string): void;
  /**
   * Asked before the service works on an opening message (hello, refund-request, funding: each
   * costs a key derivation, a MAC, signature or transaction checks). False: over this
   * connection's budget (the transport gives unproven connections a small one); the message is
   * refused with RATE_LIMITED. Absent: no budget.
   */
  admitOpening?(): boolean;
  /**
   * Asks the transport to end this connection (the service cannot serve the peer's channel here
   * any more: another payee instance holds it), so that a payer reconnects, to another instance
   * behind the same address or the next of its URLs. Absent: the link cannot be ended.
   */
  close?(): void;
}

/**
 * Two ends wired in one process through the real wire codec (encode → text → decode), delivered
 * asynchronously like a socket would, in order. With `challenge`, B's end is a server's: its
 * link carries the challenge, and `greet()` sends it to A as the payee server does first on
 * every connection.
 */
export function loopbackPair(
  deliverToA: (text: string, replyLink: PeerLink) => void,
  deliverToB: (text: string, replyLink: PeerLink) => void,
  challenge?: Uint8Array,
): { a: PeerLink; b: PeerLink; greet(): void } {
  // `a` is A's way to B; B answers on `b`, and the other way round.
  const a: PeerLink = { send: (m) => queueMicrotask(() => deliverToB(encodeMessage(m), b)) };
  const b: PeerLink = { send: (m) => queueMicrotask(() => deliverToA(encodeMessage(m), a)), ...(challenge ? { challenge } : {}) };
  const greet = (): void => {
    if (challenge) b.send(msg('challenge', { challenge }));
  };
  return { a, b, greet };
}
