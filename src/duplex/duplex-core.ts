/**
 * The shared part of a duplex peer (docs/duplex.md): the channel records and their store, the
 * links to the peer, per-channel locks, waiters for the peer's answers, and the helpers every
 * step uses (sign, verify, send, fee rates, broadcast). The steps are in duplex-opening.ts,
 * duplex-updates.ts and duplex-closing.ts; duplex-peer.ts routes messages to them.
 *
 * Durability: a record is saved before any signature that depends on it leaves the process, and
 * before a received signature is acknowledged; the funding transaction is signed only after the
 * signer holds state 0 signed by both.
 */
import { address as baddress } from 'bitcoinjs-lib';
import { type ChainBackend } from '../chain/backend.js';
import { resolveFeeRate } from '../chain/fee-rate.js';
import type { Secp256k1 } from '../crypto/secp256k1.js';
import { isWitnessOutputScript, type FundingInput } from '../protocol/duplex-funding.js';
import { type DuplexChannel, type DuplexRole, type DuplexTerms } from '../protocol/duplex-tx.js';
import { updatesLeft, type DuplexPolicy } from '../protocol/duplex-update.js';
import { ProtocolError } from '../protocol/errors.js';
import { type Message } from '../protocol/messages.js';
import { bitcoinjsNetwork, type NetworkName } from '../protocol/network.js';
import type { PeerLink } from '../transport/link.js';
import type { Wallet } from '../wallet/wallet.js';
import { recordChannel, type DuplexRecord } from './duplex-record.js';
import type { DuplexStore } from './duplex-store.js';

export interface DuplexPeerOptions {
  readonly role: DuplexRole;
  readonly network: NetworkName;
  readonly secp: Secp256k1;
  readonly policy: DuplexPolicy;
  readonly backend: ChainBackend;
  readonly wallet: Wallet;
  readonly store: DuplexStore;
  /** Saves the wallet's state (its key counter and reservations) wherever the app keeps it. */
  readonly saveWallet: () => Promise<void> | void;
  /** Fee rate when the node has no estimate (always on a fresh regtest chain). */
  readonly fallbackFeeRateSatPerVb: number;
  /** How long pay/close/open wait for the peer's answer, ms. Default 30,000. */
  readonly answerTimeoutMs?: number;
  readonly log?: (line: string) => void;
}

/** What the app shows about a channel. */
export interface DuplexSummary {
  readonly tempId: string;
  readonly channelId?: string;
  readonly role: DuplexRole;
  readonly phase: DuplexRecord['phase'];
  readonly fundingConfirmed: boolean;
  readonly capacitySat?: bigint;
  readonly index?: number;
  readonly balanceASat?: bigint;
  readonly balanceBSat?: bigint;
  readonly updates: number;
  readonly paidAtoBSat: bigint;
  readonly paidBtoASat: bigint;
  readonly updatesLeft?: number;
  readonly closeTxid?: string;
  readonly closeKind?: string;
  readonly successorId?: string;
}

type Waiter = { resolve: (value: unknown) => void; reject: (err: Error) => void; timer: NodeJS.Timeout };

/** Records, links, locks, waiters and the small helpers every part of a duplex peer uses. */
export abstract class DuplexCore {
  readonly role: DuplexRole;
  protected readonly records = new Map<string, DuplexRecord>();
  protected readonly byChannelId = new Map<string, string>();
  protected readonly links = new Map<string, PeerLink>();
  /** The tip height the watcher saw last (in memory): a peer's message never asks the node for it. */
  protected tipSeen: number | undefined;

  /** The watcher tells the tip it read for its check, so steps of the peer can bound their node calls per tip. */
  noteTip(height: number): void {
    this.tipSeen = height;
  }
  protected readonly locks = new Map<string, Promise<unknown>>();
  protected readonly waiters = new Map<string, Waiter>();

  constructor(readonly options: DuplexPeerOptions) {
    this.role = options.role;
    for (const record of options.store.loadAll()) this.index(record);
  }

  protected index(record: DuplexRecord): void {
    this.records.set(record.tempId, record);
    if (record.channelId) this.byChannelId.set(record.channelId, record.tempId);
  }

  protected log(line: string): void {
    this.options.log?.(`duplex ${this.role}: ${line}`);
  }

  // ------------------------------------------------------------------ queries

  /** Every channel this side knows, oldest first. */
  list(): DuplexSummary[] {
    return [...this.records.values()].map((r) => this.summary(r));
  }

  /** @returns the channel by id or tempId, following rollovers to the newest channel if `follow`. */
  get(id: string, follow = false): DuplexRecord | undefined {
    let record = this.records.get(this.byChannelId.get(id) ?? id);
    while (follow && record?.close?.successorId) record = this.records.get(this.byChannelId.get(record.close.successorId) ?? '');
    return record;
  }

