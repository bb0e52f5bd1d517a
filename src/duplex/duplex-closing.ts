/** Ending a duplex channel together: the cooperative close and the rollover (close-and-reopen). */
import { randomBytes } from 'node:crypto';
import type { Transaction } from 'bitcoinjs-lib';
import { buildCooperativeCloseTx, buildRolloverTx, closeSighash, signedCloseTx, duplexOutputs, makeDuplexChannel, rolloverSighash, signedRolloverTx, stateSighash, termsOf, type DuplexChannel, type DuplexState } from '../protocol/duplex-tx.js';
import { checkDuplexTerms, plannedInitialLocktime, updatesLeft } from '../protocol/duplex-update.js';
import { ProtocolError } from '../protocol/errors.js';
import { msg, type MessageOf } from '../protocol/messages.js';
import type { PeerLink } from '../transport/link.js';
import { type DuplexRecord, type SignedState } from './duplex-record.js';
import { DuplexUpdates } from './duplex-updates.js';

/** This side signed a cooperative close the peer has not completed: it may ask again, or complete the peer's. */
function unansweredClose(record: DuplexRecord): boolean {
  return record.phase === 'closing' && record.close?.kind === 'cooperative' && record.close.txHex === '';
}

/** Cooperative close, and rollover into a new channel when the update budget is spent. */
export abstract class DuplexClosing extends DuplexUpdates {
  // ------------------------------------------------------------------ cooperative close

  /**
   * Closes the channel now with the newest state, both signatures, no locktime; resolves with
   * the close txid once broadcast. From the moment its signature leaves, this side takes no
   * more updates (the peer could broadcast that close at any time): if the peer never
   * completes it, the watcher publishes the newest state when it is final.
   */
  async close(channelId: string, feeRateSatPerVb?: number): Promise<string> {
    const record = this.get(channelId, true);
    if (!record) throw new RangeError(`unknown duplex channel ${channelId}`);
    const rate = feeRateSatPerVb ?? (await this.feeRate(6));
    const { answered } = await this.withLock(record.tempId, async () => {
      const tip = await this.options.backend.getTip(); // before the checks, which then hold until the signature leaves
      // Asking again (the peer refused or never answered) is safe: every close we sign pays the
      // same newest balances, whichever one the peer completes.
      if (!unansweredClose(record)) this.expectPhase(record, 'open');
      if (record.pending) throw new ProtocolError('UPDATE_IN_FLIGHT', `state ${record.pending.index}`);
      const channel = this.channelOf(record);
      const current = record.current!;
      const tx = buildCooperativeCloseTx(channel, current, rate);
      const signature = this.sign(record, closeSighash(channel, current, rate));
      record.phase = 'closing';
      // txHex stays empty until the peer's signature completes it.
      record.close = { kind: 'cooperative', txid: tx.getId(), txHex: '', feeSat: duplexOutputs(channel, current, rate).feeSat, feeRateSatPerVb: rate, broadcastHeight: tip.height };
      this.save(record); // durable before the signature leaves: no update after this point
      const waiting = this.wait<string>(`${record.tempId}:closed`, 'the peer to sign the close');
      this.send(record, msg('duplex-close', { channelId: record.channelId!, index: current.index, feeRateSatPerVb: rate, signature }));
      return { answered: waiting };
    });
    return answered;
  }

  protected async onClose(record: DuplexRecord, m: MessageOf<'duplex-close'>, link: PeerLink): Promise<void> {
    // The awaits first: the checks below then hold when this side signs.
    const floor = await this.minCloseRate();
    const tip = await this.options.backend.getTip();
    if (!unansweredClose(record)) this.expectPhase(record, 'open');
    if (record.pending) throw new ProtocolError('UPDATE_IN_FLIGHT', `state ${record.pending.index}`);
    const current = record.current!;
    if (m.index !== current.index) throw new ProtocolError('STATE_INDEX_MISMATCH', `close of state ${m.index}, the newest is ${current.index}`);
    if (m.feeRateSatPerVb > this.options.policy.maxFeeRateSatPerVb) throw new ProtocolError('FEE_RATE_INVALID', `above ${this.options.policy.maxFeeRateSatPerVb} sat/vB`);
    if (m.feeRateSatPerVb < floor) throw new ProtocolError('FEE_RATE_INVALID', `below ${floor} sat/vB: the close might not confirm`);
    const channel = this.channelOf(record);
    const { tx, own } = this.completeClose(record, channel, current, m.feeRateSatPerVb, m.signature);
    this.links.set(record.tempId, link);
    record.phase = 'closing';
    record.close = { kind: 'cooperative', txid: tx.getId(), txHex: tx.toHex(), feeSat: duplexOutputs(channel, current, m.feeRateSatPerVb).feeSat, feeRateSatPerVb: m.feeRateSatPerVb, broadcastHeight: tip.height };
    this.save(record);
    this.send(record, msg('duplex-closed', { channelId: record.channelId!, closeTxid: tx.getId(), signature: own }));
    await this.broadcast(tx.toHex()).catch((err: Error) => this.log(`close ${tx.getId()} not broadcast yet (${err.message}); the watcher retries`));
    this.log(`closed ${record.channelId} cooperatively at the peer's request: ${tx.getId()}`);
  }

