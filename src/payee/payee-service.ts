/**
 * The payee driver: runs the pure payee state machine for many channels against a chain backend.
 *
 * It owns what the core may not: the channel table, key allocation, the tip height, watching
 * confirmations, broadcasting, and the one place where a refused message becomes an `error`
 * reply. Messages of one channel are processed one at a time, in arrival order.
 *
 * State is kept in memory here; a durable store plugs in behind `persist` (the effect contract in
 * src/protocol/effects.ts is what makes "stored before acknowledged" hold).
 */
import { BroadcastRejectedError, type ChainBackend } from '../chain/backend.js';
import type { Secp256k1 } from '../crypto/secp256k1.js';
import type { SignedClose } from '../protocol/close.js';
import type { Effect } from '../protocol/effects.js';
import { ProtocolError } from '../protocol/errors.js';
import { decodeMessage, errorMessage, type Message } from '../protocol/messages.js';
import { payeeAccept, payeeStateRef, payeeStep, type PayeeContext, type PayeeInput, type PayeeState } from '../protocol/payee-machine.js';
import type { PayeePolicy } from '../protocol/policy.js';
import type { PeerLink } from '../transport/link.js';
import type { WalletKeys } from '../wallet/keys.js';
import { resolveFeeRate } from '../chain/fee-rate.js';

export interface PayeeServiceOptions {
  readonly secp: Secp256k1;
  readonly policy: PayeePolicy;
  readonly backend: ChainBackend;
  /** Channel keys (a fresh one per channel) come from here. */
  readonly keys: WalletKeys;
  /** Where the payee's share goes when it closes. */
  readonly payoutScript: Uint8Array;
  /** Used when the node has no fee estimate (always on a fresh regtest chain). */
  readonly fallbackFeeRateSatPerVb: number;
  readonly log?: (line: string) => void;
}

interface Entry {
  state: PayeeState;
  link: PeerLink;
  /** Serializes processing per channel. */
  queue: Promise<void>;
}

interface Watch {
  readonly tempId: string;
  readonly txid: string;
  readonly confirmations: number;
  readonly purpose: 'funding' | 'close';
}

