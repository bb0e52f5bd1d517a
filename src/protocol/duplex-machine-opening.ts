/**
 * Opening a duplex channel (docs/duplex.md "Transactions"): one funding transaction, possibly
 * with coins from both sides, and state 0 signed by both before anyone signs a funding input.
 *
 * A: {@link duplexOpen} → Contributing → (contributed) Proposed → (accept) CheckingAccept →
 *    (inputs-checked) Funding → (funded) Open → (funding-inputs-signed) → publish-funding →
 *    (funding-published) duplex-channel.
 * B: {@link duplexReceiveOpen} → Vetting → (inputs-checked) KeyPending → (key-allocated)
 *    ContributingB → (contributed) Accepted → (fund) CheckingFund → (inputs-checked) Open →
 *    (funding-inputs-signed) duplex-funded.
 * Who shows coins first is A: B checks A's coins on the node before it reserves or shows its own.
 */
import { Transaction } from 'bitcoinjs-lib';
import { buildDuplexFundingTx, checkDuplexFundingTx, isWitnessOutputScript, type FundingInput, type FundingOutput } from './duplex-funding.js';
import type { DuplexContext, DuplexEffect, DuplexStep, InputFact, OpenRequest } from './duplex-machine-types.js';
import { baseOf, liveChannel, type ChannelBase, type LiveChannel, type StateOf } from './duplex-state.js';
import { duplexFundingScripts, duplexOutputs, stateSighash, type DuplexState, type DuplexTerms } from './duplex-tx.js';
import { checkDuplexTerms, plannedInitialLocktime } from './duplex-update.js';
import { ProtocolError } from './errors.js';
import { msg, type MessageOf } from './messages.js';
import { verifyPeer } from './duplex-machine-common.js';

/** A P2WPKH output script (the wallet's kind), standing in for B's before B allocates one. */
const P2WPKH_PLACEHOLDER = Uint8Array.of(0x00, 0x14, ...new Uint8Array(20));

/** The wallet reservation of an opening's coins. */
export function openingReservation(tempId: string): string {
  return `duplex:${tempId}`;
}

function contributionOutputs(ctx: DuplexContext, keyA: Uint8Array, keyB: Uint8Array, valueSat: bigint, ownScript: Uint8Array): FundingOutput[] {
  const { fundingScript } = duplexFundingScripts(keyA, keyB);
  const reserve = ctx.policy.feeReserveSat > 0n ? [{ script: ownScript, valueSat: ctx.policy.feeReserveSat }] : [];
  return [{ script: fundingScript, valueSat }, ...reserve];
}

/**
 * A: starts an opening. The terms are checked (B's key and script stand in as A's own: only
 * their size matters), then the wallet is asked for A's coins.
 * @throws RangeError when A puts nothing in; ProtocolError from the terms check.
 */
export function duplexOpen(ctx: DuplexContext, request: OpenRequest): DuplexStep {
  if (ctx.role !== 'A') throw new TypeError('only A opens duplex channels');
  if (request.contributionASat <= 0n) throw new RangeError('A must put something into the channel');
  const terms: DuplexTerms = {
    network: ctx.network,
    keyA: request.publicKey,
    keyB: request.publicKey,
    scriptA: request.payoutScript,
    scriptB: request.payoutScript,
    contributionASat: request.contributionASat,
    contributionBSat: request.contributionBSat,
    initialLocktime: plannedInitialLocktime(ctx.policy, request.tipHeight),
    deltaBlocks: ctx.policy.deltaBlocks,
    stateFeeRateSatPerVb: request.stateFeeRateSatPerVb,
  };
  checkDuplexTerms(ctx.secp, ctx.policy, terms, request.tipHeight);
  const base: ChannelBase = {
    tempId: request.tempId,
    role: 'A',
    keyIndex: request.keyIndex,
    fundingFeeRateSatPerVb: request.fundingFeeRateSatPerVb,
    minFundingConfirmations: ctx.policy.minFundingConfirmations,
    openedHeight: request.tipHeight,
    openedBy: null,
    ownInputs: [],
    ownOutputs: [],
  };
  return {
    state: { ...base, type: 'Contributing', role: 'A', terms },
    effects: [
      {
        type: 'contribute',
        reservation: openingReservation(request.tempId),
        outputs: contributionOutputs(ctx, terms.keyA, terms.keyA, request.contributionASat, request.payoutScript),
        feeRateSatPerVb: request.fundingFeeRateSatPerVb,
      },
    ],
  };
}