  summary(record: DuplexRecord, tipHeight?: number): DuplexSummary {
    const c = record.current;
    return {
      tempId: record.tempId,
      ...(record.channelId ? { channelId: record.channelId } : {}),
      role: record.role,
      phase: record.phase,
      fundingConfirmed: record.fundingConfirmed,
      ...(record.terms ? { capacitySat: record.terms.contributionASat + record.terms.contributionBSat } : {}),
      ...(c ? { index: c.index, balanceASat: c.balanceASat, balanceBSat: c.balanceBSat } : {}),
      updates: record.updates,
      paidAtoBSat: record.paidAtoBSat,
      paidBtoASat: record.paidBtoASat,
      ...(c && record.terms && tipHeight !== undefined ? { updatesLeft: updatesLeft(record.terms, c.index, tipHeight, this.options.policy.marginBlocks) } : {}),
      ...(record.close ? { closeTxid: record.close.txid, closeKind: record.close.kind } : {}),
      ...(record.close?.successorId ? { successorId: record.close.successorId } : {}),
    };
  }

  channelOf(record: DuplexRecord): DuplexChannel {
    return recordChannel(record);
  }

  ownKey(record: DuplexRecord): { privateKey: Uint8Array; publicKey: Uint8Array } {
    return this.options.wallet.duplexKey(record.keyIndex);
  }

  // ------------------------------------------------------------------ plumbing

  /** Runs `fn` after every earlier operation on the same channel (per-channel serialization). */
  protected withLock<T>(tempId: string, fn: () => Promise<T>): Promise<T> {
    return chainAfter(this.locks, tempId, fn);
  }

  /**
   * Runs `fn` under `record`'s lock: the one way anything outside the peer (the watcher) may
   * change a record, so that no step of the peer sees it change across one of its awaits.
   * `fn` must not take the same lock again (it would wait for itself).
   */
  locked<T>(record: DuplexRecord, fn: () => Promise<T>): Promise<T> {
    return this.withLock(record.tempId, fn);
  }

