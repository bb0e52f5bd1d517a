/** Duplex updates: two-message states, B's pay requests, resuming after a drop. */
import { randomBytes } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import { stateSighash, type DuplexRole, type DuplexState } from '../protocol/duplex-tx.js';
import { checkProposalForB, nextState, updatesLeft } from '../protocol/duplex-update.js';
import { ProtocolError } from '../protocol/errors.js';
import { errorMessage, msg, type MessageOf } from '../protocol/messages.js';
import type { PeerLink } from '../transport/link.js';
import { type DuplexRecord, type SignedState } from './duplex-record.js';
import { DuplexOpening } from './duplex-opening.js';
import { chainAfter } from './duplex-core.js';
import { closeIsStale, unilateralClose } from '../protocol/duplex-unilateral.js';

/** What A signs to show B that a new connection is A's: the channel and A's newest index. */
function resumeDigest(channelId: string, index: number): Uint8Array {
  return sha256(new TextEncoder().encode(`paychan duplex resume ${channelId} ${index}`));
}

/** Updates: A proposes every state, B countersigns and asks for its own payments. */
export abstract class DuplexUpdates extends DuplexOpening {
  /** Closes the channel into a new one when the update budget is spent (duplex-closing.ts). */
  abstract rollover(channelId: string): Promise<string>;

  // ------------------------------------------------------------------ updates

  /**
   * A pays B `amountSat`: proposes the next state and resolves once B countersigned it. When the
   * update budget is spent, the channel is first rolled over into a new one (one transaction),
   * and the payment waits for that one's confirmations. If B does not answer in time the
   * proposal stays signed and pending (it is resent on resume): do not pay again blindly.
   */
  async pay(channelId: string, amountSat: bigint): Promise<SignedState> {
    if (this.role !== 'A') throw new TypeError('B pays with payBack');
    return this.propose(channelId, 'A', amountSat);
  }

  /**
   * B pays A `amountSat`: queues the request durably and sends it if A is connected; A proposes
   * the state when it gets it (at once, or when it next connects and resumes). `applied`
   * resolves once B countersigned that state.
   */
  async payBack(channelId: string, amountSat: bigint): Promise<{ requestId: string; sent: boolean; applied: Promise<SignedState> }> {
    if (this.role !== 'B') throw new TypeError('A pays with pay');
    if (amountSat <= 0n) throw new RangeError('a payment must be positive');
    const record = this.get(channelId, true);
    if (!record) throw new RangeError(`unknown duplex channel ${channelId}`);
    return this.withLock(record.tempId, async () => {
      await this.confirmFunding(record);
      this.requireUsable(record);
      const queued = (record.payBackQueue ?? []).reduce((s, q) => s + q.amountSat, 0n);
      const available = record.current!.balanceBSat - queued;
      if (amountSat > available) throw new ProtocolError('INSUFFICIENT_BALANCE', `B has ${available} sat not yet promised, cannot pay ${amountSat}`);
      const requestId = randomBytes(16).toString('hex');
      record.payBackQueue = [...(record.payBackQueue ?? []), { requestId, amountSat }];
      this.save(record);
      const applied = this.wait<SignedState>(`${record.tempId}:request:${requestId}`, 'A to propose the pay-back state', null);
      const link = this.links.get(record.tempId);
      const sent = link !== undefined && link.isOpen?.() !== false;
      if (sent) link.send(msg('duplex-pay-request', { channelId: record.channelId!, amountSat, requestId }));
      return { requestId, sent, applied };
    });
  }

  /**
   * A, after (re)connecting on `link`: tells B its newest state (signed, so B may adopt the
   * connection), resends a proposal or rollover B may have missed, and takes B's queued pay
   * requests. Resolves once they are all applied.
   */
  async resume(channelId: string, link: PeerLink): Promise<void> {
    if (this.role !== 'A') throw new TypeError('A resumes');
    const record = this.get(channelId, true);
    if (!record?.current) throw new RangeError(`unknown or unopened duplex channel ${channelId}`);
    this.links.set(record.tempId, link);
    if (record.phase !== 'open') return;
    const resumed = this.wait<number>(`${record.tempId}:resumed`, 'B to answer the resume');
    const pending = record.pending ? this.wait<SignedState>(`${record.tempId}:countersign:${record.pending.index}`, `B's countersignature of state ${record.pending.index}`) : null;
    const signature = this.sign(record, resumeDigest(record.channelId!, record.current.index));
    link.send(msg('duplex-resume', { channelId: record.channelId!, index: record.current.index, signature }));
    if (record.pending) this.sendUpdate(record);
    await resumed;
    await pending;
    await (this.proposals.get(record.tempId) ?? Promise.resolve());
  }

