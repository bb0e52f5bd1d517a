/** Opening a duplex channel: one funding transaction, possibly with coins from both sides. */
import { randomBytes } from 'node:crypto';
import { Transaction } from 'bitcoinjs-lib';
import { BroadcastRejectedError } from '../chain/backend.js';
import { equalBytes } from '../protocol/bytes.js';
import { buildDuplexFundingTx, checkDuplexFundingTx, type FundingInput, type FundingOutput } from '../protocol/duplex-funding.js';
import { duplexFundingScripts, duplexOutputs, stateSighash, type DuplexState, type DuplexTerms } from '../protocol/duplex-tx.js';
import { checkDuplexTerms, plannedInitialLocktime } from '../protocol/duplex-update.js';
import { ProtocolError } from '../protocol/errors.js';
import { msg, type MessageOf } from '../protocol/messages.js';
import { addressGroup } from '../transport/address-group.js';
import type { PeerLink } from '../transport/link.js';
import { WalletError } from '../wallet/errors.js';
import type { Wallet } from '../wallet/wallet.js';
import { type DuplexRecord } from './duplex-record.js';
import { DuplexCore } from './duplex-core.js';

export interface OpenDuplexRequest {
  readonly link: PeerLink;
  readonly contributionASat: bigint;
  /** What A asks B to put in; 0 (the default) for a channel A funds alone. */
  readonly contributionBSat?: bigint;
  readonly fundingFeeRateSatPerVb?: number;
  readonly stateFeeRateSatPerVb?: number;
}

/**
 * Openings B takes part in at once per payer key, and per source address (what the transport
 * knows of the connection): one payer, or one connection rotating keys, cannot hold more and
 * block everyone else's openings. There is no global cap: B reserves coins only for an opener
 * whose own inputs are real on chain, and a funding B signed that never reaches the node gives
 * them back after OPENING_TIMEOUT_BLOCKS (duplex-watcher.ts): a stranger naming someone else's
 * coin holds B's coins that long, no longer.
 */
export const MAX_OPENINGS_PER_KEY = 4;
export const MAX_OPENINGS_PER_ADDRESS = 16;
/** A P2WPKH output script (the wallet's kind), standing in for B's before B allocates one. */
const P2WPKH_PLACEHOLDER = Uint8Array.of(0x00, 0x14, ...new Uint8Array(20));
/**
 * An opening with no funding signed after this many blocks is abandoned (its coins released); so
 * are B's coins in a funding B signed that the node has not seen this many blocks later.
 */
export const OPENING_TIMEOUT_BLOCKS = 6;

