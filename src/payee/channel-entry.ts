/**
 * One payee channel in memory: its state, and what the driver needs around it (the payer's
 * link, the queues that order its inputs and effects).
 *
 * Idle open channels are kept packed (compact-state.ts, ~250 bytes instead of ~2 KB): `sweep()`,
 * run on every new block, packs the ones not used since the previous sweep, and `state` unpacks
 * on first use. `type`, `expiryHeight` and `paid` stay unpacked so that scans over every channel
 * (the closer, metrics, limits) do not unpack them.
 */
import type { PayeeEffect } from '../protocol/effects.js';
import type { PayeeState } from '../protocol/payee-machine.js';
import type { PeerLink } from '../transport/link.js';
import { SETTLED, type EffectQueue } from '../driver/effect-runner.js';
import { packState, unpackState } from './compact-state.js';

/** One step's context for the effect runner: the state it produced and whom to answer. */
export interface PayeeEffectStep {
  readonly entry: ChannelEntry;
  readonly state: PayeeState;
  readonly replyTo: PeerLink | null;
  readonly before: PayeeState | undefined;
}

export class ChannelEntry {
  private full: PayeeState | null;
  private packed: string | null = null;
  private used = true;
  type!: PayeeState['type'];
  /** The channel's expiry height, once the channel is known. */
  expiryHeight: number | null = null;
  /** Whether a payment was received (there is something to close). */
  paid = false;
  /** The payer's current connection; null after a restart until it reconnects. */
  link: PeerLink | null;
  /**
   * The connection that last authenticated as the payer (signed its challenge): the only one a
   * close or status request is taken from. Not the link: a link can come from a funding, which
   * anyone who saw it can replay.
   */
  authenticated: PeerLink | null = null;
  /** Inputs are stepped one after the other. */
  inputs: Promise<void> = SETTLED;
  /** Inputs queued on `inputs` or still awaiting a broadcast; while 0, an input is stepped at once. */
  queued = 0;
  /**
   * Effects run one after the other, across steps (the effect runner's queue): made when the
   * channel is used, dropped when it is packed idle.
   */
  effects: EffectQueue<PayeeEffect, PayeeEffectStep> | null = null;
  /** Set when storing, or another of its effects, failed unexpectedly: the channel takes no more inputs until a restart reloads it from the store. */
  broken: Error | null = null;
  /** Set when the opening that made this entry failed: nothing was stored, the channel never was. */
  discarded = false;
  /** Dropped because another payee instance took the channel's lease (docs/scale.md). */
  moved = false;

  constructor(
    readonly tempId: string,
    state: PayeeState,
    link: PeerLink | null,
  ) {
    this.full = state;
    this.link = link;
    this.summarize(state);
  }

  get state(): PayeeState {
    this.used = true;
    this.full ??= unpackState(this.packed!);
    return this.full;
  }

  set state(state: PayeeState) {
    this.full = state;
    this.packed = null;
    this.used = true;
    this.summarize(state);
  }

  /**
   * The state without marking the channel used or keeping it unpacked: for readers that look at
   * every channel now and then (the dashboard), which must not defeat packing.
   */
  peek(): PayeeState {
    return this.full ?? unpackState(this.packed!);
  }

  /** Packs the state if nothing used it since the previous sweep (and its form allows). */
  sweep(): void {
    if (!this.used) this.pack();
    this.used = false;
  }

  /** Packs the state now, if its form allows. @returns whether it is packed. */
  pack(): boolean {
    if (this.full === null) return true;
    const packed = packState(this.full);
    if (packed === null) return false;
    if (this.effects?.busy === false) this.effects = null;
    this.packed = packed;
    this.full = null;
    return true;
  }

  private summarize(state: PayeeState): void {
    this.type = state.type;
    this.expiryHeight = 'channel' in state ? state.channel.expiryHeight : null;
    this.paid = 'signature' in state && state.signature !== null;
  }
}