  protected async onResume(record: DuplexRecord, m: MessageOf<'duplex-resume'>, link: PeerLink): Promise<void> {
    this.expectRole('B', m.type);
    if (!record.terms || !record.channelId) throw new ProtocolError('CHANNEL_NOT_OPEN', 'the channel is still opening');
    // Replaying a resume only works until the next update, and only redirects B's own requests.
    this.verifyPeer(record, record.terms, resumeDigest(record.channelId, m.index), m.signature);
    this.links.set(record.tempId, link);
    link.proven?.(); // A's signature: the transport stops counting the connection as a stranger's
    const queue = record.phase === 'open' ? (record.payBackQueue ?? []) : [];
    for (const q of queue) this.send(record, msg('duplex-pay-request', { channelId: record.channelId, amountSat: q.amountSat, requestId: q.requestId }));
    this.send(record, msg('duplex-resumed', { channelId: record.channelId, index: record.current?.index ?? 0, queuedRequests: queue.length }));
  }

  /** Proposals in flight per channel: the next waits for the previous one's countersignature. */
  protected readonly proposals = new Map<string, Promise<unknown>>();

  protected propose(channelId: string, payer: DuplexRole, amountSat: bigint, requestId?: string): Promise<SignedState> {
    return chainAfter(this.proposals, this.get(channelId)?.tempId ?? channelId, () => this.proposeNow(channelId, payer, amountSat, requestId));
  }

  protected async proposeNow(channelId: string, payer: DuplexRole, amountSat: bigint, requestId?: string): Promise<SignedState> {
    let record = this.get(channelId, true);
    if (!record) throw new RangeError(`unknown duplex channel ${channelId}`);
    let tip = await this.options.backend.getTip();
    // A rollover proposed and not answered is sent again; one B refused only when the budget is spent.
    const rollingOver = record.phase === 'open' && record.rolloverProposal !== undefined && !record.rolloverProposal.refused;
    // Counted from the index the next state takes (past a refused one), as nextState numbers it.
    const spent = record.phase === 'open' && record.current && record.terms && updatesLeft(record.terms, nextIndex(record) - 1, tip.height, this.options.policy.marginBlocks) < 1;
    if (rollingOver || spent) {
      this.log(`${record.channelId}: update budget spent at tip ${tip.height}: rolling over`);
      const successorId = await this.rollover(record.channelId!);
      record = this.get(successorId)!;
      await this.waitConfirmed(record);
    }
    const r = record;
    // The lock covers signing and sending only: B's answer is handled under the same lock.
    const { answered } = await this.withLock(r.tempId, async () => {
      tip = await this.options.backend.getTip(); // read under the lock: the checks below follow it
      await this.confirmFunding(r);
      this.requireUsable(r);
      if (r.pending) throw new ProtocolError('UPDATE_IN_FLIGHT', `state ${r.pending.index} waits for B's countersignature (resume to resend it)`);
      if (requestId !== undefined && r.proposedRequests?.includes(requestId)) throw new ProtocolError('UNEXPECTED_MESSAGE', `pay request ${requestId} was already proposed`);
      const channel = this.channelOf(r);
      const next = nextState(channel, r.current!, payer, amountSat, tip.height, this.options.policy.marginBlocks, nextIndex(r));
      const sigA = this.sign(r, stateSighash(channel, next));
      r.pending = { ...next, sigA, ...(requestId ? { requestId } : {}) };
      if (requestId !== undefined) r.proposedRequests = [...(r.proposedRequests ?? []).slice(-99), requestId];
      this.save(r); // A is bound from here on: the proposal is durable before it leaves
      const answered = this.wait<SignedState>(`${r.tempId}:countersign:${next.index}`, `B's countersignature of state ${next.index} (the proposal stays pending and is resent on resume)`);
      this.sendUpdate(r);
      return { answered };
    });
    return answered;
  }

  protected sendUpdate(record: DuplexRecord): void {
    const p = record.pending!;
    this.send(
      record,
      msg('duplex-update', {
        channelId: record.channelId!,
        index: p.index,
        balanceASat: p.balanceASat,
        balanceBSat: p.balanceBSat,
        signature: p.sigA,
        ...(p.requestId ? { requestId: p.requestId } : {}),
      }),
    );
  }

  protected async onPayRequest(record: DuplexRecord, m: MessageOf<'duplex-pay-request'>): Promise<void> {
    this.expectRole('A', m.type);
    if (record.proposedRequests?.includes(m.requestId) || record.pending?.requestId === m.requestId) return; // a repeat
    // Proposing takes the channel's lock itself: run it after this message's turn.
    void this.propose(record.channelId!, 'B', m.amountSat, m.requestId).catch((err: Error) => {
      const e = err instanceof ProtocolError ? err : new ProtocolError('INTERNAL_ERROR', err.message);
      this.links.get(record.tempId)?.send(errorMessage(e.code, e.message, 'reject', `${record.channelId}#${m.requestId}`));
    });
  }