/** A: the wallet's coins are reserved; the proposal (with them) is stored, then sent. */
export function aContributed(state: StateOf<'Contributing'>, inputs: readonly FundingInput[], outputs: readonly FundingOutput[]): DuplexStep {
  const { terms } = state;
  const next: StateOf<'Proposed'> = { ...baseOf(state), type: 'Proposed', role: 'A', terms, ownInputs: inputs, ownOutputs: outputs };
  return {
    state: next,
    effects: [
      { type: 'persist' },
      {
        type: 'send',
        message: msg('duplex-open', {
          tempId: state.tempId,
          network: terms.network,
          keyA: terms.keyA,
          scriptA: terms.scriptA,
          contributionASat: terms.contributionASat,
          contributionBSat: terms.contributionBSat,
          initialLocktime: terms.initialLocktime,
          deltaBlocks: terms.deltaBlocks,
          stateFeeRateSatPerVb: terms.stateFeeRateSatPerVb,
          fundingFeeRateSatPerVb: state.fundingFeeRateSatPerVb,
          inputs: [...inputs],
          outputs: [...outputs],
        }),
      },
    ],
  };
}

/**
 * B: the cheap checks of A's proposal, before B spends a key index, an address or a node call on
 * it (A's key and a P2WPKH placeholder stand in for B's). The per-key and per-address limits
 * are the driver's (they count every channel). Then A's coins are looked up on the node when B
 * is asked to put coins in; else a key is allocated at once.
 * @throws ProtocolError WRONG_NETWORK, CAPACITY_TOO_LARGE/SMALL, FEE_RATE_INVALID, FUNDING_MISMATCH, and the terms' codes.
 */
export function duplexReceiveOpen(ctx: DuplexContext, m: MessageOf<'duplex-open'>, tipHeight: number, openedBy: string | null): DuplexStep {
  const { policy } = ctx;
  if (ctx.role !== 'B') throw new ProtocolError('UNEXPECTED_MESSAGE', 'this side does not accept duplex channels');
  if (m.network !== ctx.network) throw new ProtocolError('WRONG_NETWORK', `${m.network}, this peer is on ${ctx.network}`);
  if (m.contributionBSat > policy.maxContributionSat) throw new ProtocolError('CAPACITY_TOO_LARGE', `this peer puts at most ${policy.maxContributionSat} sat into a channel`);
  if (m.contributionASat <= 0n) throw new ProtocolError('CAPACITY_TOO_SMALL', 'A must put something into the channel');
  checkDuplexTerms(ctx.secp, policy, { ...proposedTerms(m), keyB: m.keyA, scriptB: P2WPKH_PLACEHOLDER }, tipHeight);
  if (m.fundingFeeRateSatPerVb > policy.maxFeeRateSatPerVb) throw new ProtocolError('FEE_RATE_INVALID', `funding fee rate above ${policy.maxFeeRateSatPerVb} sat/vB`);
  const base: ChannelBase = {
    tempId: m.tempId,
    role: 'B',
    keyIndex: -1,
    fundingFeeRateSatPerVb: m.fundingFeeRateSatPerVb,
    minFundingConfirmations: policy.minFundingConfirmations,
    openedHeight: tipHeight,
    openedBy,
    ownInputs: [],
    ownOutputs: [],
  };
  if (m.contributionBSat === 0n) return { state: { ...base, type: 'KeyPending', role: 'B', open: m }, effects: [{ type: 'allocate-key' }] };
  // B shows and reserves coins only for an A whose own coins are real: unspent segwit outputs
  // holding what A claims, enough for its contribution. (It proves they exist, not that they are
  // A's: the limits per key and address bound what a stranger can hold that way.)
  if (m.inputs.length === 0) throw new ProtocolError('FUNDING_MISMATCH', 'A shows no coins for its contribution');
  const keys = new Set(m.inputs.map((i) => `${i.txid}:${i.vout}`));
  if (keys.size !== m.inputs.length) throw new ProtocolError('FUNDING_MISMATCH', 'A names one coin twice');
  const inA = m.inputs.reduce((s, i) => s + i.valueSat, 0n);
  const outA = m.outputs.reduce((s, o) => s + o.valueSat, 0n);
  if (inA < m.contributionASat + outA) throw new ProtocolError('FUNDING_MISMATCH', `A's inputs (${inA}) do not cover its contribution and outputs`);
  return { state: { ...base, type: 'Vetting', role: 'B', open: m }, effects: [{ type: 'check-inputs', inputs: m.inputs.map(({ txid, vout }) => ({ txid, vout })) }] };
}