  protected async onClosed(record: DuplexRecord, m: MessageOf<'duplex-closed'>): Promise<void> {
    const close = record.close;
    if (record.phase !== 'closing' || close?.kind !== 'cooperative') throw new ProtocolError('UNEXPECTED_MESSAGE', 'no close was asked for');
    if (close.txHex !== '') return; // a repeat
    if (close.txid !== m.closeTxid) throw new ProtocolError('UNEXPECTED_MESSAGE', `${m.closeTxid} is not the close this side signed`);
    const { tx } = this.completeClose(record, this.channelOf(record), record.current!, close.feeRateSatPerVb, m.signature);
    record.close = { ...close, txHex: tx.toHex() };
    this.save(record);
    await this.broadcast(tx.toHex());
    this.settle(`${record.tempId}:closed`, tx.getId());
  }

  /**
   * The cooperative close of `current` at `rate`, signed by both: the peer's signature is checked
   * first. @throws ProtocolError INVALID_SIGNATURE.
   */
  private completeClose(record: DuplexRecord, channel: DuplexChannel, current: DuplexState, rate: number, peerSignature: Uint8Array): { tx: Transaction; own: Uint8Array } {
    const digest = closeSighash(channel, current, rate);
    this.verifyPeer(record, channel, digest, peerSignature);
    const own = this.sign(record, digest);
    const [sigA, sigB] = record.role === 'A' ? [own, peerSignature] : [peerSignature, own];
    return { tx: signedCloseTx(channel, current, rate, sigA, sigB), own };
  }

  // ------------------------------------------------------------------ rollover

  /**
   * A: closes the channel into a new one (one transaction) with a fresh update budget; resolves
   * with the new id. Three messages, so that nobody signs the rollover before holding the new
   * channel's state 0 signed by both: A sends its state-0 signature, B answers with its state-0
   * and rollover signatures, A completes the rollover and sends its own. The proposal (fee
   * rate, L0) is stored first and reused by every retry: A never signs two state 0s for one new
   * channel.
   */
  async rollover(channelId: string): Promise<string> {
    if (this.role !== 'A') throw new TypeError('A rolls channels over');
    const record = this.get(channelId);
    if (!record) throw new RangeError(`unknown duplex channel ${channelId}`);
    const rate = Math.max(await this.feeRate(2), await this.minCloseRate());
    const tip = await this.options.backend.getTip();
    const { answered } = await this.withLock(record.tempId, async () => {
      if (record.close?.successorId) return { answered: Promise.resolve(record.close.successorId) };
      this.expectPhase(record, 'open');
      if (!record.rolloverProposal || record.rolloverProposal.refused) {
        if (record.pending) throw new ProtocolError('UPDATE_IN_FLIGHT', `state ${record.pending.index}`);
        // After B refused one, a new rate (a different new channel) but the same L0: no new
        // channel ever gets two state 0s, whatever B kept of earlier proposals. The channel stays
        // open until A signs the rollover itself (B cannot complete it without A's signature).
        record.rolloverProposal = { feeRateSatPerVb: rate, initialLocktime: record.rolloverProposal?.initialLocktime ?? plannedInitialLocktime(this.options.policy, tip.height) };
        this.save(record);
      }
      const { feeRateSatPerVb, initialLocktime } = record.rolloverProposal;
      const channel = this.channelOf(record);
      const current = record.current!;
      const { stateDigest } = this.rolloverParts(channel, buildRolloverTx(channel, current, feeRateSatPerVb), initialLocktime);
      const stateSignature = this.sign(record, stateDigest);
      const waiting = this.wait<string>(`${record.tempId}:rolled`, 'B to sign the rollover');
      this.send(record, msg('duplex-rollover', { channelId: record.channelId!, index: current.index, initialLocktime, feeRateSatPerVb, stateSignature }));
      return { answered: waiting };
    });
    return answered;
  }