  protected async onUpdate(record: DuplexRecord, m: MessageOf<'duplex-update'>, link: PeerLink): Promise<void> {
    this.expectRole('B', m.type);
    // The awaits come first: every check below then sees the record as it is when B signs (the
    // lock keeps the watcher out too, docs/duplex.md). A saw the funding confirmed, maybe a block
    // before this side's watcher did: ask the node rather than refuse on a stale flag.
    const tip = await this.options.backend.getTip();
    await this.confirmFunding(record);
    const current = record.current;
    const proposed: DuplexState = { index: m.index, balanceASat: m.balanceASat, balanceBSat: m.balanceBSat };
    if (current && m.index === current.index && m.balanceASat === current.balanceASat && m.balanceBSat === current.balanceBSat) {
      // A resent a state B already countersigned (its answer was lost): answer again, on the
      // connection it came from (a replay of A's message proves nothing about who sent it).
      link.send(msg('duplex-countersign', { channelId: record.channelId!, index: current.index, signature: current.sigB }));
      return;
    }
    this.requireUsable(record);
    const channel = this.channelOf(record);
    const requested = m.requestId === undefined ? null : (record.payBackQueue?.find((q) => q.requestId === m.requestId)?.amountSat ?? null);
    if (m.requestId !== undefined && requested === null) throw new ProtocolError('BALANCE_MISMATCH', `no open pay request ${m.requestId}`);
    checkProposalForB(channel, current!, proposed, requested, tip.height, this.options.policy.marginBlocks);
    const digest = stateSighash(channel, proposed);
    this.verifyPeer(record, channel, digest, m.signature);
    this.links.set(record.tempId, link);
    const sigB = this.sign(record, digest);
    this.advance(record, { ...proposed, sigA: m.signature, sigB });
    if (m.requestId !== undefined) record.payBackQueue = record.payBackQueue?.filter((q) => q.requestId !== m.requestId);
    this.save(record); // the new state is durable before B's countersignature leaves
    this.send(record, msg('duplex-countersign', { channelId: record.channelId!, index: proposed.index, signature: sigB }));
    if (m.requestId !== undefined) this.settle(`${record.tempId}:request:${m.requestId}`, record.current);
    this.announceBudget(record, tip.height);
  }

  protected async onCountersign(record: DuplexRecord, m: MessageOf<'duplex-countersign'>): Promise<void> {
    this.expectRole('A', m.type);
    const p = record.pending;
    if (!p || p.index !== m.index) {
      if (record.current?.index === m.index) return; // a repeat of an answer already applied
      throw new ProtocolError('STATE_INDEX_MISMATCH', `no proposal ${m.index} waiting`);
    }
    const channel = this.channelOf(record);
    this.verifyPeer(record, channel, stateSighash(channel, p), m.signature);
    record.pending = undefined;
    this.advance(record, { index: p.index, balanceASat: p.balanceASat, balanceBSat: p.balanceBSat, sigA: p.sigA, sigB: m.signature });
    // A force close stored while this proposal was out publishes the state it was taken on; the
    // newer one (maybe a pay-back to A that B would rather withhold) must go out instead.
    const stale = closeIsStale(record.close, record.current) ? record.close : undefined;
    if (stale) {
      record.close = unilateralClose(channel, record.current!, stale);
      this.log(`${record.channelId}: state ${p.index} countersigned after the force close of state ${stale.stateIndex}: the close publishes state ${p.index} now`);
    }
    this.save(record);
    if (stale?.bumpReservation) {
      await this.options.wallet.release(stale.bumpReservation);
      await this.options.saveWallet();
    }
    this.settle(`${record.tempId}:countersign:${p.index}`, record.current);
    const tip = await this.options.backend.getTip();
    this.announceBudget(record, tip.height);
  }

  protected advance(record: DuplexRecord, next: SignedState): void {
    const before = record.current!;
    const toB = next.balanceBSat - before.balanceBSat;
    if (toB > 0n) record.paidAtoBSat += toB;
    else record.paidBtoASat += -toB;
    record.current = next;
    record.updates++;
  }

  /** Both sides announce, in their logs and status, that the channel will be rolled over soon. */
  protected announceBudget(record: DuplexRecord, tipHeight: number): void {
    const left = updatesLeft(record.terms!, record.current!.index, tipHeight, this.options.policy.marginBlocks);
    if (left <= this.options.policy.budgetWarningUpdates) {
      this.log(`${record.channelId}: ${left} update(s) left before the locktime margin; the next one after that rolls the channel over into a new one`);
    }
  }
}

/**
 * The index of a channel's next state. A state A signed and B refused may still be countersigned
 * by B later: its index is skipped, so whatever B does with it, the next state (an earlier
 * locktime) beats it.
 */
function nextIndex(record: DuplexRecord): number {
  return Math.max(record.current!.index, record.refusedIndex ?? 0) + 1;
}
