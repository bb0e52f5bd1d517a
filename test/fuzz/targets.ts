/**
 * What the fuzzer knows about the payee it attacks: the real channels set up before the run (by
 * honest payers, in every payee state), and the real frames captured on the wire, which the
 * generators mutate and replay.
 */
import { toHex } from '../../src/protocol/bytes.js';
import type { Channel, ChannelTerms } from '../../src/protocol/channel.js';
import { decodeMessage, encodeMessage, type Message } from '../../src/protocol/messages.js';

/** A channel with a funding outpoint, in the payee state it must still be in after the run. */
export interface FundedTarget {
  readonly label: string;
  readonly tempId: string;
  readonly channel: Channel;
  readonly payeeState: 'AwaitingConfirmation' | 'Open' | 'Closing' | 'Closed';
  /** The payee's paid total, fixed during the run; null for the honest payer's channel. */
  readonly paidSat: bigint | null;
  /** Its signed funding transaction (hex). */
  readonly fundingTx: string;
}

/**
 * A channel proposal the payee accepted, not funded: the payee holds nothing for it (opening
 * cookies), the fuzzer holds what the later opening messages echo.
 */
export interface PendingTarget {
  readonly label: string;
  readonly tempId: string;
  readonly terms: ChannelTerms;
  /** The hello's terms as the opening messages echo them (wire JSON values). */
  readonly echo: WireEcho;
  /** The accept's cookie (hex). */
  readonly cookie: string;
}

/** A proposal echo in wire form (a type, not an interface: it must fit the generators' JSON type). */
export type WireEcho = {
  readonly network: string;
  readonly variant: string;
  readonly payerPubkey: string;
  readonly capacitySat: string;
  readonly expiryHeight: number;
  readonly payerScript: string;
};

/** @returns the echo of `terms` in wire form. */
export function wireEcho(terms: ChannelTerms): WireEcho {
  return {
    network: terms.network,
    variant: terms.variant,
    payerPubkey: toHex(terms.payerPubkey),
    capacitySat: terms.capacitySat.toString(),
    expiryHeight: terms.expiryHeight,
    payerScript: toHex(terms.payerScript),
  };
}

/** Real frames seen on the wire, both directions, bounded; and every genuine payment. */
export class Captures {
  private readonly early: string[] = [];
  private readonly recent: string[] = [];
  private next = 0;
  private readonly genuine = new Map<string, Map<string, string>>();
  /** Canonical encodings of every non-payment message an honest payer sent. */
  private readonly payerMessages = new Set<string>();
  private readonly paymentList: { channelId: string; totalSat: string; signature: string }[] = [];
  private replaced = 1;

  constructor(
    private readonly earlyMax = 400,
    private readonly recentMax = 400,
  ) {}

  /** Records one frame (a payer's or a payee's). Payments are remembered as genuine. */
  add(text: string): void {
    if (this.early.length < this.earlyMax) this.early.push(text);
    else {
      this.recent[this.next] = text;
      this.next = (this.next + 1) % this.recentMax;
    }
    if (text.includes('"payment"')) {
      try {
        const m = decodeMessage(text);
        if (m.type === 'payment') {
          const signature = toHex(m.signature);
          let byTotal = this.genuine.get(m.channelId);
          if (!byTotal) this.genuine.set(m.channelId, (byTotal = new Map()));
          byTotal.set(m.totalSat.toString(), signature);
          const payment = { channelId: m.channelId, totalSat: m.totalSat.toString(), signature };
          if (this.paymentList.length < 5000) this.paymentList.push(payment);
          else this.paymentList[(this.replaced = (this.replaced * 1103515245 + 12345) % 2147483648) % 5000] = payment;
        }
      } catch {
        // not a payment after all
      }
    }
  }

  /** Records a frame an honest payer sent: repeating it is what a reconnecting payer does. */
  addFromPayer(text: string): void {
    this.add(text);
    try {
      const m = decodeMessage(text);
      if (m.type !== 'payment') this.payerMessages.add(encodeMessage(m));
    } catch {
      // not a message
    }
  }

  /**
   * True if `m` is exactly a message an honest payer sent (other than a payment): a repeat, which
   * the payee may answer again as it did, or leave unanswered, as the protocol has it.
   */
  isGenuineRepeat(m: Message): boolean {
    return m.type !== 'payment' && this.payerMessages.has(encodeMessage(m));
  }

  frames(): readonly string[] {
    return this.early.concat(this.recent);
  }

  /** Genuine payments (a sample), for replays. */
  payments(): readonly { channelId: string; totalSat: string; signature: string }[] {
    return this.paymentList;
  }

  /** True if an honest payer signed exactly this payment (so the payee may acknowledge it). */
  isGenuinePayment(channelId: string, totalSat: bigint, signatureHex: string): boolean {
    return this.genuine.get(channelId)?.get(totalSat.toString()) === signatureHex;
  }
}

export interface FuzzTargets {
  /** The chain tip during the run (nothing is mined while fuzzing). */
  readonly tipHeight: number;
  /** The channel the honest payer keeps paying on during the run. */
  readonly honest: FundedTarget;
  /** Open channels: the honest one and an idle one. */
  readonly open: readonly FundedTarget[];
  /** Every funded channel, in every state. */
  readonly funded: readonly FundedTarget[];
  readonly pending: readonly PendingTarget[];
  /** Real signed funding transactions (hex). */
  readonly fundingTxs: readonly string[];
  /** A real refund template (hex) of a v1 channel. */
  readonly refundTemplates: readonly string[];
  /** A key and script that make valid hellos. */
  readonly helloPubkey: Uint8Array;
  readonly helloScript: Uint8Array;
  readonly captures: Captures;
  /** tempIds of the fuzzer's own hellos that the payee accepted. */
  readonly ownTempIds: Set<string>;
}

export function allTempIds(t: FuzzTargets): string[] {
  return [...t.funded.map((f) => f.tempId), ...t.pending.map((p) => p.tempId)];
}
