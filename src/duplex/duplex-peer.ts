/**
 * One side of duplex channels (docs/duplex.md): A opens and sequences every state, B accepts
 * (possibly contributing coins) and asks A for the states in which B pays. Both sides keep every
 * state, close cooperatively, and watch the chain (duplex-watcher.ts) to publish the newest state
 * the moment it is final.
 *
 * Durability: a record is saved before any signature that depends on it leaves the process, and
 * before a received signature is acknowledged; the funding transaction is signed only after the
 * signer holds state 0 signed by both.
 */
import { randomBytes } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import { address as baddress, Transaction } from 'bitcoinjs-lib';
import { BroadcastRejectedError, type ChainBackend } from '../chain/backend.js';
import { resolveFeeRate } from '../chain/fee-rate.js';
import type { Secp256k1 } from '../crypto/secp256k1.js';
import { buildDuplexFundingTx, checkDuplexFundingTx, isWitnessOutputScript, type FundingInput, type FundingOutput } from '../protocol/duplex-funding.js';
import {
  buildCooperativeCloseTx,
  buildRolloverTx,
  closeSighash,
  completeDuplexSpend,
  duplexFundingScripts,
  duplexOutputs,
  duplexSighash,
  DUPLEX_CLOSE_HASHTYPE,
  DUPLEX_STATE_HASHTYPE,
  makeDuplexChannel,
  stateSighash,
  type DuplexChannel,
  type DuplexRole,
  type DuplexState,
  type DuplexTerms,
} from '../protocol/duplex-tx.js';
import { checkDuplexTerms, checkNextState, checkProposalForB, nextState, plannedInitialLocktime, updatesLeft, type DuplexPolicy } from '../protocol/duplex-update.js';
import { isProtocolErrorCode, ProtocolError } from '../protocol/errors.js';
import { errorMessage, msg, type Message, type MessageOf } from '../protocol/messages.js';
import { bitcoinjsNetwork, type NetworkName } from '../protocol/network.js';
import type { PeerLink } from '../transport/link.js';
import { WalletError } from '../wallet/errors.js';
import type { Wallet } from '../wallet/wallet.js';
import { recordChannel, type DuplexRecord, type SignedState } from './duplex-record.js';
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

export interface OpenDuplexRequest {
  readonly link: PeerLink;
  readonly contributionASat: bigint;
  /** What A asks B to put in; 0 (the default) for a channel A funds alone. */
  readonly contributionBSat?: bigint;
  readonly fundingFeeRateSatPerVb?: number;
  readonly stateFeeRateSatPerVb?: number;
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

/** `<id>/<index>` or `<id>#<request>` (error refs) → the id and what it is about. */
/** This side signed a cooperative close the peer has not completed: it may ask again, or complete the peer's. */
function unansweredClose(record: DuplexRecord): boolean {
  return record.phase === 'closing' && record.close?.kind === 'cooperative' && record.close.txHex === '';
}

function splitRef(ref: string | undefined): [string | undefined, { index?: number; requestId?: string }] {
  if (ref === undefined) return [undefined, {}];
  const slash = /^(.*)\/([0-9]{1,7})$/.exec(ref);
  if (slash) return [slash[1], { index: Number(slash[2]) }];
  const hash = /^(.*)#([0-9a-f]{32})$/.exec(ref);
  if (hash) return [hash[1], { requestId: hash[2] }];
  return [ref, {}];
}

/** What A signs to show B that a new connection is A's: the channel and A's newest index. */
function resumeDigest(channelId: string, index: number): Uint8Array {
  return sha256(new TextEncoder().encode(`paychan duplex resume ${channelId} ${index}`));
}

/** Openings B takes part in at once (each may reserve B's coins): a stranger cannot hold more. */
const MAX_OPENINGS = 16;
/** An opening with no funding signed after this many blocks is abandoned (its coins released). */
export const OPENING_TIMEOUT_BLOCKS = 6;

type Waiter = { resolve: (value: unknown) => void; reject: (err: Error) => void; timer: NodeJS.Timeout };

export class DuplexPeer {
  readonly role: DuplexRole;
  private readonly records = new Map<string, DuplexRecord>();
  private readonly byChannelId = new Map<string, string>();
  private readonly links = new Map<string, PeerLink>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly waiters = new Map<string, Waiter>();

  constructor(readonly options: DuplexPeerOptions) {
    this.role = options.role;
    for (const record of options.store.loadAll()) this.index(record);
  }

  private index(record: DuplexRecord): void {
    this.records.set(record.tempId, record);
    if (record.channelId) this.byChannelId.set(record.channelId, record.tempId);
  }

  private log(line: string): void {
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
    return recordChannel(record, makeDuplexChannel);
  }

  ownKey(record: DuplexRecord): { privateKey: Uint8Array; publicKey: Uint8Array } {
    return this.options.wallet.duplexKey(record.keyIndex);
  }

  // ------------------------------------------------------------------ plumbing

  /** Runs `fn` after every earlier operation on the same channel (per-channel serialization). */
  private withLock<T>(tempId: string, fn: () => Promise<T>): Promise<T> {
    const before = this.locks.get(tempId) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(tempId, tail);
    void tail.then(() => {
      if (this.locks.get(tempId) === tail) this.locks.delete(tempId);
    });
    return run;
  }