export class PayeeService {
  private readonly ctx: PayeeContext;
  private readonly entries = new Map<string, Entry>();
  private readonly tempIdByChannelId = new Map<string, string>();
  private watches: Watch[] = [];
  private nextKeyIndex = 0;
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly options: PayeeServiceOptions) {
    this.ctx = { secp: options.secp, policy: options.policy, privateKey: (i) => options.keys.channelKey(i).privateKey };
  }

  /** Starts watching the chain for the confirmations channels wait on. */
  start(): void {
    this.unsubscribe ??= this.options.backend.subscribeTips(() => void this.checkWatches());
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /** Current state of a channel, by funding outpoint (`txid:vout`) or tempId. */
  channel(id: string): PayeeState | undefined {
    return this.entries.get(this.tempIdByChannelId.get(id) ?? id)?.state;
  }

  /** Every channel's current state. */
  channels(): PayeeState[] {
    return [...this.entries.values()].map((e) => e.state);
  }

  /**
   * Handles one message from a payer's connection. Never throws: a refused message is answered
   * with an `error` on `link`, and changes nothing.
   */
  async receive(text: string, link: PeerLink): Promise<void> {
    let message: Message;
    try {
      message = decodeMessage(text);
    } catch (err) {
      this.reply(link, err, undefined);
      return;
    }
    await this.handle(message, link);
  }

  /** Handles one decoded message (see {@link receive}). */
  async handle(message: Message, link: PeerLink): Promise<void> {
    if (message.type === 'hello') {
      await this.onHello(message, link);
      return;
    }
    const ref = 'tempId' in message ? message.tempId : 'channelId' in message ? message.channelId : undefined;
    const tempId = ref === undefined ? undefined : (this.tempIdByChannelId.get(ref) ?? ref);
    const entry = tempId === undefined ? undefined : this.entries.get(tempId);
    if (!entry || tempId === undefined) {
      this.reply(link, new ProtocolError(ref === undefined ? 'UNEXPECTED_MESSAGE' : 'UNKNOWN_CHANNEL', ref ?? message.type), ref);
      return;
    }
    entry.link = link;
    await this.run(tempId, entry, { type: 'message', message });
  }

  /**
   * Closes a channel with its newest payment, paying the fee from the payee's share; calling it
   * again on a closing channel replaces the close with a higher-fee version (BIP125).
   * @throws RangeError if the channel is unknown, not open, has nothing paid, or the close is uneconomic.
   * @throws BroadcastRejectedError if the node refuses the close.
   */
  async close(channelId: string, feeRateSatPerVb?: number): Promise<SignedClose> {
    const tempId = this.tempIdByChannelId.get(channelId);
    const entry = tempId === undefined ? undefined : this.entries.get(tempId);
    if (!entry || tempId === undefined) throw new RangeError(`unknown channel ${channelId}`);
    const rate = feeRateSatPerVb ?? (await resolveFeeRate(this.options.backend, 2, this.options.fallbackFeeRateSatPerVb));
    await this.run(tempId, entry, { type: 'close', feeRateSatPerVb: rate, payeeScript: this.options.payoutScript }, true);
    const state = entry.state;
    if (state.type !== 'Closing') throw new Error(`close did not take effect (state ${state.type})`);
    return state.close;
  }

  /** Checks every watched transaction once (also runs on every new tip). */
  async checkWatches(): Promise<void> {
    const due: Watch[] = [];
    for (const w of this.watches) {
      const status = await this.options.backend.getTransaction(w.txid);
      if (status && status.confirmations >= w.confirmations) due.push(w);
    }
    if (due.length === 0) return;
    this.watches = this.watches.filter((w) => !due.includes(w));
    for (const w of due) {
      const entry = this.entries.get(w.tempId);
      if (entry) await this.run(w.tempId, entry, { type: 'confirmed', purpose: w.purpose, txid: w.txid });
    }
  }

  private async onHello(hello: Extract<Message, { type: 'hello' }>, link: PeerLink): Promise<void> {
    if (this.entries.has(hello.tempId)) {
      this.reply(link, new ProtocolError('DUPLICATE_CHANNEL', hello.tempId), hello.tempId);
      return;
    }
    try {
      const tip = await this.options.backend.getTip();
      const index = this.nextKeyIndex;
      const step = payeeAccept(this.ctx, hello, tip.height, { index, publicKey: this.options.keys.channelKey(index).publicKey });
      this.nextKeyIndex++;
      const entry: Entry = { state: step.state, link, queue: Promise.resolve() };
      this.entries.set(hello.tempId, entry);
      await this.apply(hello.tempId, entry, step.effects);
    } catch (err) {
      this.reply(link, err, hello.tempId);
    }
  }

  /** Runs one input through the core for one channel, after the inputs queued before it. */
  private run(tempId: string, entry: Entry, input: PayeeInput, rethrow = false): Promise<void> {
    const next = entry.queue.then(async () => {
      const before = entry.state;
      try {
        const step = payeeStep(this.ctx, before, input);
        entry.state = step.state;
        await this.apply(tempId, entry, step.effects);
      } catch (err) {
        entry.state = before;
        if (rethrow) throw err;
        this.reply(entry.link, err, payeeStateRef(before));
      }
    });
    entry.queue = next.catch(() => undefined);
    return next;
  }

  private async apply(tempId: string, entry: Entry, effects: readonly Effect[]): Promise<void> {
    for (const effect of effects) {
      switch (effect.type) {
        case 'persist':
          // In memory: entry.state is already the new state.
          break;
        case 'send':
          entry.link.send(effect.message);
          break;
        case 'broadcast':
          try {
            await this.options.backend.broadcast(effect.txHex);
            this.options.log?.(`broadcast ${effect.purpose} ${effect.txid}`);
          } catch (err) {
            if (err instanceof BroadcastRejectedError && effect.purpose === 'funding') {
              throw new ProtocolError('FUNDING_REJECTED', err.reason);
            }
            throw err;
          }
          break;
        case 'watch-confirmations':
          if (effect.purpose === 'refund') break;
          this.watches.push({ tempId, txid: effect.txid, confirmations: effect.confirmations, purpose: effect.purpose });
          if (effect.purpose === 'funding') this.tempIdByChannelId.set(`${effect.txid}:${this.fundingVout(entry)}`, tempId);
          break;
        case 'close-requested':
          queueMicrotask(() => void this.close(payeeStateRef(entry.state)).catch((err: unknown) => this.options.log?.(`close on request failed: ${String(err)}`)));
          break;
        case 'peer-error':
          this.options.log?.(`payer reported ${effect.message.code}: ${effect.message.message}`);
          break;
        default:
          throw new Error(`payee cannot carry out effect ${effect.type}`);
      }
    }
  }

  private fundingVout(entry: Entry): number {
    if (!('channel' in entry.state)) throw new Error('funding watched before the channel is known');
    return entry.state.channel.funding.vout;
  }

  private reply(link: PeerLink, err: unknown, ref: string | undefined): void {
    if (err instanceof ProtocolError) {
      link.send(errorMessage(err.code, err.message, err.action, ref));
      return;
    }
    this.options.log?.(`internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    link.send(errorMessage('INTERNAL_ERROR', 'the payee failed to process the message', 'reject', ref));
  }
}
