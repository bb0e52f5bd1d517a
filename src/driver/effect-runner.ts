/**
 * The one effect runner of every driver (payee, payer, duplex): it carries out a step's effects
 * in order, after every effect of earlier steps on the same queue.
 *
 * The rule that makes acknowledgements safe: an effect that follows a `persist` runs only once
 * that persist is durable. A `persist` is *issued* at once (so the saves of many channels made
 * close together join one group commit) and the effects after it wait for its promise. An effect
 * the host marks with {@link EffectHost.holdsLaterPersists} (the payee's funding broadcast) makes
 * the persists after it in the same step wait to be issued until it ran: an opening is stored
 * only once the node took its funding.
 *
 * The runner allocates nothing per effect beyond the promise chain itself: no queue object per
 * channel (the owner keeps the tail in a field of its own, `SETTLED` when idle) and one closure
 * per chained effect, as a hand-written loop would.
 */

/** The tail of a queue with nothing running: compared by identity, never awaited for work. */
export const SETTLED: Promise<void> = Promise.resolve();

/** Where a queue keeps its tail: a channel entry, a client. */
export interface EffectTail {
  effects: Promise<void>;
}

/** The effects every role shares; each role's union adds its own. */
export type PersistEffect = { readonly type: 'persist' };
export type SendEffect<M> = { readonly type: 'send'; readonly message: M };
export type AnyEffect = { readonly type: string };

/** The message type a role's `send` effect carries. */
export type SentMessage<E> = E extends SendEffect<infer M> ? M : never;
/** Every effect of a role but `persist` and `send` (the host's `carryOut` handles these). */
export type OtherEffect<E> = Exclude<E, PersistEffect | { readonly type: 'send' }>;

/**
 * What a driver gives the runner. `C` is the driver's context of one step (its channel, the
 * connection to answer on, the state before the step…), passed back to every call.
 */
export interface EffectHost<E extends AnyEffect, C> {
  /** Starts saving the step's state durably; the effects after it wait for the promise. */
  persist(ctx: C): Promise<void>;
  /** Delivers a message: synchronous (it runs once per payment, without a promise of its own). */
  send(ctx: C, message: SentMessage<E>): void;
  /** Every other effect. */
  carryOut(ctx: C, effect: OtherEffect<E>): Promise<void> | void;
  /** True for an effect the later persists of its step must wait for before they are issued. */
  holdsLaterPersists?(effect: OtherEffect<E>): boolean;
  /**
   * An effect of the step failed: the effects after it in this step do not run. Called once per
   * failed step. Later steps' effects still run after it (the tail waits for a step to finish,
   * not to succeed): a driver that must stop sets its own broken flag here and steps no more.
   */
  failed(ctx: C, err: unknown): void;
}

/**
 * Chains `effects` after everything already on `tail`.
 * @returns a promise of this step's effects: resolves once they all ran, rejects with the first
 *   failure (after `host.failed` was called). The tail itself never rejects: a later step waits
 *   for this one to finish, not to succeed, and its driver decides whether to step at all.
 */
export function scheduleEffects<E extends AnyEffect, C>(tail: EffectTail, host: EffectHost<E, C>, ctx: C, effects: readonly E[]): Promise<void> {
  // With nothing of this queue still running (the usual case between two payments), the chain
  // starts at this step's save itself rather than one more promise behind a settled one.
  let chain: Promise<void> | null = tail.effects === SETTLED ? null : tail.effects;
  let persistsWait = false;
  for (const effect of effects) {
    if (effect.type === 'persist') {
      if (persistsWait && chain) {
        chain = chain.then(() => host.persist(ctx));
      } else {
        const saved = host.persist(ctx);
        chain = chain ? chain.then(() => saved) : saved;
      }
    } else if (effect.type === 'send') {
      const message = (effect as unknown as SendEffect<SentMessage<E>>).message;
      chain = (chain ?? SETTLED).then(() => host.send(ctx, message));
    } else {
      const other = effect as OtherEffect<E>;
      if (host.holdsLaterPersists?.(other)) persistsWait = true;
      chain = (chain ?? SETTLED).then(() => host.carryOut(ctx, other));
    }
  }
  if (!chain) return SETTLED;
  const end: Promise<void> = chain.then(
    () => {
      if (tail.effects === end) tail.effects = SETTLED;
    },
    (err: unknown) => {
      if (tail.effects === end) tail.effects = SETTLED;
      host.failed(ctx, err);
    },
  );
  tail.effects = end;
  return chain;
}