function proposedTerms(m: MessageOf<'duplex-open'>): Omit<DuplexTerms, 'keyB' | 'scriptB'> {
  return {
    network: m.network,
    keyA: m.keyA,
    scriptA: m.scriptA,
    contributionASat: m.contributionASat,
    contributionBSat: m.contributionBSat,
    initialLocktime: m.initialLocktime,
    deltaBlocks: m.deltaBlocks,
    stateFeeRateSatPerVb: m.stateFeeRateSatPerVb,
  };
}

/**
 * The other side's funding inputs as the node sees them: unspent segwit outputs (or the
 * funding txid could change under state 0), holding the values claimed, none of them ours.
 * @throws ProtocolError FUNDING_MISMATCH, FUNDING_NOT_SEGWIT.
 */
export function checkInputFacts(facts: readonly InputFact[], claimed: readonly FundingInput[] | null): void {
  for (const input of facts) {
    if (claimed && input.ownCoin) throw new ProtocolError('FUNDING_MISMATCH', 'A names a coin of this side');
  }
  for (const input of facts) {
    if (input.state !== 'unspent') throw new ProtocolError('FUNDING_MISMATCH', `input ${input.txid}:${input.vout} is ${input.state}`);
    if (!isWitnessOutputScript(input.scriptHex)) throw new ProtocolError('FUNDING_NOT_SEGWIT', `input ${input.txid}:${input.vout} is not a segwit output`);
    const c = claimed?.find((x) => x.txid === input.txid && x.vout === input.vout);
    if (c && c.valueSat !== input.valueSat) throw new ProtocolError('FUNDING_MISMATCH', `input ${input.txid}:${input.vout} holds ${input.valueSat} sat, not ${c.valueSat}`);
  }
}

/** B: A's coins are real; B allocates a key. */
export function bOpenerChecked(state: StateOf<'Vetting'>, facts: readonly InputFact[]): DuplexStep {
  checkInputFacts(facts, state.open.inputs);
  return { state: { ...state, type: 'KeyPending' }, effects: [{ type: 'allocate-key' }] };
}

/** B: with its own key and payout script, the terms are checked again; then B's coins, if it puts any in. */
export function bKeyAllocated(ctx: DuplexContext, state: StateOf<'KeyPending'>, keyIndex: number, publicKey: Uint8Array, payoutScript: Uint8Array): DuplexStep {
  const m = state.open;
  const terms: DuplexTerms = { ...proposedTerms(m), keyB: publicKey, scriptB: payoutScript };
  checkDuplexTerms(ctx.secp, ctx.policy, terms, state.openedHeight);
  const base = { ...baseOf(state), keyIndex };
  if (m.contributionBSat === 0n) return bAccept({ ...base, type: 'ContributingB', role: 'B', terms }, [], []);
  return {
    state: { ...base, type: 'ContributingB', role: 'B', terms },
    effects: [
      { type: 'contribute', reservation: openingReservation(state.tempId), outputs: contributionOutputs(ctx, m.keyA, publicKey, m.contributionBSat, payoutScript), feeRateSatPerVb: m.fundingFeeRateSatPerVb },
    ],
  };
}

/**
 * B: stores the opening and answers with its key and coins. Not proven yet: an opening costs its
 * sender nothing; the connection stops counting as a stranger's once the node has the funding.
 */