  /**
   * What both sides derive from a rollover transaction: the new channel it funds (at
   * `initialLocktime`), that channel's state 0, and the two digests each side signs (the
   * rollover itself, and state 0).
   */
  protected rolloverParts(channel: DuplexChannel, roll: ReturnType<typeof buildRolloverTx>, initialLocktime: number) {
    const next = makeDuplexChannel(
      { ...termsOf(channel), contributionASat: roll.contributionASat, contributionBSat: roll.contributionBSat, initialLocktime },
      { txid: roll.tx.getId(), vout: 0 },
    );
    const state0: DuplexState = { index: 0, balanceASat: roll.contributionASat, balanceBSat: roll.contributionBSat };
    return { next, state0, closeDigest: rolloverSighash(channel, roll.tx), stateDigest: stateSighash(next, state0) };
  }

  protected async onRollover(record: DuplexRecord, m: MessageOf<'duplex-rollover'>, link: PeerLink): Promise<void> {
    this.expectRole('B', m.type);
    // The awaits first: the checks below then hold when B signs.
    const tip = await this.options.backend.getTip();
    const floor = await this.minCloseRate();
    const current = record.current!;
    const repeat = record.phase === 'closing' && record.close?.kind === 'rollover';
    if (!repeat) this.expectPhase(record, 'open');
    if (m.index !== current.index) throw new ProtocolError('STATE_INDEX_MISMATCH', `rollover of state ${m.index}, the newest is ${current.index}`);
    if (m.feeRateSatPerVb > this.options.policy.maxFeeRateSatPerVb) throw new ProtocolError('FEE_RATE_INVALID', `above ${this.options.policy.maxFeeRateSatPerVb} sat/vB`);
    const channel = this.channelOf(record);
    if (!repeat && updatesLeft(channel, current.index, tip.height, this.options.policy.marginBlocks) > this.options.policy.budgetWarningUpdates) {
      throw new ProtocolError('UNEXPECTED_MESSAGE', 'the update budget is not nearly spent: no rollover yet');
    }
    if (!repeat && m.feeRateSatPerVb < floor) throw new ProtocolError('FEE_RATE_INVALID', 'the rollover fee rate is too low to confirm');
    let roll: ReturnType<typeof buildRolloverTx>;
    try {
      roll = buildRolloverTx(channel, current, m.feeRateSatPerVb);
    } catch (err) {
      throw new ProtocolError('BALANCE_MISMATCH', (err as Error).message);
    }
    const { next, state0, closeDigest, stateDigest } = this.rolloverParts(channel, roll, m.initialLocktime);
    const known = repeat ? this.get(record.close!.successorId!) : undefined;
    // B signs state 0 of one new channel once: a retry must name the same one.
    if (repeat && (record.close!.successorId !== next.id || known?.terms?.initialLocktime !== m.initialLocktime)) {
      throw new ProtocolError('UNEXPECTED_MESSAGE', 'a rollover with other terms was already signed');
    }
    if (!repeat) checkDuplexTerms(this.options.secp, this.options.policy, next, tip.height);
    this.verifyPeer(record, channel, stateDigest, m.stateSignature);
    this.links.set(record.tempId, link);
    const stateSignature = this.sign(record, stateDigest);
    const closeSignature = this.sign(record, closeDigest);
    if (!repeat) {
      const successor = this.successorRecord(record, next, { ...state0, sigA: m.stateSignature, sigB: stateSignature }, roll.tx.toHex());
      record.phase = 'closing';
      // txHex stays empty until A's rollover signature completes it.
      record.close = { kind: 'rollover', txid: roll.tx.getId(), txHex: '', feeSat: roll.feeSat, feeRateSatPerVb: m.feeRateSatPerVb, broadcastHeight: tip.height, successorId: next.id };
      this.index(successor);
      this.links.set(successor.tempId, link);
      this.save(record, successor); // the new channel's state 0, signed by both, is durable before B signs the rollover
    }
    this.send(record, msg('duplex-rolled-over', { channelId: record.channelId!, newChannelId: next.id, closeSignature, stateSignature }));
  }

