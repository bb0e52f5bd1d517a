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
 * Two forms. {@link EffectQueue} (payee channels, payer clients: the payment path) keeps a
 * queue's pending steps in an array drained by one loop: per step one record, and one `then` on
 * each persist it waits for, with callbacks bound once per queue; no promise per step unless a
 * caller asks for one. {@link scheduleEffects} (duplex) chains each effect on a promise: one
 * closure and one promise per effect, with the tail kept in a field of the owner.
 */
import type { PersistEffect } from '../protocol/effects.js';

/** The tail of a queue with nothing running: compared by identity, never awaited for work. */
export const SETTLED: Promise<void> = Promise.resolve();

/** Where a queue keeps its tail: a channel entry, a client. */
export interface EffectTail {
  effects: Promise<void>;
}

/**
 * The effects every role shares (src/protocol/effects.ts); each role's union adds its own. The
 * runner's send is generic in its message so that it runs any role's (and tests' own) effects.
 */
export type { PersistEffect };
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

/** One step waiting in an {@link EffectQueue}. */
interface QueuedStep<E, C> {
  readonly ctx: C;
  readonly effects: readonly E[];
  /** The next effect to run. */
  at: number;
  /** Persists issued when the step was scheduled: one promise, or one per effect index if several. */
  issued: Promise<void> | (Promise<void> | undefined)[] | null;
  /** The index of the single issued persist (when `issued` is one promise). */
  issuedAt: number;
  /** Who asked for this step's outcome ({@link EffectQueue.scheduleAndWait}). */
  outcome: { resolve: () => void; reject: (err: unknown) => void } | null;
  /** Resolved when this step is done, whatever its outcome ({@link EffectQueue.idle}). */
  idle: (() => void)[] | null;
}

/**
 * An effect runner for one queue (a payee channel, a payer client): the same rules as
 * {@link scheduleEffects}, with the pending steps in an array drained by one loop.
 *
 * A step's persists are issued when it is scheduled (unless an effect the host marks with
 * `holdsLaterPersists` comes first in the step: then when reached), so the saves of many queues
 * join one group commit; its other effects run when the steps before it are done, each after
 * the persists before it are durable. The first effect of an idle queue runs in a microtask,
 * never inside `schedule`, as a promise chain would: a send never reaches a peer re-entrantly.
 */
export class EffectQueue<E extends AnyEffect, C> {
  private readonly steps: QueuedStep<E, C>[] = [];
  /** The head step waits for a promise (or a microtask): the loop is not to be started again. */
  private waiting = false;
  // Bound once per queue, not per payment.
  private readonly resume = (): void => {
    this.waiting = false;
    this.drain();
  };
  private readonly headFailed = (err: unknown): void => {
    this.waiting = false;
    this.fail(this.steps[0]!, err);
    this.drain();
  };

  constructor(private readonly host: EffectHost<E, C>) {}

  /** Whether a step is still pending. */
  get busy(): boolean {
    return this.steps.length > 0;
  }

  /** How many steps are pending (scheduled, not yet done): what a driver bounds its queue by. */
  get pending(): number {
    return this.steps.length;
  }

  /** Chains `effects` after every step already scheduled. Failures go to `host.failed`. */
  schedule(ctx: C, effects: readonly E[]): void {
    if (effects.length === 0) return;
    this.push({ ctx, effects, at: 0, issued: null, issuedAt: -1, outcome: null, idle: null });
  }

  /**
   * {@link schedule}, and a promise of this step's effects: resolves once they all ran, rejects
   * with the first failure (after `host.failed` was called).
   */
  scheduleAndWait(ctx: C, effects: readonly E[]): Promise<void> {
    if (effects.length === 0) return SETTLED;
    return new Promise((resolve, reject) => this.push({ ctx, effects, at: 0, issued: null, issuedAt: -1, outcome: { resolve, reject }, idle: null }));
  }