export function bAccept(state: StateOf<'ContributingB'>, inputs: readonly FundingInput[], outputs: readonly FundingOutput[]): DuplexStep {
  const next: StateOf<'Accepted'> = { ...baseOf(state), type: 'Accepted', role: 'B', terms: state.terms, ownInputs: inputs, ownOutputs: outputs };
  return {
    state: next,
    effects: [
      { type: 'adopt-link' },
      { type: 'persist' },
      {
        type: 'send',
        message: msg('duplex-accept', {
          tempId: state.tempId,
          keyB: state.terms.keyB,
          scriptB: state.terms.scriptB,
          minFundingConfirmations: state.minFundingConfirmations,
          inputs: [...inputs],
          outputs: [...outputs],
        }),
      },
    ],
  };
}

/** B: the wallet cannot put in what A asks. */
export function bContributeFailed(state: StateOf<'ContributingB'>, reason: string): never {
  throw new ProtocolError('CAPACITY_TOO_LARGE', `this peer cannot put ${state.terms.contributionBSat} sat in now (${reason})`);
}

/** A: B's answer. Its coins are looked up on the node before A builds the funding around them. */
export function aOnAccept(ctx: DuplexContext, state: StateOf<'Proposed'>, m: MessageOf<'duplex-accept'>, tipHeight: number): DuplexStep {
  const terms: DuplexTerms = { ...state.terms, keyB: m.keyB, scriptB: m.scriptB };
  checkDuplexTerms(ctx.secp, ctx.policy, terms, tipHeight);
  const inB = m.inputs.reduce((s, i) => s + i.valueSat, 0n);
  const outB = m.outputs.reduce((s, o) => s + o.valueSat, 0n);
  if (terms.contributionBSat > 0n && inB < terms.contributionBSat + outB) throw new ProtocolError('FUNDING_MISMATCH', `B's inputs (${inB}) do not cover its contribution and outputs`);
  if (terms.contributionBSat === 0n && (m.inputs.length > 0 || m.outputs.length > 0)) throw new ProtocolError('FUNDING_MISMATCH', 'B contributes nothing but sent coins');
  const checking: StateOf<'CheckingAccept'> = { ...state, type: 'CheckingAccept', accept: m };
  if (m.inputs.length === 0) return aAcceptChecked(ctx, checking, []);
  return { state: checking, effects: [{ type: 'check-inputs', inputs: m.inputs.map(({ txid, vout }) => ({ txid, vout })) }] };
}

/** A: builds the funding from both sides' coins, signs state 0 and sends both (the funding unsigned). */
export function aAcceptChecked(ctx: DuplexContext, state: StateOf<'CheckingAccept'>, facts: readonly InputFact[]): DuplexStep {
  const m = state.accept;
  checkInputFacts(facts, m.inputs);
  const terms: DuplexTerms = { ...state.terms, keyB: m.keyB, scriptB: m.scriptB };
  const { fundingScript } = duplexFundingScripts(terms.keyA, terms.keyB);
  const tx = buildDuplexFundingTx(fundingScript, terms.contributionASat + terms.contributionBSat, [...state.ownInputs, ...m.inputs], [...state.ownOutputs, ...m.outputs]);
  const channelId = `${tx.getId()}:0`;
  const channel = liveChannel({ terms, channelId });
  const state0: DuplexState = { index: 0, balanceASat: terms.contributionASat, balanceBSat: terms.contributionBSat };
  duplexOutputs(channel, state0, terms.stateFeeRateSatPerVb); // throws if state 0 cannot pay its fee
  const sigA = ctx.sign(state.keyIndex, stateSighash(channel, state0));
  const next: StateOf<'Funding'> = {
    ...baseOf(state),
    minFundingConfirmations: Math.max(state.minFundingConfirmations, m.minFundingConfirmations),
    type: 'Funding',
    role: 'A',
    terms,
    channelId,
    fundingTxHex: tx.toHex(),
    state0: { ...state0, sigA },
  };
  return { state: next, effects: [{ type: 'persist' }, { type: 'send', message: msg('duplex-fund', { tempId: state.tempId, fundingTx: next.fundingTxHex, fundingVout: 0, signature: sigA }) }] };
}

