/**
 * One side of duplex channels (docs/duplex.md): A opens and sequences every state, B accepts
 * (possibly contributing coins) and asks A for the states in which B pays. Both sides keep every
 * state, close cooperatively, and watch the chain (duplex-watcher.ts) to publish the newest state
 * the moment it is final. The steps live in duplex-opening.ts, duplex-updates.ts and
 * duplex-closing.ts, on the shared duplex-core.ts.
 */
import { stateSighash, type DuplexState } from '../protocol/duplex-tx.js';
import { checkNextState } from '../protocol/duplex-update.js';
import { isProtocolErrorCode, ProtocolError } from '../protocol/errors.js';
import { errorMessage, type Message } from '../protocol/messages.js';
import type { PeerLink } from '../transport/link.js';
import { logText } from '../transport/log-text.js';
import { type DuplexRecord } from './duplex-record.js';
import { DuplexClosing } from './duplex-closing.js';

/** `<id>/<index>` or `<id>#<request>` (error refs) → the id and what it is about. */
export function splitRef(ref: string | undefined): [string | undefined, { index?: number; requestId?: string }] {
  if (ref === undefined) return [undefined, {}];
  const slash = /^(.*)\/([0-9]{1,7})$/.exec(ref);
  if (slash) return [slash[1], { index: Number(slash[2]) }];
  const hash = /^(.*)#([0-9a-f]{32})$/.exec(ref);
  if (hash) return [hash[1], { requestId: hash[2] }];
  return [ref, {}];
}

/**
 * One side of duplex channels: routes each message from the peer to its step, and the peer's
 * errors to the call that waits for them.
 */
export class DuplexPeer extends DuplexClosing {
  /** Whether an error's `ref` (a channel, `<channel>/<index>` or `<channel>#<request>`) names one of our channels. */
  knowsRef(ref: string | undefined): boolean {
    const [id] = splitRef(ref);
    return id !== undefined && this.get(id) !== undefined;
  }

  /**
   * A message from the peer. Never throws: a refused message is answered with `error` and
   * changes nothing.
   */
  async receive(message: Message, link: PeerLink): Promise<void> {
    // The payee server's greeting on every connection (Spilman auth, src/protocol/auth.ts); a
    // duplex A proves itself with its signed duplex-resume instead.
    if (message.type === 'challenge') return;
    try {
      if (message.type === 'duplex-open') {
        if (this.role !== 'B') throw new ProtocolError('UNEXPECTED_MESSAGE', 'this side does not accept duplex channels');
        await this.onOpen(message, link);
        return;
      }
      if (message.type === 'error') {
        const [id, about] = splitRef(message.ref);
        const record = id === undefined ? undefined : this.get(id);
        if (record) {
          this.log(`peer error on ${record.channelId ?? record.tempId}: ${message.code} ${logText(message.message)}`);
          await this.withLock(record.tempId, async () => this.onPeerError(record, message.code, message.message, about));
        }
        return;
      }
      const id = 'tempId' in message ? message.tempId : 'channelId' in message ? message.channelId : undefined;
      const record = id === undefined ? undefined : this.get(id);
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
      link.send(errorMessage(e.code, e.message, e.action, refOf(message)));
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
        return this.onChannel(record, message, link); // B knows the id already; this says A broadcast it
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
  protected async onPeerError(record: DuplexRecord, code: string, text: string, about: { index?: number; requestId?: string }): Promise<void> {
    const error = new ProtocolError(isProtocolErrorCode(code) ? code : 'INTERNAL_ERROR', text);
    const tip = await this.options.backend.getTip(); // before anything is read or changed below
    const p = record.pending;
    if (this.role === 'A' && p && about.index === p.index) {
      record.refusedIndex = Math.max(record.refusedIndex ?? 0, p.index);
      record.pending = undefined;
      const current = record.current!;
      const cancel: DuplexState = { index: p.index + 1, balanceASat: current.balanceASat, balanceBSat: current.balanceBSat };
      const channel = this.channelOf(record);
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
}


/** What an error answering `message` names: `<channel>/<index>` for a state, `<channel>#<request>` for a pay request. */
function refOf(message: Message): string | undefined {
  if (message.type === 'duplex-update') return `${message.channelId}/${message.index}`;
  if (message.type === 'duplex-pay-request') return `${message.channelId}#${message.requestId}`;
  return 'tempId' in message ? message.tempId : 'channelId' in message ? message.channelId : undefined;
}