  /** Resolves once every step scheduled so far is done (whether or not it succeeded); never rejects. */
  idle(): Promise<void> {
    const last = this.steps.at(-1);
    if (!last) return SETTLED;
    return new Promise((resolve) => (last.idle ??= []).push(resolve));
  }

  private push(step: QueuedStep<E, C>): void {
    this.issuePersists(step);
    this.steps.push(step);
    if (this.steps.length > 1 || this.waiting) return;
    // An idle queue: start in a microtask (a persist at the head is waited for there anyway).
    this.waiting = true;
    if (step.issuedAt === 0) {
      step.at = 1;
      this.wait(step.issued as Promise<void>);
    } else {
      // then() on the settled promise, not queueMicrotask (Node wraps each of those in an async
      // resource and a bound function).
      void SETTLED.then(this.resume);
    }
  }

  private issuePersists(step: QueuedStep<E, C>): void {
    const { effects } = step;
    for (let i = 0; i < effects.length; i++) {
      const effect = effects[i]!;
      if (effect.type === 'send') continue;
      if (effect.type !== 'persist') {
        if (this.host.holdsLaterPersists?.(effect as OtherEffect<E>)) return;
        continue;
      }
      const saved = this.persist(step.ctx);
      if (step.issued === null) {
        step.issued = saved;
        step.issuedAt = i;
      } else {
        if (!Array.isArray(step.issued)) {
          const first = step.issued;
          step.issued = [];
          step.issued[step.issuedAt] = first;
          step.issuedAt = -1;
        }
        step.issued[i] = saved;
      }
    }
  }

  /** `host.persist`, with a synchronous throw made a rejection (it is waited for like any other). */
  private persist(ctx: C): Promise<void> {
    try {
      return this.host.persist(ctx);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  private wait(pending: Promise<void>): void {
    pending.then(this.resume, this.headFailed);
  }

  /** Runs the head step's effects until one must be waited for, then the next steps'. */
  private drain(): void {
    const steps = this.steps;
    while (steps.length > 0) {
      const step = steps[0]!;
      const { effects, ctx } = step;
      while (step.at < effects.length) {
        const index = step.at++;
        const effect = effects[index]!;
        let pending: Promise<void> | void;
        try {
          if (effect.type === 'persist') pending = this.issuedFor(step, index) ?? this.persist(ctx);
          else if (effect.type === 'send') pending = this.host.send(ctx, (effect as unknown as SendEffect<SentMessage<E>>).message);
          else pending = this.host.carryOut(ctx, effect as OtherEffect<E>);
        } catch (err) {
          this.fail(step, err);
          break;
        }
        // Only a promise is waited for: a handler that returns anything else is done.
        if (pending && typeof (pending as Promise<void>).then === 'function') {
          this.waiting = true;
          this.wait(pending);
          return;
        }
      }
      if (steps[0] === step && step.at >= effects.length) this.finish(step, null);
    }
  }

  private issuedFor(step: QueuedStep<E, C>, index: number): Promise<void> | undefined {
    const issued = step.issued;
    if (issued === null) return undefined;
    if (Array.isArray(issued)) return issued[index];
    return step.issuedAt === index ? issued : undefined;
  }

  /** The head step failed: its later effects do not run; the steps after it still do. */
  private fail(step: QueuedStep<E, C>, err: unknown): void {
    step.at = step.effects.length;
    try {
      this.host.failed(step.ctx, err);
    } catch {
      // `failed` is the host's own report of the failure (a log line, a halted channel): if it
      // throws too there is nowhere left to report it, and the steps behind must still run.
    }
    this.finish(step, err ?? new Error('effect failed'));
  }

  private finish(step: QueuedStep<E, C>, err: unknown): void {
    this.steps.shift();
    if (step.outcome) {
      if (err === null) step.outcome.resolve();
      else step.outcome.reject(err);
    }
    if (step.idle) for (const resolve of step.idle) resolve();
  }
}
