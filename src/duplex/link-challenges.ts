/**
 * A's record of the challenge each connection's server sent first (the 32 random bytes of
 * src/protocol/auth.ts): a resume signs the one of the connection it goes on, so B can tell A's
 * resume from a replay of one seen elsewhere. The newest challenge of a link counts (a link that
 * reconnects in place gets a new one per connection).
 */
import type { PeerLink } from '../transport/link.js';

export class LinkChallenges {
  private readonly challenges = new WeakMap<PeerLink, Uint8Array>();
  private readonly waiting = new WeakMap<PeerLink, ((challenge: Uint8Array) => void)[]>();

  record(link: PeerLink, challenge: Uint8Array): void {
    this.challenges.set(link, challenge);
    const waiters = this.waiting.get(link);
    this.waiting.delete(link);
    for (const resolve of waiters ?? []) resolve(challenge);
  }

  /** The link's connection closed: its challenge is void (a link that reconnects gets a new one). */
  forget(link: PeerLink): void {
    this.challenges.delete(link);
  }

  /** The link's challenge, waiting up to `timeoutMs` for it to arrive. */
  of(link: PeerLink, timeoutMs: number): Promise<Uint8Array> {
    const known = this.challenges.get(link);
    if (known) return Promise.resolve(known);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const list = this.waiting.get(link);
        if (list) list.splice(list.indexOf(done), 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for the peer's connection challenge (is it a paychan payee?)`));
      }, timeoutMs);
      const done = (challenge: Uint8Array): void => {
        clearTimeout(timer);
        resolve(challenge);
      };
      const list = this.waiting.get(link) ?? [];
      list.push(done);
      this.waiting.set(link, list);
    });
  }
}
