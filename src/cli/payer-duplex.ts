/**
 * `paychan payer ... ` on a duplex channel (side A): open (with or without the payee's coins),
 * pay, sync (take the payee's queued pay-backs), status, close (cooperative, or --unilateral).
 * The data dir remembers which channel is current and where its payee is.
 */
import type { ChainBackend } from '../chain/backend.js';
import { openDuplexSide, type DuplexSide } from '../app/duplex-side.js';
import type { DuplexView } from '../duplex/duplex-view.js';
import { nextState } from '../protocol/duplex-update.js';
import { decodeMessage } from '../protocol/messages.js';
import type { NetworkName } from '../protocol/network.js';
import { connectPayee, type WsPeerLink } from '../transport/ws-client.js';
import { amountSat, positiveInt, printJson, UsageError, type Parsed } from './options.js';
import { insufficientFunds, interruptible, reportStopped } from './report.js';
import { waitWithProgress } from './wait.js';
import fs from 'node:fs';
import path from 'node:path';

interface Current {
  readonly channelId: string;
  readonly url: string;
}

const CURRENT_FILE = 'duplex-current.json';

/** Whether the payer's current channel (the last one opened) is a duplex one. */
export function currentIsDuplex(dataDir: string): boolean {
  return fs.existsSync(path.join(dataDir, CURRENT_FILE));
}

/** A Spilman channel was opened after a duplex one: it is the current one now. */
export function forgetCurrentDuplex(dataDir: string): void {
  fs.rmSync(path.join(dataDir, CURRENT_FILE), { force: true });
}

function readCurrent(dataDir: string): Current {
  try {
    return JSON.parse(fs.readFileSync(path.join(dataDir, CURRENT_FILE), 'utf8')) as Current;
  } catch {
    throw new UsageError('no duplex channel yet: open one with paychan payer open URL --variant duplex --capacity SAT');
  }
}

function summary(side: DuplexSide, record: DuplexView, tipHeight: number) {
  const s = side.peer.summary(record, tipHeight);
  return { variant: 'duplex', ...s, ...(record.settlement ? { settlement: record.settlement } : {}) };
}

/**
 * Whether `count` updates paying `amountSat` each can all be paid from A's balance, by the
 * core's own rule for one update ({@link nextState}), checked before any is proposed. Balances
 * move one way (A's down, B's up), so the first update (B's output) and the whole run at once
 * (A's balance and output) are the ones that can fail. The locktime budget is not a reason to
 * refuse: pay() rolls the channel over when it is spent.
 * @returns the refusal, or null.
 */
async function checkUpdates(side: DuplexSide, record: DuplexView, amountSat: bigint, count: number, tipHeight: number): Promise<Error | null> {
  const current = record.current;
  if (!current || record.phase !== 'open') return null; // pay() itself says why it cannot
  const channel = side.peer.channelOf(record);
  const margin = side.peer.options.policy.marginBlocks;
  try {
    nextState(channel, current, 'A', amountSat, tipHeight, margin);
    if (count > 1) nextState(channel, current, 'A', amountSat * BigInt(count), tipHeight, margin);
    return null;
  } catch (err) {
    if ((err as { code?: string }).code === 'UPDATE_BUDGET_EXHAUSTED') return null;
    const e = new Error(`cannot make ${count} update(s) of ${amountSat} sat (A has ${current.balanceASat} sat): ${(err as Error).message}`);
    return Object.assign(e, { code: (err as { code?: string }).code ?? 'ERROR' });
  }
}

/**
 * Resolves once `payment` settles (true: B countersigned it) or A's proposal for it is signed
 * and waits for B (false). Polled: the peer has no event for "signed", and a stopped run waits
 * here only for the few steps between its last check and the signature.
 */
async function paidOrSigned(payment: Promise<unknown>, signed: () => boolean): Promise<boolean> {
  let outcome: boolean | undefined;
  payment.then(
    () => (outcome = true),
    () => (outcome = false),
  );
  for (;;) {
    await new Promise((r) => setTimeout(r, 20));
    if (outcome !== undefined) return outcome;
    if (signed()) return false;
  }
}

/**
 * The words for a state A signed that B has not countersigned: B holds A's signature and may
 * countersign and publish it, so the payer is exposed up to it. @returns "" when there is none.
 */