/** B: A's funding must hold B's coins and outputs exactly; the other inputs are looked up on the node. */
export function bOnFund(ctx: DuplexContext, state: StateOf<'Accepted'>, m: MessageOf<'duplex-fund'>, tipHeight: number): DuplexStep {
  const { terms } = state;
  const { fundingScript } = duplexFundingScripts(terms.keyA, terms.keyB);
  const { otherInputs } = checkDuplexFundingTx(m.fundingTx, m.fundingVout, { fundingScript, capacitySat: terms.contributionASat + terms.contributionBSat, ownInputs: state.ownInputs, ownOutputs: state.ownOutputs });
  const checking: StateOf<'CheckingFund'> = { ...state, type: 'CheckingFund', fund: m, fundTipHeight: tipHeight };
  if (otherInputs.length === 0) return bFundChecked(ctx, checking, []);
  return { state: checking, effects: [{ type: 'check-inputs', inputs: otherInputs }] };
}

/**
 * B: A's signature on state 0 checks out: B countersigns, stores state 0 signed by both, and
 * only then asks the wallet to sign B's funding inputs.
 */
export function bFundChecked(ctx: DuplexContext, state: StateOf<'CheckingFund'>, facts: readonly InputFact[]): DuplexStep {
  checkInputFacts(facts, null);
  const m = state.fund;
  const { terms } = state;
  const { fundingScript } = duplexFundingScripts(terms.keyA, terms.keyB);
  const { txid, ownIndexes } = checkDuplexFundingTx(m.fundingTx, m.fundingVout, { fundingScript, capacitySat: terms.contributionASat + terms.contributionBSat, ownInputs: state.ownInputs, ownOutputs: state.ownOutputs });
  const channelId = `${txid}:${m.fundingVout}`;
  const channel = liveChannel({ terms, channelId });
  const state0: DuplexState = { index: 0, balanceASat: terms.contributionASat, balanceBSat: terms.contributionBSat };
  const digest0 = stateSighash(channel, state0);
  verifyPeer(ctx, terms, digest0, m.signature);
  const sigB = ctx.sign(state.keyIndex, digest0);
  const live: LiveChannel = {
    ...freshLive(state, channelId, terms, m.fundingTx, { ...state0, sigA: m.signature, sigB }),
    fundingSignedHeight: state.fundTipHeight,
  };
  return {
    state: { ...live, type: 'Open' },
    effects: [
      { type: 'adopt-link' },
      { type: 'persist' }, // state 0 signed by both is durable before B signs its funding inputs
      { type: 'sign-funding-inputs', txHex: m.fundingTx, inputIndexes: ownIndexes },
      { type: 'log', line: `opened ${channelId} (capacity ${channel.capacitySat}, B put in ${terms.contributionBSat})` },
    ],
  };
}

/** B: its funding inputs are signed: the witnesses go to A with B's state-0 signature. */
export function bFundingSigned(state: StateOf<'Open'>, witnesses: readonly { index: number; stack: readonly Uint8Array[] }[]): DuplexStep {
  return {
    state,
    effects: [{ type: 'send', message: msg('duplex-funded', { tempId: state.tempId, signature: state.current.sigB, witnesses: witnesses.map((w) => ({ index: w.index, stack: [...w.stack] })) }) }],
  };
}

/** A live channel's fields at state 0. */
export function freshLive(base: ChannelBase, channelId: string, terms: DuplexTerms, fundingTxHex: string, state0: LiveChannel['current']): LiveChannel {
  return {
    ...baseOf(base),
    channelId,
    terms,
    fundingTxHex,
    fundingConfirmed: false,
    fundingHeight: null,
    fundingSignedHeight: null,
    ownInputsReleased: false,
    current: state0,
    pending: null,
    refusedIndex: null,
    proposedRequests: [],
    rolloverProposal: null,
    payBackQueue: [],
    predecessorId: null,
    updates: 0,
    paidAtoBSat: 0n,
    paidBtoASat: 0n,
  };
}

/**
 * A: B's state-0 signature and B's input witnesses. State 0 signed by both is stored before A
 * signs its own inputs (the wallet is asked after the persist).
 * @throws ProtocolError INVALID_SIGNATURE, FUNDING_MISMATCH (a witness for an input not B's).
 */