  /** A promise `settle(key)` resolves; it fails after `timeoutMs` (null: never, for work queued until the peer returns). */
  private wait<T>(key: string, what: string, timeoutMs: number | null = this.options.answerTimeoutMs ?? 30_000): Promise<T> {
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

  private settle(key: string, value: unknown, error?: Error): void {
    const waiter = this.waiters.get(key);
    if (!waiter) return;
    this.waiters.delete(key);
    clearTimeout(waiter.timer);
    if (error) waiter.reject(error);
    else waiter.resolve(value);
  }

  save(...records: DuplexRecord[]): void {
    this.options.store.saveAll(records);
  }

  private send(record: DuplexRecord, message: Message): void {
    const link = this.links.get(record.tempId);
    if (!link) throw new Error(`duplex ${record.channelId ?? record.tempId}: the peer is not connected`);
    link.send(message);
  }

  private sign(record: DuplexRecord, digest: Uint8Array): Uint8Array {
    return this.options.secp.ecdsaSign(digest, this.ownKey(record).privateKey);
  }

  private verifyPeer(record: DuplexRecord, channel: DuplexTerms, digest: Uint8Array, signature: Uint8Array): void {
    const key = record.role === 'A' ? channel.keyB : channel.keyA;
    if (!this.options.secp.ecdsaVerify(signature, digest, key)) throw new ProtocolError('INVALID_SIGNATURE');
  }

  private ownPayoutScript(): Uint8Array {
    return baddress.toOutputScript(this.options.wallet.receiveAddress(), bitcoinjsNetwork(this.options.network));
  }

  private async feeRate(targetBlocks: number): Promise<number> {
    return Math.min(this.options.policy.maxFeeRateSatPerVb, Math.ceil(await resolveFeeRate(this.options.backend, targetBlocks, this.options.fallbackFeeRateSatPerVb)));
  }

  /** The inputs of the other side must be unspent segwit outputs, or the funding txid could change under state 0. */
  private async checkOtherInputs(inputs: readonly { txid: string; vout: number }[], claimed?: readonly FundingInput[]): Promise<void> {
    const tip = await this.options.backend.getTip();
    for (const input of inputs) {
      const status = await this.options.backend.getOutpointStatus(input, Math.max(0, tip.height - 1));
      if (status.state !== 'unspent') throw new ProtocolError('FUNDING_MISMATCH', `input ${input.txid}:${input.vout} is ${status.state}`);
      if (!isWitnessOutputScript(status.scriptHex)) throw new ProtocolError('FUNDING_NOT_SEGWIT', `input ${input.txid}:${input.vout} is not a segwit output`);
      const c = claimed?.find((x) => x.txid === input.txid && x.vout === input.vout);
      if (c && c.valueSat !== status.valueSat) throw new ProtocolError('FUNDING_MISMATCH', `input ${input.txid}:${input.vout} holds ${status.valueSat} sat, not ${c.valueSat}`);
    }
  }

  /**
   * A message from the peer. Never throws: a refused message is answered with `error` and
   * changes nothing.
   */
  async receive(message: Message, link: PeerLink): Promise<void> {
    // An error names what it answers: `<channel>/<index>` for a state, `<channel>#<request>` for a pay request.
    const ref =
      message.type === 'error'
        ? message.ref
        : message.type === 'duplex-update'
          ? `${message.channelId}/${message.index}`
          : message.type === 'duplex-pay-request'
            ? `${message.channelId}#${message.requestId}`
            : 'tempId' in message
              ? message.tempId
              : 'channelId' in message
                ? message.channelId
                : undefined;
    try {
      if (message.type === 'duplex-open') {
        if (this.role !== 'B') throw new ProtocolError('UNEXPECTED_MESSAGE', 'this side does not accept duplex channels');
        await this.onOpen(message, link);
        return;
      }
      const [id, about] = splitRef(ref);
      const record = id === undefined ? undefined : this.get(id);
      if (message.type === 'error') {
        if (record) {
          this.log(`peer error on ${record.channelId ?? record.tempId}: ${message.code} ${message.message}`);
          await this.withLock(record.tempId, async () => this.onPeerError(record, message.code, message.message, about));
        }
        return;
      }
      if (!record) throw new ProtocolError('UNKNOWN_CHANNEL', id);
      // A is the client: its one connection is the link. B adopts a connection as the channel's
      // only once a message on it proved to come from A (a valid signature), so a stranger who
      // names a channel cannot divert B's messages.
      if (this.role === 'A' && link !== this.links.get(record.tempId)) this.links.set(record.tempId, link);
      await this.withLock(record.tempId, () => this.dispatch(record, message, link));
    } catch (err) {
      if (message.type === 'error') return;
      if (!(err instanceof ProtocolError)) this.log(`internal error on ${message.type}: ${(err as Error).stack ?? String(err)}`);
      const e = err instanceof ProtocolError ? err : new ProtocolError('INTERNAL_ERROR', (err as Error).message);
      link.send(errorMessage(e.code, e.message, e.action, ref));
    }
  }

  private async dispatch(record: DuplexRecord, message: Message, link: PeerLink): Promise<void> {
    switch (message.type) {
      case 'duplex-accept':
        return this.onAccept(record, message);
      case 'duplex-fund':
        return this.onFund(record, message, link);
      case 'duplex-funded':
        return this.onFunded(record, message);
      case 'duplex-channel':
        return; // B learns the channel id from duplex-fund already; this confirms A broadcast it
      case 'duplex-update':
        return this.onUpdate(record, message, link);
      case 'duplex-countersign':
        return this.onCountersign(record, message);
      case 'duplex-pay-request':
        return this.onPayRequest(record, message);
      case 'duplex-close':
        return this.onClose(record, message, link);
      case 'duplex-closed':
        return this.onClosed(record, message);
      case 'duplex-rollover':
        return this.onRollover(record, message, link);
      case 'duplex-rolled-over':
        return this.onRolledOver(record, message);
      case 'duplex-rollover-signed':
        return this.onRolloverSigned(record, message);
      case 'duplex-resume':
        return this.onResume(record, message, link);
      case 'duplex-resumed':
        this.expectRole('A', message.type);
        this.settle(`${record.tempId}:resumed`, message.queuedRequests);
        return;
      default:
        throw new ProtocolError('UNEXPECTED_MESSAGE', message.type);
    }
  }

  private expectRole(role: DuplexRole, type: string): void {
    if (this.role !== role) throw new ProtocolError('UNEXPECTED_MESSAGE', `${type} is sent to ${role}`);
  }

  private expectPhase(record: DuplexRecord, ...phases: DuplexRecord['phase'][]): void {
    if (!phases.includes(record.phase)) throw new ProtocolError('CHANNEL_NOT_OPEN', `the channel is ${record.phase}`);
  }

  // ------------------------------------------------------------------ opening

  /**
   * A: opens a channel over `link` and resolves with its id once the funding transaction is
   * broadcast (payments wait for its confirmations).
   * @throws ProtocolError from the peer's refusal; WalletError if the wallet cannot fund it.
   */
  async open(request: OpenDuplexRequest): Promise<string> {
    if (this.role !== 'A') throw new TypeError('only A opens duplex channels');
    const { policy, wallet } = this.options;
    const tempId = randomBytes(16).toString('hex');
    const tip = await this.options.backend.getTip();
    const key = wallet.nextDuplexKey();
    await this.options.saveWallet();
    const fundingFeeRateSatPerVb = request.fundingFeeRateSatPerVb ?? (await this.feeRate(6));
    const contributionBSat = request.contributionBSat ?? 0n;
    const terms: DuplexTerms = {
      network: this.options.network,
      keyA: key.publicKey,
      keyB: key.publicKey, // placeholder until accept; only its size matters below
      scriptA: this.ownPayoutScript(),
      scriptB: this.ownPayoutScript(),
      contributionASat: request.contributionASat,
      contributionBSat,
      initialLocktime: plannedInitialLocktime(policy, tip.height),
      deltaBlocks: policy.deltaBlocks,
      stateFeeRateSatPerVb: request.stateFeeRateSatPerVb ?? Math.max(policy.minStateFeeRateSatPerVb, Math.min(fundingFeeRateSatPerVb, policy.maxStateFeeRateSatPerVb)),
    };
    if (request.contributionASat <= 0n) throw new RangeError('A must put something into the channel');
    checkDuplexTerms(this.options.secp, policy, terms, tip.height);
    await wallet.sync();
    const { fundingScript } = duplexFundingScripts(key.publicKey, key.publicKey);
    const reserve = policy.feeReserveSat > 0n ? [{ script: this.ownPayoutScript(), valueSat: policy.feeReserveSat }] : [];
    const contribution = await wallet.contribute(`duplex:${tempId}`, [{ script: fundingScript, valueSat: request.contributionASat }, ...reserve], fundingFeeRateSatPerVb);
    await this.options.saveWallet();
    const record: DuplexRecord = {
      tempId,
      role: 'A',
      phase: 'opening',
      openedHeight: tip.height,
      keyIndex: key.index,
      terms,
      fundingFeeRateSatPerVb,
      minFundingConfirmations: policy.minFundingConfirmations,
      fundingConfirmed: false,
      ownInputs: contribution.inputs.map((i) => ({ ...i.outpoint, valueSat: i.valueSat })),
      ownOutputs: contribution.outputs.slice(1),
      updates: 0,
      paidAtoBSat: 0n,
      paidBtoASat: 0n,
    };
    this.index(record);
    this.links.set(tempId, request.link);
    this.save(record);
    const opened = this.wait<string>(`${tempId}:opened`, 'the channel to open');
    request.link.send(
      msg('duplex-open', {
        tempId,
        network: terms.network,
        keyA: terms.keyA,
        scriptA: terms.scriptA,
        contributionASat: terms.contributionASat,
        contributionBSat,
        initialLocktime: terms.initialLocktime,
        deltaBlocks: terms.deltaBlocks,
        stateFeeRateSatPerVb: terms.stateFeeRateSatPerVb,
        fundingFeeRateSatPerVb,
      }),
    );
    try {
      return await opened;
    } catch (err) {
      await this.abortOpening(record);
      throw err;
    }
  }

  /** Gives the coins of an opening that will not complete back to the wallet. */
  async abortOpening(record: DuplexRecord): Promise<void> {
    await this.withLock(record.tempId, async () => {
      if (record.phase !== 'opening' || (record.role === 'A' && record.current?.sigB)) return;
      record.phase = 'aborted';
      this.save(record);
      await this.options.wallet.release(`duplex:${record.tempId}`);
      await this.options.saveWallet();
    });
  }

  private async onOpen(m: MessageOf<'duplex-open'>, link: PeerLink): Promise<void> {
    const { policy, wallet } = this.options;
    if (this.records.has(m.tempId)) throw new ProtocolError('DUPLICATE_CHANNEL', m.tempId);
    if (m.network !== this.options.network) throw new ProtocolError('WRONG_NETWORK', `${m.network}, this peer is on ${this.options.network}`);
    if (m.contributionBSat > policy.maxContributionSat) throw new ProtocolError('CAPACITY_TOO_LARGE', `this peer puts at most ${policy.maxContributionSat} sat into a channel`);
    if (m.contributionASat <= 0n) throw new ProtocolError('CAPACITY_TOO_SMALL', 'A must put something into the channel');
    // Openings in progress, and channels B put coins into whose funding is not confirmed yet
    // (B's signed inputs are out; its coins stay reserved until the funding confirms).
    const opening = [...this.records.values()].filter((r) => r.phase === 'opening' || (r.role === 'B' && r.phase === 'open' && !r.fundingConfirmed && (r.ownInputs?.length ?? 0) > 0)).length;
    if (opening >= MAX_OPENINGS) throw new ProtocolError('RATE_LIMITED', `${opening} duplex openings are in progress; retry later`);
    const tip = await this.options.backend.getTip();
    const key = wallet.nextDuplexKey();
    const terms: DuplexTerms = {
      network: m.network,
      keyA: m.keyA,
      keyB: key.publicKey,
      scriptA: m.scriptA,
      scriptB: this.ownPayoutScript(),
      contributionASat: m.contributionASat,
      contributionBSat: m.contributionBSat,
      initialLocktime: m.initialLocktime,
      deltaBlocks: m.deltaBlocks,
      stateFeeRateSatPerVb: m.stateFeeRateSatPerVb,
    };
    checkDuplexTerms(this.options.secp, policy, terms, tip.height);
    if (m.fundingFeeRateSatPerVb > policy.maxFeeRateSatPerVb) throw new ProtocolError('FEE_RATE_INVALID', `funding fee rate above ${policy.maxFeeRateSatPerVb} sat/vB`);
    let inputs: FundingInput[] = [];
    let outputs: FundingOutput[] = [];
    if (m.contributionBSat > 0n) {
      await wallet.sync(); // coins that arrived since the last tip poll count too
      const { fundingScript } = duplexFundingScripts(m.keyA, key.publicKey);
      const reserve = policy.feeReserveSat > 0n ? [{ script: this.ownPayoutScript(), valueSat: policy.feeReserveSat }] : [];
      let c: Awaited<ReturnType<Wallet['contribute']>>;
      try {
        c = await wallet.contribute(`duplex:${m.tempId}`, [{ script: fundingScript, valueSat: m.contributionBSat }, ...reserve], m.fundingFeeRateSatPerVb);
      } catch (err) {
        if (err instanceof WalletError) throw new ProtocolError('CAPACITY_TOO_LARGE', `this peer cannot put ${m.contributionBSat} sat in now (${err.code})`);
        throw err;
      }
      inputs = c.inputs.map((i) => ({ ...i.outpoint, valueSat: i.valueSat }));
      outputs = c.outputs.slice(1);
    }
    await this.options.saveWallet();
    const record: DuplexRecord = {
      tempId: m.tempId,
      role: 'B',
      phase: 'opening',
      openedHeight: tip.height,
      keyIndex: key.index,
      terms,
      fundingFeeRateSatPerVb: m.fundingFeeRateSatPerVb,
      minFundingConfirmations: policy.minFundingConfirmations,
      fundingConfirmed: false,
      ownInputs: inputs,
      ownOutputs: outputs,
      updates: 0,
      paidAtoBSat: 0n,
      paidBtoASat: 0n,
    };
    this.index(record);
    this.links.set(m.tempId, link);
    this.save(record);
    link.send(
      msg('duplex-accept', {
        tempId: m.tempId,
        keyB: key.publicKey,
        scriptB: terms.scriptB,
        minFundingConfirmations: policy.minFundingConfirmations,
        inputs,
        outputs,
      }),
    );
  }

  private async onAccept(record: DuplexRecord, m: MessageOf<'duplex-accept'>): Promise<void> {
    this.expectRole('A', m.type);
    if (record.phase !== 'opening' || record.fundingTxHex) throw new ProtocolError('UNEXPECTED_MESSAGE', 'already accepted');
    const tip = await this.options.backend.getTip();
    const terms: DuplexTerms = { ...record.terms!, keyB: m.keyB, scriptB: m.scriptB };
    checkDuplexTerms(this.options.secp, this.options.policy, terms, tip.height);
    const inB = m.inputs.reduce((s, i) => s + i.valueSat, 0n);
    const outB = m.outputs.reduce((s, o) => s + o.valueSat, 0n);
    if (terms.contributionBSat > 0n && inB < terms.contributionBSat + outB) throw new ProtocolError('FUNDING_MISMATCH', `B's inputs (${inB}) do not cover its contribution and outputs`);
    if (terms.contributionBSat === 0n && (m.inputs.length > 0 || m.outputs.length > 0)) throw new ProtocolError('FUNDING_MISMATCH', 'B contributes nothing but sent coins');
    await this.checkOtherInputs(m.inputs, m.inputs);
    const { fundingScript } = duplexFundingScripts(terms.keyA, terms.keyB);
    const capacity = terms.contributionASat + terms.contributionBSat;
    const tx = buildDuplexFundingTx(fundingScript, capacity, [...record.ownInputs!, ...m.inputs], [...record.ownOutputs!, ...m.outputs]);
    const txid = tx.getId();
    record.terms = terms;
    record.channelId = `${txid}:0`;
    record.fundingVout = 0;
    record.fundingTxHex = tx.toHex();
    record.minFundingConfirmations = Math.max(record.minFundingConfirmations, m.minFundingConfirmations);
    const channel = this.channelOf(record);
    const state0: DuplexState = { index: 0, balanceASat: terms.contributionASat, balanceBSat: terms.contributionBSat };
    duplexOutputs(channel, state0, terms.stateFeeRateSatPerVb); // throws if state 0 cannot pay its fee
    const sigA = this.sign(record, stateSighash(channel, state0));
    record.pending = { ...state0, sigA };
    this.index(record);
    this.save(record);
    this.send(record, msg('duplex-fund', { tempId: record.tempId, fundingTx: record.fundingTxHex, fundingVout: 0, signature: sigA }));
  }

  private async onFund(record: DuplexRecord, m: MessageOf<'duplex-fund'>, link: PeerLink): Promise<void> {
    this.expectRole('B', m.type);
    if (record.phase !== 'opening') throw new ProtocolError('UNEXPECTED_MESSAGE', `the channel is ${record.phase}`);
    const terms = record.terms!;
    const { fundingScript } = duplexFundingScripts(terms.keyA, terms.keyB);
    const capacity = terms.contributionASat + terms.contributionBSat;
    const { tx, txid, otherInputs } = checkDuplexFundingTx(m.fundingTx, m.fundingVout, { fundingScript, capacitySat: capacity, ownInputs: record.ownInputs!, ownOutputs: record.ownOutputs! });
    await this.checkOtherInputs(otherInputs);
    const draft: DuplexRecord = { ...record, channelId: `${txid}:${m.fundingVout}`, fundingVout: m.fundingVout, fundingTxHex: m.fundingTx };
    const channel = this.channelOf(draft);
    const state0: DuplexState = { index: 0, balanceASat: terms.contributionASat, balanceBSat: terms.contributionBSat };
    this.verifyPeer(record, terms, stateSighash(channel, state0), m.signature);
    this.links.set(record.tempId, link);
    const sigB = this.sign(record, stateSighash(channel, state0));
    Object.assign(record, draft, { phase: 'open', current: { ...state0, sigA: m.signature, sigB } });
    this.index(record);
    this.save(record); // state 0 signed by both is durable before B signs its funding inputs
    const ownIndexes = tx.ins.flatMap((input, index) => (record.ownInputs!.some((o) => o.vout === input.index && Buffer.from(input.hash).reverse().toString('hex') === o.txid) ? [index] : []));
    const witnesses = this.options.wallet.signContribution(tx, ownIndexes);
    this.send(record, msg('duplex-funded', { tempId: record.tempId, signature: sigB, witnesses }));
    this.log(`opened ${record.channelId} (capacity ${capacity}, B put in ${terms.contributionBSat})`);
  }

  private async onFunded(record: DuplexRecord, m: MessageOf<'duplex-funded'>): Promise<void> {
    this.expectRole('A', m.type);
    if (record.phase !== 'opening' || !record.pending) throw new ProtocolError('UNEXPECTED_MESSAGE', 'no funding waiting for B');
    const channel = this.channelOf(record);
    const state0 = record.pending;
    this.verifyPeer(record, channel, stateSighash(channel, state0), m.signature);
    const tx = Transaction.fromHex(record.fundingTxHex!);
    const ownCount = record.ownInputs!.length;
    for (const w of m.witnesses) {
      if (w.index < ownCount || w.index >= tx.ins.length) throw new ProtocolError('FUNDING_MISMATCH', `witness for input ${w.index}, which is not B's`);
    }
    record.current = { index: 0, balanceASat: state0.balanceASat, balanceBSat: state0.balanceBSat, sigA: state0.sigA, sigB: m.signature };
    record.pending = undefined;
    record.phase = 'open';
    this.save(record); // state 0 signed by both is durable before A signs its funding inputs
    for (const w of m.witnesses) tx.setWitness(w.index, w.stack);
    for (const { index, stack } of this.options.wallet.signContribution(
      tx,
      record.ownInputs!.map((_, i) => i),
    ))
      tx.setWitness(index, stack);
    record.fundingTxHex = tx.toHex();
    this.save(record);
    try {
      await this.broadcast(record.fundingTxHex);
    } catch (err) {
      // Only a refusal while A's coins are still unspent means the funding cannot happen (B's
      // witnesses were bad); after a lost connection it may be in the mempool: keep the channel.
      const refused = err instanceof BroadcastRejectedError;
      const own = record.ownInputs![0]!;
      const still = refused ? await this.options.backend.getOutpointStatus(own, 0).catch(() => null) : null;
      if (still?.state !== 'unspent') {
        this.log(`funding ${tx.getId()} broadcast failed (${(err as Error).message}); the watcher sends it again`);
        this.settle(`${record.tempId}:opened`, record.channelId);
        return;
      }
      this.log(`funding ${tx.getId()} refused: ${(err as Error).message}`);
      record.phase = 'aborted';
      this.save(record);
      await this.options.wallet.release(`duplex:${record.tempId}`);
      await this.options.saveWallet();
      this.settle(`${record.tempId}:opened`, undefined, err as Error);
      return;
    }
    this.send(record, msg('duplex-channel', { tempId: record.tempId, channelId: record.channelId! }));
    this.log(`opened ${record.channelId} (capacity ${channel.capacitySat}, funding broadcast)`);
    this.settle(`${record.tempId}:opened`, record.channelId);
  }

  // ------------------------------------------------------------------ updates

  private requireUsable(record: DuplexRecord): void {
    this.expectPhase(record, 'open');
    if (!record.fundingConfirmed) throw new ProtocolError('CHANNEL_NOT_OPEN', `the funding has fewer than ${record.minFundingConfirmations} confirmations`);
  }

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

  private async onResume(record: DuplexRecord, m: MessageOf<'duplex-resume'>, link: PeerLink): Promise<void> {
    this.expectRole('B', m.type);
    if (!record.terms || !record.channelId) throw new ProtocolError('CHANNEL_NOT_OPEN', 'the channel is still opening');
    // Replaying a resume only works until the next update, and only redirects B's own requests.
    this.verifyPeer(record, record.terms, resumeDigest(record.channelId, m.index), m.signature);
    this.links.set(record.tempId, link);
    const queue = record.phase === 'open' ? (record.payBackQueue ?? []) : [];
    for (const q of queue) this.send(record, msg('duplex-pay-request', { channelId: record.channelId, amountSat: q.amountSat, requestId: q.requestId }));
    this.send(record, msg('duplex-resumed', { channelId: record.channelId, index: record.current?.index ?? 0, queuedRequests: queue.length }));
  }

  /** Proposals in flight per channel: the next waits for the previous one's countersignature. */
  private readonly proposals = new Map<string, Promise<unknown>>();

  private propose(channelId: string, payer: DuplexRole, amountSat: bigint, requestId?: string): Promise<SignedState> {
    const key = this.get(channelId)?.tempId ?? channelId;
    const before = this.proposals.get(key) ?? Promise.resolve();
    const run = before.then(
      () => this.proposeNow(channelId, payer, amountSat, requestId),
      () => this.proposeNow(channelId, payer, amountSat, requestId),
    );
    const tail = run.catch(() => undefined);
    this.proposals.set(key, tail);
    void tail.then(() => {
      if (this.proposals.get(key) === tail) this.proposals.delete(key);
    });
    return run;
  }

  private async proposeNow(channelId: string, payer: DuplexRole, amountSat: bigint, requestId?: string): Promise<SignedState> {
    let record = this.get(channelId, true);
    if (!record) throw new RangeError(`unknown duplex channel ${channelId}`);
    const atStart = await this.options.backend.getTip();
    // A rollover proposed and not answered is sent again; one B refused only when the budget is spent.
    const rollingOver = record.phase === 'open' && record.rolloverProposal !== undefined && !record.rolloverProposal.refused;
    const spent = record.phase === 'open' && record.current && record.terms && updatesLeft(record.terms, record.current.index, atStart.height, this.options.policy.marginBlocks) < 1;
    if (rollingOver || spent) {
      this.log(`${record.channelId}: update budget spent at tip ${atStart.height}: rolling over`);
      const successorId = await this.rollover(record.channelId!);
      record = this.get(successorId)!;
      await this.waitConfirmed(record);
    }
    const r = record;
    // The lock covers signing and sending only: B's answer is handled under the same lock.
    const { answered } = await this.withLock(r.tempId, async () => {
      this.requireUsable(r);
      if (r.pending) throw new ProtocolError('UPDATE_IN_FLIGHT', `state ${r.pending.index} waits for B's countersignature (resume to resend it)`);
      if (requestId !== undefined && r.proposedRequests?.includes(requestId)) throw new ProtocolError('UNEXPECTED_MESSAGE', `pay request ${requestId} was already proposed`);
      const tip = await this.options.backend.getTip();
      const channel = this.channelOf(r);
      const base = r.current!;
      // A state A signed and B refused may still be countersigned by B later: skip its index, so
      // whatever B does with it, the next state (an earlier locktime) beats it.
      const index = Math.max(base.index, r.refusedIndex ?? 0) + 1;
      const next = nextState(channel, base, payer, amountSat, tip.height, this.options.policy.marginBlocks, index);
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

  private sendUpdate(record: DuplexRecord): void {
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

  /**
   * The peer refused something of ours. `about` says what, when the error names it: a state
   * index (`/i`) or a pay request (`#id`).
   *
   * A refused state is not gone: B holds A's signature on it and could countersign it any time,
   * and it beats every state below its index. So A at once proposes a state above it with the
   * current balances (which B, whose balance does not drop, has every reason to countersign); once
   * countersigned, the refused state can never be final first. If B refuses that too, A says so
   * loudly: the refused payment may still be claimed.
   */
  private async onPeerError(record: DuplexRecord, code: string, text: string, about: { index?: number; requestId?: string }): Promise<void> {
    const error = new ProtocolError(isProtocolErrorCode(code) ? code : 'INTERNAL_ERROR', text);
    const p = record.pending;
    if (this.role === 'A' && p && about.index === p.index) {
      record.refusedIndex = Math.max(record.refusedIndex ?? 0, p.index);
      record.pending = undefined;
      const current = record.current!;
      const cancel: DuplexState = { index: p.index + 1, balanceASat: current.balanceASat, balanceBSat: current.balanceBSat };
      const channel = this.channelOf(record);
      const tip = await this.options.backend.getTip();
      let canCancel = p.cancels === undefined && record.phase === 'open';
      try {
        if (canCancel) checkNextState(channel, current, cancel, tip.height, this.options.policy.marginBlocks);
      } catch {
        canCancel = false;
      }
      if (canCancel) {
        record.pending = { ...cancel, sigA: this.sign(record, stateSighash(channel, cancel)), cancels: p.index };
        this.save(record);
        this.sendUpdate(record);
        this.log(`${record.channelId}: B refused state ${p.index} (${code}); proposed state ${cancel.index} with the current balances to cancel it`);
      } else {
        this.save(record);
        this.log(`${record.channelId}: WARNING: B refused state ${p.cancels ?? p.index} and its cancellation could not be signed (${code}): B still holds A's signature on it and may claim it`);
      }
      const target = p.cancels ?? p.index;
      this.settle(`${record.tempId}:countersign:${p.index}`, undefined, new ProtocolError(error.code, `${text} (state ${target} refused; ${canCancel ? `state ${cancel.index} cancelling it was proposed` : 'it could not be cancelled: B may still claim it'})`));
      return;
    }
    if (this.role === 'B' && about.requestId !== undefined) {
      // A refused one pay request: it will never be proposed; drop it so B's balance is free again.
      record.payBackQueue = record.payBackQueue?.filter((q) => q.requestId !== about.requestId);
      this.save(record);
      this.settle(`${record.tempId}:request:${about.requestId}`, undefined, error);
      return;
    }
    if (this.role === 'A' && record.rolloverProposal && this.waiters.has(`${record.tempId}:rolled`)) {
      record.rolloverProposal = { ...record.rolloverProposal, refused: true }; // the next attempt may change the rate
      this.save(record);
    }
    // Anything else fails the calls waiting on this channel, but never a queued pay request (it
    // stays queued and may still be applied).
    for (const key of [...this.waiters.keys()]) if (key.startsWith(`${record.tempId}:`) && !key.startsWith(`${record.tempId}:request:`)) this.settle(key, undefined, error);
  }

  private async onPayRequest(record: DuplexRecord, m: MessageOf<'duplex-pay-request'>): Promise<void> {
    this.expectRole('A', m.type);
    if (record.proposedRequests?.includes(m.requestId) || record.pending?.requestId === m.requestId) return; // a repeat
    // Proposing takes the channel's lock itself: run it after this message's turn.
    void this.propose(record.channelId!, 'B', m.amountSat, m.requestId).catch((err: Error) => {
      const e = err instanceof ProtocolError ? err : new ProtocolError('INTERNAL_ERROR', err.message);
      this.links.get(record.tempId)?.send(errorMessage(e.code, e.message, 'reject', `${record.channelId}#${m.requestId}`));
    });
  }

  private async onUpdate(record: DuplexRecord, m: MessageOf<'duplex-update'>, link: PeerLink): Promise<void> {
    this.expectRole('B', m.type);
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
    const tip = await this.options.backend.getTip();
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

  private async onCountersign(record: DuplexRecord, m: MessageOf<'duplex-countersign'>): Promise<void> {
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
    this.save(record);
    this.settle(`${record.tempId}:countersign:${p.index}`, record.current);
    const tip = await this.options.backend.getTip();
    this.announceBudget(record, tip.height);
  }

  private advance(record: DuplexRecord, next: SignedState): void {
    const before = record.current!;
    const toB = next.balanceBSat - before.balanceBSat;
    if (toB > 0n) record.paidAtoBSat += toB;
    else record.paidBtoASat += -toB;
    record.current = next;
    record.updates++;
  }

  /** Both sides announce, in their logs and status, that the channel will be rolled over soon. */
  private announceBudget(record: DuplexRecord, tipHeight: number): void {
    const left = updatesLeft(record.terms!, record.current!.index, tipHeight, this.options.policy.marginBlocks);
    if (left <= this.options.policy.budgetWarningUpdates) {
      this.log(`${record.channelId}: ${left} update(s) left before the locktime margin; the next one after that rolls the channel over into a new one`);
    }
  }

  // ------------------------------------------------------------------ cooperative close

  /** The lowest fee rate this side signs a close or rollover for: half the node's estimate, at least 1 sat/vB. */
  private async minCloseRate(): Promise<number> {
    return Math.max(1, Math.floor((await this.feeRate(6)) / 2));
  }

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
      // Asking again (the peer refused or never answered) is safe: every close we sign pays the
      // same newest balances, whichever one the peer completes.
      if (!unansweredClose(record)) this.expectPhase(record, 'open');
      if (record.pending) throw new ProtocolError('UPDATE_IN_FLIGHT', `state ${record.pending.index}`);
      const channel = this.channelOf(record);
      const current = record.current!;
      const tx = buildCooperativeCloseTx(channel, current, rate);
      const signature = this.sign(record, closeSighash(channel, current, rate));
      const tip = await this.options.backend.getTip();
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

  private async onClose(record: DuplexRecord, m: MessageOf<'duplex-close'>, link: PeerLink): Promise<void> {
    if (!unansweredClose(record)) this.expectPhase(record, 'open');
    if (record.pending) throw new ProtocolError('UPDATE_IN_FLIGHT', `state ${record.pending.index}`);
    const current = record.current!;
    if (m.index !== current.index) throw new ProtocolError('STATE_INDEX_MISMATCH', `close of state ${m.index}, the newest is ${current.index}`);
    if (m.feeRateSatPerVb > this.options.policy.maxFeeRateSatPerVb) throw new ProtocolError('FEE_RATE_INVALID', `above ${this.options.policy.maxFeeRateSatPerVb} sat/vB`);
    const floor = await this.minCloseRate();
    if (m.feeRateSatPerVb < floor) throw new ProtocolError('FEE_RATE_INVALID', `below ${floor} sat/vB: the close might not confirm`);
    const channel = this.channelOf(record);
    const digest = closeSighash(channel, current, m.feeRateSatPerVb);
    this.verifyPeer(record, channel, digest, m.signature);
    this.links.set(record.tempId, link);
    const own = this.sign(record, digest);
    const [sigA, sigB] = record.role === 'A' ? [own, m.signature] : [m.signature, own];
    const tx = completeDuplexSpend(channel, buildCooperativeCloseTx(channel, current, m.feeRateSatPerVb), sigA, sigB, DUPLEX_CLOSE_HASHTYPE);
    const tip = await this.options.backend.getTip();
    record.phase = 'closing';
    record.close = { kind: 'cooperative', txid: tx.getId(), txHex: tx.toHex(), feeSat: duplexOutputs(channel, current, m.feeRateSatPerVb).feeSat, feeRateSatPerVb: m.feeRateSatPerVb, broadcastHeight: tip.height };
    this.save(record);
    this.send(record, msg('duplex-closed', { channelId: record.channelId!, closeTxid: tx.getId(), signature: own }));
    await this.broadcast(tx.toHex()).catch((err: Error) => this.log(`close ${tx.getId()} not broadcast yet (${err.message}); the watcher retries`));
    this.log(`closed ${record.channelId} cooperatively at the peer's request: ${tx.getId()}`);
  }

  private async onClosed(record: DuplexRecord, m: MessageOf<'duplex-closed'>): Promise<void> {
    const close = record.close;
    if (record.phase !== 'closing' || close?.kind !== 'cooperative') throw new ProtocolError('UNEXPECTED_MESSAGE', 'no close was asked for');
    if (close.txHex !== '') return; // a repeat
    if (close.txid !== m.closeTxid) throw new ProtocolError('UNEXPECTED_MESSAGE', `${m.closeTxid} is not the close this side signed`);
    const channel = this.channelOf(record);
    const current = record.current!;
    const rate = close.feeRateSatPerVb;
    const digest = closeSighash(channel, current, rate);
    this.verifyPeer(record, channel, digest, m.signature);
    const own = this.sign(record, digest);
    const [sigA, sigB] = record.role === 'A' ? [own, m.signature] : [m.signature, own];
    const tx = completeDuplexSpend(channel, buildCooperativeCloseTx(channel, current, rate), sigA, sigB, DUPLEX_CLOSE_HASHTYPE);
    record.close = { ...close, txHex: tx.toHex() };
    this.save(record);
    await this.broadcast(tx.toHex());
    this.settle(`${record.tempId}:closed`, tx.getId());
  }

  /** Broadcasts; a transaction the node already has counts as sent (the backend's contract). */
  async broadcast(txHex: string): Promise<void> {
    await this.options.backend.broadcast(txHex);
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
      const roll = buildRolloverTx(channel, current, feeRateSatPerVb);
      const next = this.successorChannel(channel, roll, initialLocktime);
      const stateSignature = this.sign(record, stateSighash(next, { index: 0, balanceASat: roll.contributionASat, balanceBSat: roll.contributionBSat }));
      const waiting = this.wait<string>(`${record.tempId}:rolled`, 'B to sign the rollover');
      this.send(record, msg('duplex-rollover', { channelId: record.channelId!, index: current.index, initialLocktime, feeRateSatPerVb, stateSignature }));
      return { answered: waiting };
    });
    return answered;
  }

  private successorChannel(channel: DuplexChannel, roll: ReturnType<typeof buildRolloverTx>, initialLocktime: number): DuplexChannel {
    return makeDuplexChannel(
      { ...channel, contributionASat: roll.contributionASat, contributionBSat: roll.contributionBSat, initialLocktime },
      { txid: roll.tx.getId(), vout: 0 },
    );
  }

  private async onRollover(record: DuplexRecord, m: MessageOf<'duplex-rollover'>, link: PeerLink): Promise<void> {
    this.expectRole('B', m.type);
    const current = record.current!;
    const repeat = record.phase === 'closing' && record.close?.kind === 'rollover';
    if (!repeat) this.expectPhase(record, 'open');
    if (m.index !== current.index) throw new ProtocolError('STATE_INDEX_MISMATCH', `rollover of state ${m.index}, the newest is ${current.index}`);
    if (m.feeRateSatPerVb > this.options.policy.maxFeeRateSatPerVb) throw new ProtocolError('FEE_RATE_INVALID', `above ${this.options.policy.maxFeeRateSatPerVb} sat/vB`);
    const channel = this.channelOf(record);
    const tip = await this.options.backend.getTip();
    if (!repeat && updatesLeft(channel, current.index, tip.height, this.options.policy.marginBlocks) > this.options.policy.budgetWarningUpdates) {
      throw new ProtocolError('UNEXPECTED_MESSAGE', 'the update budget is not nearly spent: no rollover yet');
    }
    if (!repeat && m.feeRateSatPerVb < (await this.minCloseRate())) throw new ProtocolError('FEE_RATE_INVALID', 'the rollover fee rate is too low to confirm');
    let roll: ReturnType<typeof buildRolloverTx>;
    try {
      roll = buildRolloverTx(channel, current, m.feeRateSatPerVb);
    } catch (err) {
      throw new ProtocolError('BALANCE_MISMATCH', (err as Error).message);
    }
    const next = this.successorChannel(channel, roll, m.initialLocktime);
    const known = repeat ? this.get(record.close!.successorId!) : undefined;
    // B signs state 0 of one new channel once: a retry must name the same one.
    if (repeat && (record.close!.successorId !== next.id || known?.terms?.initialLocktime !== m.initialLocktime)) {
      throw new ProtocolError('UNEXPECTED_MESSAGE', 'a rollover with other terms was already signed');
    }
    if (!repeat) checkDuplexTerms(this.options.secp, this.options.policy, next, tip.height);
    const closeDigest = duplexSighash(channel, roll.tx, DUPLEX_STATE_HASHTYPE);
    const state0: DuplexState = { index: 0, balanceASat: roll.contributionASat, balanceBSat: roll.contributionBSat };
    const stateDigest = stateSighash(next, state0);
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

  private async onRolledOver(record: DuplexRecord, m: MessageOf<'duplex-rolled-over'>): Promise<void> {
    this.expectRole('A', m.type);
    const proposal = record.rolloverProposal;
    if (!proposal || record.close?.successorId || record.phase !== 'open') {
      if (record.close?.successorId === m.newChannelId) return; // a repeat
      throw new ProtocolError('UNEXPECTED_MESSAGE', 'no rollover was asked for');
    }
    const channel = this.channelOf(record);
    const current = record.current!;
    const roll = buildRolloverTx(channel, current, proposal.feeRateSatPerVb);
    const next = this.successorChannel(channel, roll, proposal.initialLocktime);
    if (next.id !== m.newChannelId) throw new ProtocolError('FUNDING_MISMATCH', `the new channel is ${next.id}, not ${m.newChannelId}`);
    const state0: DuplexState = { index: 0, balanceASat: roll.contributionASat, balanceBSat: roll.contributionBSat };
    const closeDigest = duplexSighash(channel, roll.tx, DUPLEX_STATE_HASHTYPE);
    this.verifyPeer(record, channel, stateSighash(next, state0), m.stateSignature);
    this.verifyPeer(record, channel, closeDigest, m.closeSignature);
    const ownState = this.sign(record, stateSighash(next, state0));
    const ownClose = this.sign(record, closeDigest);
    const tx = completeDuplexSpend(channel, roll.tx, ownClose, m.closeSignature, DUPLEX_STATE_HASHTYPE);
    const successor = this.successorRecord(record, next, { ...state0, sigA: ownState, sigB: m.stateSignature }, tx.toHex());
    const tip = await this.options.backend.getTip();
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

  private async onRolloverSigned(record: DuplexRecord, m: MessageOf<'duplex-rollover-signed'>): Promise<void> {
    this.expectRole('B', m.type);
    const close = record.close;
    if (record.phase !== 'closing' || close?.kind !== 'rollover') throw new ProtocolError('UNEXPECTED_MESSAGE', 'no rollover was signed');
    if (close.txHex !== '') return; // a repeat
    const channel = this.channelOf(record);
    const roll = buildRolloverTx(channel, record.current!, close.feeRateSatPerVb);
    const digest = duplexSighash(channel, roll.tx, DUPLEX_STATE_HASHTYPE);
    this.verifyPeer(record, channel, digest, m.closeSignature);
    const tx = completeDuplexSpend(channel, roll.tx, m.closeSignature, this.sign(record, digest), DUPLEX_STATE_HASHTYPE);
    record.close = { ...close, txHex: tx.toHex() };
    this.save(record);
    await this.broadcast(tx.toHex()).catch((err: Error) => this.log(`rollover ${tx.getId()} not broadcast yet (${err.message}); the watcher retries`));
    this.log(`rolled ${record.channelId} over into ${close.successorId}`);
  }

  private successorRecord(record: DuplexRecord, next: DuplexChannel, state0: SignedState, fundingTxHex: string): DuplexRecord {
    return {
      tempId: randomBytes(16).toString('hex'),
      channelId: next.id,
      role: record.role,
      phase: 'open',
      keyIndex: record.keyIndex,
      terms: {
        network: next.network,
        keyA: next.keyA,
        keyB: next.keyB,
        scriptA: next.scriptA,
        scriptB: next.scriptB,
        contributionASat: next.contributionASat,
        contributionBSat: next.contributionBSat,
        initialLocktime: next.initialLocktime,
        deltaBlocks: next.deltaBlocks,
        stateFeeRateSatPerVb: next.stateFeeRateSatPerVb,
      },
      fundingFeeRateSatPerVb: record.fundingFeeRateSatPerVb,
      minFundingConfirmations: record.minFundingConfirmations,
      fundingTxHex,
      fundingVout: 0,
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

  /** Marks the funding confirmed (called by the watcher). */
  markConfirmed(record: DuplexRecord): void {
    record.fundingConfirmed = true;
    this.save(record);
    this.log(`${record.channelId}: funding confirmed`);
  }
}