  /** A promise `settle(key)` resolves; it fails after `timeoutMs` (null: never, for work queued until the peer returns). */
  protected wait<T>(key: string, what: string, timeoutMs: number | null = this.options.answerTimeoutMs ?? 30_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          if (timeoutMs === null) return;
          if (this.waiters.get(key)?.timer === timer) this.waiters.delete(key);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
        },
        timeoutMs ?? 2 ** 31 - 1,
      );
      if (timeoutMs === null) timer.unref();
      this.waiters.set(key, { resolve: resolve as (v: unknown) => void, reject, timer });
    });
  }

  protected settle(key: string, value: unknown, error?: Error): void {
    const waiter = this.waiters.get(key);
    if (!waiter) return;
    this.waiters.delete(key);
    clearTimeout(waiter.timer);
    if (error) waiter.reject(error);
    else waiter.resolve(value);
  }

  /** Drops a record this side signed nothing for, from memory and the store. */
  protected forget(record: DuplexRecord): void {
    this.records.delete(record.tempId);
    if (record.channelId) this.byChannelId.delete(record.channelId);
    this.links.delete(record.tempId);
    this.options.store.delete(record.tempId);
  }

  save(...records: DuplexRecord[]): void {
    this.options.store.saveAll(records);
  }

  protected send(record: DuplexRecord, message: Message): void {
    const link = this.links.get(record.tempId);
    if (!link) throw new Error(`duplex ${record.channelId ?? record.tempId}: the peer is not connected`);
    link.send(message);
  }

  protected sign(record: DuplexRecord, digest: Uint8Array): Uint8Array {
    return this.options.secp.ecdsaSign(digest, this.ownKey(record).privateKey);
  }

  protected verifyPeer(record: DuplexRecord, channel: DuplexTerms, digest: Uint8Array, signature: Uint8Array): void {
    const key = record.role === 'A' ? channel.keyB : channel.keyA;
    if (!this.options.secp.ecdsaVerify(signature, digest, key)) throw new ProtocolError('INVALID_SIGNATURE');
  }

  protected ownPayoutScript(): Uint8Array {
    return baddress.toOutputScript(this.options.wallet.receiveAddress(), bitcoinjsNetwork(this.options.network));
  }

  protected async feeRate(targetBlocks: number): Promise<number> {
    return Math.min(this.options.policy.maxFeeRateSatPerVb, Math.ceil(await resolveFeeRate(this.options.backend, targetBlocks, this.options.fallbackFeeRateSatPerVb)));
  }

  /** The inputs of the other side must be unspent segwit outputs, or the funding txid could change under state 0. */
  protected async checkOtherInputs(inputs: readonly { txid: string; vout: number }[], claimed?: readonly FundingInput[]): Promise<void> {
    const tip = await this.options.backend.getTip();
    for (const input of inputs) {
      const status = await this.options.backend.getOutpointStatus(input, Math.max(0, tip.height - 1));
      if (status.state !== 'unspent') throw new ProtocolError('FUNDING_MISMATCH', `input ${input.txid}:${input.vout} is ${status.state}`);
      if (!isWitnessOutputScript(status.scriptHex)) throw new ProtocolError('FUNDING_NOT_SEGWIT', `input ${input.txid}:${input.vout} is not a segwit output`);
      const c = claimed?.find((x) => x.txid === input.txid && x.vout === input.vout);
      if (c && c.valueSat !== status.valueSat) throw new ProtocolError('FUNDING_MISMATCH', `input ${input.txid}:${input.vout} holds ${status.valueSat} sat, not ${c.valueSat}`);
    }
  }

  protected expectRole(role: DuplexRole, type: string): void {
    if (this.role !== role) throw new ProtocolError('UNEXPECTED_MESSAGE', `${type} is sent to ${role}`);
  }

  protected expectPhase(record: DuplexRecord, ...phases: DuplexRecord['phase'][]): void {
    if (!phases.includes(record.phase)) throw new ProtocolError('CHANNEL_NOT_OPEN', `the channel is ${record.phase}`);
  }

  protected requireUsable(record: DuplexRecord): void {
    this.expectPhase(record, 'open');
    if (!record.fundingConfirmed) throw new ProtocolError('CHANNEL_NOT_OPEN', `the funding has fewer than ${record.minFundingConfirmations} confirmations`);
  }

  /** The lowest fee rate this side signs a close or rollover for: half the node's estimate, at least 1 sat/vB. */
  protected async minCloseRate(): Promise<number> {
    return Math.max(1, Math.floor((await this.feeRate(6)) / 2));
  }

  /** Broadcasts; a transaction the node already has counts as sent (the backend's contract). */
  async broadcast(txHex: string): Promise<void> {
    await this.options.backend.broadcast(txHex);
  }

  /** Resolves once `record`'s funding has its confirmations (the watcher marks it), logging while it waits. */
  async waitConfirmed(record: DuplexRecord, timeoutMs = 60 * 60_000): Promise<void> {
    const started = Date.now();
    let logged = false;
    while (!record.fundingConfirmed) {
      if (record.phase !== 'open') throw new ProtocolError('CHANNEL_NOT_OPEN', `the channel is ${record.phase}`);
      if (Date.now() - started > timeoutMs) throw new Error(`${record.channelId}: the funding did not confirm within ${timeoutMs / 60_000} min`);
      if (!logged) this.log(`${record.channelId}: waiting for ${record.minFundingConfirmations} confirmation(s) of the funding`);
      logged = true;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /**
   * Reads the funding's confirmations from the node and marks it confirmed once it has them: the
   * watcher does it on each tip, and a step about to refuse for missing confirmations does it
   * first (the peer may have seen the block before this side's watcher did). The caller holds the
   * channel's lock. @returns whether the funding is confirmed now, and the node's view of it.
   */
  async confirmFunding(record: DuplexRecord): Promise<{ confirmed: boolean; known: boolean }> {
    if (record.fundingConfirmed) return { confirmed: true, known: true };
    if (!record.channelId) return { confirmed: false, known: false };
    const status = await this.options.backend.getTransaction(this.channelOf(record).funding.txid);
    if (status && status.confirmations >= record.minFundingConfirmations && record.phase === 'open' && !record.fundingConfirmed) {
      record.fundingHeight = status.blockHeight;
      this.markConfirmed(record);
    }
    return { confirmed: record.fundingConfirmed, known: status !== null };
  }

  /** Marks the funding confirmed (called under the channel's lock). */
  markConfirmed(record: DuplexRecord): void {
    record.fundingConfirmed = true;
    this.save(record);
    this.log(`${record.channelId}: funding confirmed`);
  }
}

/**
 * Runs `fn` once whatever `queues` holds for `key` has settled (either way), and keeps its own
 * settling there for the next caller; the entry goes once nothing is queued behind it.
 */
export function chainAfter<T>(queues: Map<string, Promise<unknown>>, key: string, fn: () => Promise<T>): Promise<T> {
  const before = queues.get(key) ?? Promise.resolve();
  const run = before.then(fn, fn);
  const tail = run.catch(() => undefined);
  queues.set(key, tail);
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return run;
}