/** Opening: keys, coins from one or both sides, state 0 signed by both before any funding input. */
export abstract class DuplexOpening extends DuplexCore {
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
    // One new address per opening: A's payout, and its fee-reserve coin.
    const ownScript = this.ownPayoutScript();
    const terms: DuplexTerms = {
      network: this.options.network,
      keyA: key.publicKey,
      keyB: key.publicKey, // placeholder until accept; only its size matters below
      scriptA: ownScript,
      scriptB: ownScript, // placeholder likewise
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
    const reserve = policy.feeReserveSat > 0n ? [{ script: ownScript, valueSat: policy.feeReserveSat }] : [];
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
        inputs: [...record.ownInputs!],
        outputs: [...record.ownOutputs!],
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
      if (record.role === 'B') {
        // B signed nothing for it (onFund moves it to open): nothing to keep, and a stranger's
        // free openings must not pile up as records.
        this.forget(record);
      } else {
        this.save(record);
      }
      await this.options.wallet.release(`duplex:${record.tempId}`);
      await this.options.saveWallet();
    });
  }

  /**
   * B: forgets a channel it put nothing into whose funding the node never saw (the watcher
   * decides when). The caller holds the channel's lock.
   */
  forgetUnfunded(record: DuplexRecord): void {
    if (record.role !== 'B' || record.fundingConfirmed || record.predecessorId || (record.ownInputs?.length ?? 0) > 0) throw new TypeError('only a B channel with no coins of B and no confirmed funding is forgotten');
    this.forget(record);
  }

  /** The tip height (as the watcher last saw it) at which a record's funding was last probed for `duplex-channel`. */
  private readonly channelProbedAt = new WeakMap<DuplexRecord, number>();

  /** tempIds of openings B is answering now (its steps await the node and the wallet). */
  private readonly openingNow = new Set<string>();

  protected async onOpen(m: MessageOf<'duplex-open'>, link: PeerLink): Promise<void> {
    if (this.records.has(m.tempId) || this.openingNow.has(m.tempId)) throw new ProtocolError('DUPLICATE_CHANNEL', m.tempId);
    this.openingNow.add(m.tempId);
    try {
      await this.answerOpen(m, link);
    } finally {
      this.openingNow.delete(m.tempId);
    }
  }

  private async answerOpen(m: MessageOf<'duplex-open'>, link: PeerLink): Promise<void> {
    const { policy, wallet } = this.options;
    if (m.network !== this.options.network) throw new ProtocolError('WRONG_NETWORK', `${m.network}, this peer is on ${this.options.network}`);
    if (m.contributionBSat > policy.maxContributionSat) throw new ProtocolError('CAPACITY_TOO_LARGE', `this peer puts at most ${policy.maxContributionSat} sat into a channel`);
    if (m.contributionASat <= 0n) throw new ProtocolError('CAPACITY_TOO_SMALL', 'A must put something into the channel');
    this.checkOpeningLimits(m.keyA, link.peer);
    const tip = await this.options.backend.getTip();
    const proposed = {
      network: m.network,
      keyA: m.keyA,
      scriptA: m.scriptA,
      contributionASat: m.contributionASat,
      contributionBSat: m.contributionBSat,
      initialLocktime: m.initialLocktime,
      deltaBlocks: m.deltaBlocks,
      stateFeeRateSatPerVb: m.stateFeeRateSatPerVb,
    };
    // A's terms are checked before B spends a key index or an address on them (with B's own
    // fields standing in: A's key, and a P2WPKH of the size B's payout script has), so refused
    // proposals, from anyone, use up nothing; then once more with B's real key and script.
    checkDuplexTerms(this.options.secp, policy, { ...proposed, keyB: m.keyA, scriptB: P2WPKH_PLACEHOLDER }, tip.height);
    if (m.fundingFeeRateSatPerVb > policy.maxFeeRateSatPerVb) throw new ProtocolError('FEE_RATE_INVALID', `funding fee rate above ${policy.maxFeeRateSatPerVb} sat/vB`);
    // B shows and reserves coins only for an A whose own coins are real: unspent segwit outputs
    // holding what A claims, enough for its contribution. (It proves they exist, not that they
    // are A's: the limits per key and address bound what a stranger can hold that way.)
    if (m.contributionBSat > 0n) await this.checkOpenerInputs(m);
    const key = wallet.nextDuplexKey();
    // One new address per opening: B's payout, and its fee-reserve coin.
    const ownScript = this.ownPayoutScript();
    const terms: DuplexTerms = { ...proposed, keyB: key.publicKey, scriptB: ownScript };
    checkDuplexTerms(this.options.secp, policy, terms, tip.height);
    let inputs: FundingInput[] = [];
    let outputs: FundingOutput[] = [];
    if (m.contributionBSat > 0n) {
      await wallet.sync(); // coins that arrived since the last tip poll count too
      const { fundingScript } = duplexFundingScripts(m.keyA, key.publicKey);
      const reserve = policy.feeReserveSat > 0n ? [{ script: ownScript, valueSat: policy.feeReserveSat }] : [];
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
    // Checked again after the awaits, right before the record exists: the payer's other
    // openings may have come in meanwhile.
    try {
      this.checkOpeningLimits(m.keyA, link.peer);
    } catch (err) {
      if (inputs.length > 0) {
        await wallet.release(`duplex:${m.tempId}`);
        await this.options.saveWallet();
      }
      throw err;
    }
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
      ...(link.peer !== undefined ? { openedBy: link.peer } : {}),
      updates: 0,
      paidAtoBSat: 0n,
      paidBtoASat: 0n,
    };
    this.index(record);
    this.links.set(m.tempId, link);
    // Not proven yet: an opening costs its sender nothing (B may put nothing in, A shows nothing).
    // The connection stops counting as a stranger's once the node has the funding (onChannel).
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

  /**
   * Refuses an opening from a payer key, or a source address, that already holds its share of
   * openings in progress, and of channels whose funding is not confirmed yet (B's signed inputs
   * are out and its coins reserved until then, or B keeps a record for it), until the watcher
   * gives those up: B's coins are released OPENING_TIMEOUT_BLOCKS after B signed if the node
   * never saw the funding, but the record counts until it is aborted (a coin of B's spent
   * elsewhere, deep enough) or forgotten (B put nothing in).
   * @throws ProtocolError RATE_LIMITED.
   */
  private checkOpeningLimits(keyA: Uint8Array, address: string | undefined): void {
    // A record whose coins B released still counts until it is aborted: its signed funding may
    // still confirm, it is watched every tip, and a stranger must not pile them up for free.
    const busy = [...this.records.values()].filter((r) => r.role === 'B' && (r.phase === 'opening' || (r.phase === 'open' && !r.fundingConfirmed && !r.predecessorId)));
    const byKey = busy.filter((r) => r.terms && equalBytes(r.terms.keyA, keyA)).length;
    if (byKey >= MAX_OPENINGS_PER_KEY) throw new ProtocolError('RATE_LIMITED', `${byKey} duplex openings of this key are in progress; retry later`);
    if (address === undefined) return;
    // Per IPv4 address, per IPv6 /64 (a host's usual share), as the transport counts connections.
    const group = addressGroup(address);
    const byAddress = busy.filter((r) => r.openedBy !== undefined && addressGroup(r.openedBy) === group).length;
    if (byAddress >= MAX_OPENINGS_PER_ADDRESS) throw new ProtocolError('RATE_LIMITED', `${byAddress} duplex openings from ${group} are in progress; retry later`);
  }

  /**
   * A's inputs, before B shows any coin of its own: unspent segwit outputs holding the values A
   * claims, none of them B's, enough for A's contribution and outputs.
   * @throws ProtocolError FUNDING_MISMATCH, FUNDING_NOT_SEGWIT.
   */
  private async checkOpenerInputs(m: MessageOf<'duplex-open'>): Promise<void> {
    if (m.inputs.length === 0) throw new ProtocolError('FUNDING_MISMATCH', 'A shows no coins for its contribution');
    const keys = new Set(m.inputs.map((i) => `${i.txid}:${i.vout}`));
    if (keys.size !== m.inputs.length) throw new ProtocolError('FUNDING_MISMATCH', 'A names one coin twice');
    const own = new Set(this.options.wallet.coins().map((c) => `${c.outpoint.txid}:${c.outpoint.vout}`));
    if ([...keys].some((k) => own.has(k))) throw new ProtocolError('FUNDING_MISMATCH', 'A names a coin of this side');
    const inA = m.inputs.reduce((s, i) => s + i.valueSat, 0n);
    const outA = m.outputs.reduce((s, o) => s + o.valueSat, 0n);
    if (inA < m.contributionASat + outA) throw new ProtocolError('FUNDING_MISMATCH', `A's inputs (${inA}) do not cover its contribution and outputs`);
    await this.checkOtherInputs(m.inputs, m.inputs);
  }

  protected async onAccept(record: DuplexRecord, m: MessageOf<'duplex-accept'>): Promise<void> {
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

  protected async onFund(record: DuplexRecord, m: MessageOf<'duplex-fund'>, link: PeerLink): Promise<void> {
    this.expectRole('B', m.type);
    if (record.phase !== 'opening') throw new ProtocolError('UNEXPECTED_MESSAGE', `the channel is ${record.phase}`);
    const terms = record.terms!;
    const { fundingScript } = duplexFundingScripts(terms.keyA, terms.keyB);
    const capacity = terms.contributionASat + terms.contributionBSat;
    const { tx, txid, otherInputs, ownIndexes } = checkDuplexFundingTx(m.fundingTx, m.fundingVout, { fundingScript, capacitySat: capacity, ownInputs: record.ownInputs!, ownOutputs: record.ownOutputs! });
    await this.checkOtherInputs(otherInputs);
    const tip = await this.options.backend.getTip();
    const draft: DuplexRecord = { ...record, channelId: `${txid}:${m.fundingVout}`, fundingTxHex: m.fundingTx };
    const channel = this.channelOf(draft);
    const state0: DuplexState = { index: 0, balanceASat: terms.contributionASat, balanceBSat: terms.contributionBSat };
    const digest0 = stateSighash(channel, state0);
    this.verifyPeer(record, terms, digest0, m.signature);
    this.links.set(record.tempId, link);
    const sigB = this.sign(record, digest0);
    Object.assign(record, draft, { phase: 'open', fundingSignedHeight: tip.height, current: { ...state0, sigA: m.signature, sigB } });
    this.index(record);
    this.save(record); // state 0 signed by both is durable before B signs its funding inputs
    const witnesses = this.options.wallet.signContribution(tx, ownIndexes);
    this.send(record, msg('duplex-funded', { tempId: record.tempId, signature: sigB, witnesses }));
    this.log(`opened ${record.channelId} (capacity ${capacity}, B put in ${terms.contributionBSat})`);
  }

  /**
   * B: A says the funding is broadcast. If the node has it (in the mempool or mined), the opener
   * paid for it on chain: the connection B adopted for the channel, when this came on it, stops
   * counting as a stranger's (the transport's stranger budget and deadline). Otherwise nothing
   * changes: the watcher follows the funding either way.
   */
  protected async onChannel(record: DuplexRecord, m: MessageOf<'duplex-channel'>, link: PeerLink): Promise<void> {
    this.expectRole('B', m.type);
    if (!record.channelId || m.channelId !== record.channelId) throw new ProtocolError('UNKNOWN_CHANNEL', m.channelId);
    if (this.links.get(record.tempId) !== link) return; // someone else naming the channel proves nothing
    // At most one node call per record and tip: the message costs its sender nothing, and a
    // repeat before the next block could not find anything the last probe did not.
    const at = this.tipSeen ?? -1;
    if (this.channelProbedAt.get(record) === at) return;
    this.channelProbedAt.set(record, at);
    const { known } = await this.confirmFunding(record);
    if (known) link.proven?.();
  }

  protected async onFunded(record: DuplexRecord, m: MessageOf<'duplex-funded'>): Promise<void> {
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
}