export function aOnFunded(ctx: DuplexContext, state: StateOf<'Funding'>, m: MessageOf<'duplex-funded'>): DuplexStep {
  const channel = liveChannel(state);
  const s0 = state.state0;
  verifyPeer(ctx, state.terms, stateSighash(channel, s0), m.signature);
  const tx = Transaction.fromHex(state.fundingTxHex);
  const ownCount = state.ownInputs.length;
  for (const w of m.witnesses) {
    if (w.index < ownCount || w.index >= tx.ins.length) throw new ProtocolError('FUNDING_MISMATCH', `witness for input ${w.index}, which is not B's`);
  }
  const live = freshLive(state, state.channelId, state.terms, state.fundingTxHex, { index: 0, balanceASat: s0.balanceASat, balanceBSat: s0.balanceBSat, sigA: s0.sigA, sigB: m.signature });
  for (const w of m.witnesses) tx.setWitness(w.index, [...w.stack]);
  return {
    state: { ...live, type: 'Open' },
    effects: [
      { type: 'persist' }, // state 0 signed by both is durable before A signs its funding inputs
      { type: 'sign-funding-inputs', txHex: tx.toHex(), inputIndexes: state.ownInputs.map((_, i) => i) },
    ],
  };
}

/** A: its own witnesses complete the funding (`txHex`: the one `sign-funding-inputs` named); stored, then broadcast. */
export function aFundingSigned(state: StateOf<'Open'>, txHex: string, witnesses: readonly { index: number; stack: readonly Uint8Array[] }[]): DuplexStep {
  const tx = Transaction.fromHex(txHex);
  for (const w of witnesses) tx.setWitness(w.index, [...w.stack]);
  const first = state.ownInputs[0];
  if (!first) throw new TypeError('A has no funding input');
  const next: StateOf<'Open'> = { ...state, fundingTxHex: tx.toHex() };
  return { state: next, effects: [{ type: 'persist' }, { type: 'publish-funding', txid: tx.getId(), txHex: next.fundingTxHex, firstOwnInput: first }] };
}

/** A: the funding is out (or may be: the watcher sends it again): tell B, and the opener. */
export function aFundingPublished(state: StateOf<'Open'>): DuplexStep {
  return {
    state,
    effects: [
      { type: 'send', message: msg('duplex-channel', { tempId: state.tempId, channelId: state.channelId }) },
      { type: 'log', line: `opened ${state.channelId} (capacity ${state.terms.contributionASat + state.terms.contributionBSat}, funding broadcast)` },
      { type: 'resolve', key: 'opened', value: state.channelId },
    ],
  };
}

/** A: the node refused the funding while A's coins are unspent: it can never happen. */
export function aFundingRefused(state: StateOf<'Open'>, reason: string): DuplexStep {
  return {
    state: { ...baseOf(state), type: 'Aborted', terms: state.terms, live: state },
    effects: [
      { type: 'log', line: `funding ${state.channelId.split(':')[0]} refused: ${reason}` },
      { type: 'persist' },
      { type: 'release', reservation: openingReservation(state.tempId) },
      { type: 'reject', key: 'opened', error: new ProtocolError('FUNDING_REJECTED', reason) },
    ],
  };
}

/**
 * An opening that will not complete: A keeps the aborted record; B, which signed nothing for
 * it, forgets it (a stranger's free openings must not pile up as records). The coins go back.
 */
export function abortOpening(state: StateOf<'Contributing' | 'Proposed' | 'CheckingAccept' | 'Funding' | 'Vetting' | 'KeyPending' | 'ContributingB' | 'Accepted' | 'CheckingFund'>): DuplexStep {
  const release: DuplexEffect = { type: 'release', reservation: openingReservation(state.tempId) };
  if (state.role === 'B') return { state, effects: [{ type: 'forget' }, release] };
  const terms = 'terms' in state ? state.terms : null;
  if (!terms) throw new TypeError('an opening of A always has terms');
  return { state: { ...baseOf(state), type: 'Aborted', terms, live: null }, effects: [{ type: 'persist' }, release] };
}
