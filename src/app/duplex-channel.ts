/**
 * A duplex channel as a library user holds it (createPayer's `openDuplex`): side A of one
 * channel, connected to its payee. What `paychan payer open --variant duplex`, `pay` and `close`
 * do, as three calls, so a program can pay and be paid back without the CLI.
 *
 * Why it waits on the chain by polling the side's view: the side learns of confirmations from
 * its watcher on each new tip (DuplexSide.start) and has no event for them; a poll of an
 * in-memory view every 200 ms costs nothing and is what the CLI's waits do.
 */
import type { DuplexSide } from './duplex-side.js';
import type { DuplexView } from '../duplex/duplex-view.js';
import { decodeMessage } from '../protocol/messages.js';
import { connectPayee, type WsPeerLink } from '../transport/ws-client.js';

export interface DuplexChannel {
  /** The funding outpoint `txid:vout` of the channel as opened (a rollover moves it on: see the balances). */
  readonly channelId: string;
  /** Pays the payee `amountSat`; resolves once the payee countersigned the new state (it is durable on both sides). */
  pay(amountSat: bigint | number): Promise<void>;
  /**
   * Both balances in the newest state both sides signed, satoshis, once no state this side
   * proposed still waits for the payee's countersignature (a pay-back the payee made is a state
   * the payer proposed: `payee.payBack` resolves when the payee signed it, a moment before the
   * payer has the payee's signature).
   */
  balances(): Promise<{ readonly payerSat: bigint; readonly payeeSat: bigint }>;
  /** Closes cooperatively and resolves with the close's txid once it confirmed. */
  close(feeRateSatPerVb?: number): Promise<string>;
  /** Disconnects (the channel stays open, saved in the data dir). */
  disconnect(): void;
}

export interface OpenDuplexOptions {
  /** The payer's coins in the channel, satoshis (the capacity is both contributions). */
  readonly payerContributionSat: bigint | number;
  /** Coins the payee puts in too (from its own wallet), satoshis; default 0. */
  readonly payeeContributionSat?: bigint | number;
  readonly fundingFeeRateSatPerVb: number;
  readonly connectTimeoutMs: number;
  readonly log: (line: string) => void;
}

const POLL_MS = 200;

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, POLL_MS));
}

/**
 * Opens a duplex channel to the payee at `url` from `side`'s wallet and resolves once its funding
 * confirmed (on regtest: once a block is mined).
 * @throws RangeError for a contribution the wallet cannot fund; PayeeUnreachableError; ProtocolError
 *   when the payee refuses the opening.
 */
export async function openDuplexChannel(side: DuplexSide, url: string, options: OpenDuplexOptions): Promise<DuplexChannel> {
  const contributionASat = BigInt(options.payerContributionSat);
  const contributionBSat = BigInt(options.payeeContributionSat ?? 0n);
  await side.refresh();
  const spendable = side.wallet.balance().confirmedSat;
  if (spendable < contributionASat) throw new RangeError(`the wallet has ${spendable} sat spendable, less than the ${contributionASat} sat to put in; fund ${side.wallet.receiveAddress()}`);
  const link: WsPeerLink = connectPayee(url, { onMessage: (t) => void side.peer.receive(decodeMessage(t), link), log: options.log, connectTimeoutMs: options.connectTimeoutMs });
  try {
    await link.ready();
    const channelId = await side.peer.open({ link, contributionASat, contributionBSat, fundingFeeRateSatPerVb: options.fundingFeeRateSatPerVb });
    const view = (): DuplexView => side.peer.get(channelId, true)!;
    await until(() => view().fundingConfirmed || view().phase === 'aborted');
    if (view().phase === 'aborted') throw new Error(`the duplex channel ${channelId} was aborted before its funding confirmed`);
    return {
      channelId,
      async pay(amountSat) {
        await side.peer.pay(view().channelId!, BigInt(amountSat));
      },
      async balances() {
        await until(() => view().pending === undefined || view().phase !== 'open');
        const current = view().current;
        return { payerSat: current?.balanceASat ?? 0n, payeeSat: current?.balanceBSat ?? 0n };
      },
      async close(feeRateSatPerVb) {
        await side.peer.close(view().channelId!, feeRateSatPerVb);
        await until(() => view().phase === 'closed');
        return view().settlement!.txid;
      },
      disconnect: () => link.close(),
    };
  } catch (err) {
    link.close();
    throw err;
  }
}