  protected async onRolledOver(record: DuplexRecord, m: MessageOf<'duplex-rolled-over'>): Promise<void> {
    this.expectRole('A', m.type);
    const tip = await this.options.backend.getTip(); // before the checks, which then hold when A signs
    const proposal = record.rolloverProposal;
    if (!proposal || record.close?.successorId || record.phase !== 'open') {
      if (record.close?.successorId === m.newChannelId) return; // a repeat
      throw new ProtocolError('UNEXPECTED_MESSAGE', 'no rollover was asked for');
    }
    const channel = this.channelOf(record);
    const current = record.current!;
    const roll = buildRolloverTx(channel, current, proposal.feeRateSatPerVb);
    const { next, state0, closeDigest, stateDigest } = this.rolloverParts(channel, roll, proposal.initialLocktime);
    if (next.id !== m.newChannelId) throw new ProtocolError('FUNDING_MISMATCH', `the new channel is ${next.id}, not ${m.newChannelId}`);
    this.verifyPeer(record, channel, stateDigest, m.stateSignature);
    this.verifyPeer(record, channel, closeDigest, m.closeSignature);
    const ownState = this.sign(record, stateDigest);
    const ownClose = this.sign(record, closeDigest);
    const tx = signedRolloverTx(channel, roll.tx, ownClose, m.closeSignature);
    const successor = this.successorRecord(record, next, { ...state0, sigA: ownState, sigB: m.stateSignature }, tx.toHex());
    record.phase = 'closing';
    record.close = { kind: 'rollover', txid: tx.getId(), txHex: tx.toHex(), feeSat: roll.feeSat, feeRateSatPerVb: proposal.feeRateSatPerVb, broadcastHeight: tip.height, successorId: next.id };
    this.index(successor);
    this.links.set(successor.tempId, this.links.get(record.tempId)!);
    this.save(record, successor);
    this.send(record, msg('duplex-rollover-signed', { channelId: record.channelId!, closeSignature: ownClose }));
    await this.broadcast(tx.toHex()).catch((err: Error) => this.log(`rollover ${tx.getId()} not broadcast yet (${err.message}); the watcher retries`));
    this.log(`rolled ${record.channelId} over into ${next.id}`);
    this.settle(`${record.tempId}:rolled`, next.id);
  }

  protected async onRolloverSigned(record: DuplexRecord, m: MessageOf<'duplex-rollover-signed'>): Promise<void> {
    this.expectRole('B', m.type);
    const close = record.close;
    if (record.phase !== 'closing' || close?.kind !== 'rollover') throw new ProtocolError('UNEXPECTED_MESSAGE', 'no rollover was signed');
    if (close.txHex !== '') return; // a repeat
    const channel = this.channelOf(record);
    const roll = buildRolloverTx(channel, record.current!, close.feeRateSatPerVb);
    const digest = rolloverSighash(channel, roll.tx);
    this.verifyPeer(record, channel, digest, m.closeSignature);
    const tx = signedRolloverTx(channel, roll.tx, m.closeSignature, this.sign(record, digest));
    record.close = { ...close, txHex: tx.toHex() };
    this.save(record);
    await this.broadcast(tx.toHex()).catch((err: Error) => this.log(`rollover ${tx.getId()} not broadcast yet (${err.message}); the watcher retries`));
    this.log(`rolled ${record.channelId} over into ${close.successorId}`);
  }

  protected successorRecord(record: DuplexRecord, next: DuplexChannel, state0: SignedState, fundingTxHex: string): DuplexRecord {
    return {
      tempId: randomBytes(16).toString('hex'),
      channelId: next.id,
      role: record.role,
      phase: 'open',
      keyIndex: record.keyIndex,
      terms: termsOf(next),
      fundingFeeRateSatPerVb: record.fundingFeeRateSatPerVb,
      minFundingConfirmations: record.minFundingConfirmations,
      fundingTxHex,
      fundingConfirmed: false,
      current: state0,
      predecessorId: record.channelId!,
      // B's pay requests not yet proposed move to the new channel.
      ...(record.payBackQueue?.length ? { payBackQueue: record.payBackQueue } : {}),
      updates: 0,
      paidAtoBSat: 0n,
      paidBtoASat: 0n,
    };
  }
}