function pendingNote(record: DuplexView): string {
  const p = record.pending;
  if (!p) return '';
  return ` (state ${p.index}, A ${p.balanceASat} sat / B ${p.balanceBSat} sat, is signed but not countersigned: the payee may claim it)`;
}

export interface PayerDuplexContext {
  readonly sub: string;
  readonly args: readonly string[];
  readonly p: Parsed;
  readonly network: NetworkName;
  readonly backend: ChainBackend;
  readonly dataDir: string;
  readonly feeRate: number;
  readonly json: boolean;
  readonly log: (l: string) => void;
  /** Progress lines (stderr). */
  readonly progress: (l: string) => void;
  /** Deadline for the first connection to the payee, ms. */
  readonly connectTimeoutMs: number;
}

export async function payerDuplexCommand(ctx: PayerDuplexContext): Promise<number> {
  const { sub, args, p, backend, dataDir, json, log, progress } = ctx;
  // The command says itself that it waits for the funding, with what to do (mine a block): the
  // core's own line saying the same is not repeated.
  const sideLog = (l: string) => {
    if (!/: waiting for \d+ confirmation\(s\) of the funding$/.test(l)) progress(`payer: ${l}`);
  };
  const side = await openDuplexSide({ role: 'A', network: ctx.network, backend, dataDir, fallbackFeeRateSatPerVb: ctx.feeRate, log: sideLog });
  side.start();
  let link: WsPeerLink | undefined;
  /** The channel to resume when the link reconnects on its own (set once it resumed the first time). */
  let resumeOnReconnect: string | null = null;
  const connect = (url: string) => {
    const l: WsPeerLink = connectPayee(url, {
      onMessage: (t) => void side.peer.receive(decodeMessage(t), l),
      onClose: () => side.peer.connectionClosed(l),
      // A new connection is a stranger's to the payee until A's resume proves it (it would be cut
      // after the payee's auth deadline), and B's queued pay requests come with the resume.
      onOpen: () => {
        if (resumeOnReconnect) void side.peer.resume(resumeOnReconnect, l).catch((err: Error) => progress(`payer: resume after reconnecting failed: ${err.message}`));
      },
      log: (line) => progress(`payer: ${line}`),
      connectTimeoutMs: ctx.connectTimeoutMs,
    });
    link = l;
    return l;
  };
  try {
    if (sub === 'open') {
      const url = args[0]!;
      const capacitySat = amountSat('--capacity', p.str('capacity'));
      const contributionBSat = amountSat('--payee-contribution', p.str('payee-contribution'), 0n);
      await side.refresh(); // the wallet's coins, synced once (start() began it)
      const balance = side.wallet.balance().confirmedSat;
      if (balance < capacitySat) throw insufficientFunds(balance, capacitySat, side.wallet.receiveAddress());
      progress(`opening a duplex channel to ${url}: ${capacitySat} sat from the payer, ${contributionBSat} sat asked from the payee`);
      const l = connect(url);
      await l.ready();
      const channelId = await side.peer.open({ link: l, contributionASat: capacitySat, contributionBSat, fundingFeeRateSatPerVb: ctx.feeRate });
      fs.writeFileSync(path.join(dataDir, CURRENT_FILE), JSON.stringify({ channelId, url } satisfies Current));
      // A view is a snapshot: read it again on each check.
      await waitWithProgress(() => side.peer.get(channelId)?.fundingConfirmed === true, `waiting for the funding ${channelId.split(':')[0]} to confirm (on regtest: paychan regtest mine 1)`, progress);
      const tip = await backend.getTip();
      const opened = side.peer.get(channelId);
      if (!opened) throw new Error(`the channel ${channelId} is gone`);
      if (json) printJson(summary(side, opened, tip.height));
      else log(`duplex channel ${channelId} is open`);
      return 0;
    }
    const current = readCurrent(dataDir);
    const record = () => side.peer.get(current.channelId, true)!;
    if (!record()) throw new Error(`the current duplex channel ${current.channelId} is not in ${dataDir}`);
    await side.refresh();
    const online = async () => {
      const l = connect(current.url);
      await l.ready();
      await side.peer.resume(record().channelId!, l);
      resumeOnReconnect = record().channelId!;
      return l;
    };
    switch (sub) {
      case 'pay': {
        const amount = amountSat('AMOUNT', args[0]);
        const count = positiveInt('--count', p.str('count'), 1);
        await online();
        const refused = await checkUpdates(side, record(), amount, count, (await backend.getTip()).height);
        if (refused) {
          const tip = await backend.getTip();
          return reportStopped({ json, summary: summary(side, record(), tip.height), counts: { payments: 0, paidNowSat: 0n, requestedPayments: count }, done: 'nothing paid', error: refused });
        }
        const started = performance.now();
        let paid = 0;
        try {
          await interruptible(async (signal) => {
            // A frozen payee must not hold a Ctrl-C for the answer timeout: the abort wins the race.
            const aborted = new Promise<never>((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }));
            aborted.catch(() => undefined);
            for (; paid < count; paid++) {
              if (signal.aborted) throw signal.reason;
              const payment = side.peer.pay(current.channelId, amount);
              try {
                await Promise.race([payment, aborted]);
              } catch (err) {
                // Stopped with this payment under way: it is paid, or signed and waiting for B.
                if (err === signal.reason && (await paidOrSigned(payment, () => record().pending !== undefined))) paid++;
                throw err;
              }
            }
          });
        } catch (err) {
          const tip = await backend.getTip();
          const pending = record().pending;
          return reportStopped({
            json,
            summary: {
              ...summary(side, record(), tip.height),
              ...(pending ? { signedNotCountersigned: { index: pending.index, balanceASat: pending.balanceASat, balanceBSat: pending.balanceBSat } } : {}),
            },
            counts: { payments: paid, paidNowSat: amount * BigInt(paid), requestedPayments: count },
            done: (paid === 0 ? 'nothing paid' : `stopped after ${paid} of ${count} update(s): ${amount * BigInt(paid)} sat paid on ${record().channelId}`) + pendingNote(record()),
            error: err,
          });
        }
        const elapsedMs = performance.now() - started;
        const tip = await backend.getTip();
        if (json) printJson({ ...summary(side, record(), tip.height), paidNowSat: amount * BigInt(count), payments: count, elapsedMs: Math.round(elapsedMs) });
        else log(`paid ${amount * BigInt(count)} sat in ${count} update(s) on ${record().channelId}`);
        return 0;
      }
      case 'sync':
      case 'status': {
        if (sub === 'sync') await online();
        const tip = await backend.getTip();
        const s = summary(side, record(), tip.height);
        if (json) printJson(s);
        else for (const [k, v] of Object.entries(s)) log(`${k.padEnd(14)} ${typeof v === 'object' ? JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)) : String(v)}`);
        return 0;
      }
      case 'close': {
        const r = record();
        if (p.flag('unilateral')) {
          const finalAt = await side.watcher.forceClose(r.channelId!);
          log(`publishing state ${r.current!.index} alone: it can be mined from block ${finalAt}`);
        } else {
          await online();
          const txid = await side.peer.close(r.channelId!, ctx.feeRate);
          log(`cooperative close ${txid} broadcast`);
        }
        await waitWithProgress(() => record().phase === 'closed', `waiting for the close to confirm (on regtest: paychan regtest mine 1)`, progress);
        const tip = await backend.getTip();
        const settled = record();
        if (json) printJson({ ...summary(side, settled, tip.height), closeTxid: settled.settlement!.txid, closeConfirmations: settled.settlement!.confirmations, closeKind: settled.settlement!.kind });
        else log(`closed by ${settled.settlement!.kind} ${settled.settlement!.txid}: A ${settled.settlement!.valueASat} sat, B ${settled.settlement!.valueBSat} sat, fee ${settled.settlement!.feeSat} sat`);
        return 0;
      }
      case 'watch': {
        // The payer's watcher: publishes the newest state the moment it is final if the channel
        // is still open then (or was closed unilaterally), bumps it, and reports the settlement.
        await waitWithProgress(() => record().phase === 'closed' || record().phase === 'aborted', `channel ${record().channelId}: watching (phase ${record().phase})`, progress, Number.POSITIVE_INFINITY);
        const tip = await backend.getTip();
        const settled = record();
        if (json) printJson(summary(side, settled, tip.height));
        else log(settled.settlement ? `settled by ${settled.settlement.kind} ${settled.settlement.txid}: A ${settled.settlement.valueASat} sat, B ${settled.settlement.valueBSat} sat` : `the channel is ${settled.phase}`);
        return 0;
      }
      default:
        throw new UsageError(`'paychan payer ${sub}' is not available on a duplex channel`);
    }
  } finally {
    link?.close();
    await side.close();
  }
}
