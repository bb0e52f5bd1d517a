/**
 * `paychan payer ...` — the payer: a wallet and its channels in a data dir, acting on the
 * current (last opened) channel.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { BlockTip, OutpointStatus } from '../chain/backend.js';
import { assertRefundable, PayerWatcher, type WatchEvent } from '../payer/watcher.js';
import { paychanHome } from '../app/files.js';
import { connectNode } from '../app/node-connection.js';
import { PayerApp, type ConnectedChannel } from '../app/payer-app.js';
import { createPayingFetch } from '../payer/paying-fetch.js';
import type { PayerClient } from '../payer/payer-client.js';
import { PaidTally, payRepeatedly, type PayRun } from '../payer/pay-run.js';
import { CannotPayError } from '../protocol/payer-machine.js';
import { ProtocolError } from '../protocol/errors.js';
import { PsbtFundingError } from '../wallet/psbt-funding.js';
import type { PaymentRequiredBody } from '../transport/paywall.js';
import { helpText, type CommandHelp } from './help.js';
import { fetchFailure, insufficientFunds, interruptible, reportStopped, signedBeyondAcked } from './report.js';
import { CHANNEL_KIND_CHOICES, channelKindHelp, channelKindOf } from './channel-kinds.js';
import type { VariantName } from '../protocol/variants/index.js';
import { currentIsDuplex, forgetCurrentDuplex, payerDuplexCommand } from './payer-duplex.js';
import { waitWithProgress } from './wait.js';
import { NODE_OPTIONS, amountSat, feeRate, logger, networkOf, parse, positiveInt, printJson, seconds, UsageError, type Parsed } from './options.js';

export const PAYER_HELP = `paychan payer — pay through a channel

Usage:
  paychan payer address                  a fresh address of the payer's wallet, and its balance
  paychan payer open URL --capacity SAT [--variant ${CHANNEL_KIND_CHOICES}] [--expiry-blocks N]
                    [--payee-contribution SAT]
                                         open a channel to the payee at URL (ws://HOST:PORT/v1/ws);
                                         duplex: payments both ways, the payee may put in coins too
  paychan payer open URL --capacity SAT --psbt   ...funded by an external wallet: prints a PSBT
  paychan payer open --signed-psbt FILE  finish it with the PSBT the wallet funded and signed
                                         (v1: --funded-psbt FILE first gets the refund before
                                         the wallet signs)
  paychan payer pay AMOUNT [--count N]   pay AMOUNT satoshis (N times, pipelined) on the current channel
  paychan payer fetch URL [--count N] [--max-price SAT] [--capacity SAT]
                                         GET a priced URL N times, paying its HTTP 402 through a
                                         stored channel that can still pay (or a new one of --capacity)
  paychan payer status                   the current channel, as the payer and the payee see it
  paychan payer sync                     duplex: connect and take the payee's queued pay-backs
  paychan payer close [--unilateral]     ask the payee to close the channel now, wait for the close
                                         (duplex --unilateral: publish the newest state alone
                                         once its locktime passes)
  paychan payer watch                    wait until the channel is settled on chain; refund it at
                                         expiry if the payee never closed (re-signing with a
                                         higher fee if it gets stuck)
  paychan payer refund [--fee-rate R]    after expiry: take the capacity back with the refund
  paychan payer COMMAND --help           one command's usage, options and an example

Options (flag, or env PAYCHAN_<NAME>, or a key in the --config JSON file):
  --network, --rpc-url, --rpc-user, --rpc-pass   as for 'paychan payee serve' (default: the
                      local node of 'paychan regtest start')
  --data-dir DIR      wallet seed (mode 0600) and database; default $PAYCHAN_HOME/payer
  --fee-rate SAT/VB   fee rate for funding and refunds; default 2
  --connect-timeout SECONDS
                      give up when the payee cannot be reached within SECONDS (open, pay,
                      fetch, close, sync); default 30
  --json              print one JSON object as the last line of stdout
`;

const NODE_LINES = `--network, --rpc-url, --rpc-user, --rpc-pass   the node (default: the local node of
                    'paychan regtest start')
--data-dir DIR      wallet seed and database; default $PAYCHAN_HOME/payer
--json              one JSON object as the last line of stdout`;
const CONNECT_LINE = `--connect-timeout SECONDS
                    give up when the payee cannot be reached within SECONDS; default 30`;

/** Each payer subcommand's own help (`paychan payer pay --help`). */
export const PAYER_COMMANDS: Readonly<Record<string, CommandHelp>> = {
  address: {
    usage: 'address',
    about: "a fresh address of the payer's wallet, and its balance\nFund it to open channels (on regtest: paychan regtest fund ADDRESS AMOUNT).",
    options: NODE_LINES,
    example: 'paychan payer address',
  },
  open: {
    usage: `open URL --capacity SAT [--variant ${CHANNEL_KIND_CHOICES}] [--expiry-blocks N]\n                  [--payee-contribution SAT]`,
    about:
      "open a channel to the payee at URL (ws://HOST:PORT/v1/ws) and wait until it is open\nThe wallet funds it; the payee broadcasts the funding, and the channel opens once it confirms\n(on regtest: paychan regtest mine 1). It becomes the current channel the other commands act on.",
    options: `--capacity SAT      coins locked in the channel (satoshis, or like 0.001btc)
--variant V         the channel:
${channelKindHelp(20)}
--expiry-blocks N   blocks until the payer may take the capacity back; default 144
--payee-contribution SAT
                    duplex: coins the payee puts in too; default 0
--psbt              fund it from an external wallet through a PSBT instead
                    (see 'paychan payer open --psbt --help')
--fee-rate SAT/VB   funding fee rate; default 2
${CONNECT_LINE}
${NODE_LINES}`,
    example: 'paychan payer open ws://127.0.0.1:8420/v1/ws --capacity 100000',
  },
  'open --psbt': {
    usage: `open URL --capacity SAT --psbt [--variant spilman-v1|spilman-v2] [--expiry-blocks N]
open --funded-psbt FILE       (spilman-v1, optional: the refund before you sign)
open --signed-psbt FILE`,
    about: `open a channel funded by an external wallet (hardware or desktop), through a PSBT (BIP174)
Step 1, --psbt: proposes the channel and prints an unsigned PSBT with ONE output, the channel's
(its address, amount and witness script) and no input. Your wallet funds it the way wallets fund
any PSBT: it adds its own inputs and change output, then signs. Do not broadcast it: save the
signed PSBT to FILE (base64, hex or binary; a signed raw transaction in hex works too).
A wallet that cannot fund a PSBT can make one for the address and amount, e.g. Bitcoin Core:
  bitcoin-cli walletcreatefundedpsbt '[]' '[{"ADDRESS":AMOUNT_BTC}]' then walletprocesspsbt
Step 2, --signed-psbt FILE: checks it pays exactly the channel output (script and amount) and
that every input is signed (finalizing it if needed), then finishes the opening: for
spilman-v1 the payee signs the refund first, and only then is the funding shown to it (the
payee broadcasts it). The pending opening is saved in the data dir, so step 2 may run later,
within the payee's opening window (a few blocks). A refused PSBT changes nothing.
spilman-v1, safest: between the two, --funded-psbt FILE takes the PSBT your wallet funded but
did NOT sign yet and gets the payee's refund for it first; then sign that same PSBT and finish
with --signed-psbt (so even a wallet that broadcasts as it signs cannot lock the coins
without a refund).
spilman-v2 only: a BIP21 URI is printed too (a wallet paying it broadcasts at once, which v2
allows: its refund needs no signature); pass that wallet's transaction hex as FILE.`,
    options: `--psbt              step 1: print the funding PSBT instead of funding from this wallet
--funded-psbt FILE  v1, optional: the PSBT your wallet funded, not yet signed
--signed-psbt FILE  step 2: the PSBT (or transaction) your wallet signed
--capacity, --variant, --expiry-blocks   as for 'open'
${CONNECT_LINE}
${NODE_LINES}`,
    example: `paychan payer open ws://127.0.0.1:8420/v1/ws --capacity 100000 --psbt > channel.psbt
paychan payer open --signed-psbt signed.psbt`,
  },
  pay: {
    usage: 'pay AMOUNT [--count N]',
    about:
      "pay AMOUNT satoshis, N times (pipelined), on the current channel\nA run that cannot be paid whole (capacity, or dust change left by the last payment) is refused\nbefore anything is paid; a run that stops part way says how many payments and sats were paid,\nand exits 1.",
    options: `--count N           how many payments of AMOUNT; default 1
${CONNECT_LINE}
${NODE_LINES}`,
    example: 'paychan payer pay 10 --count 100',
  },
  fetch: {
    usage: 'fetch URL [--count N] [--max-price SAT] [--capacity SAT]',
    about:
      "GET a priced URL N times, paying its HTTP 402 through a stored channel to the payee the 402 names\nthat can pay the price and is a few blocks or more from expiry; with --capacity, opens a new one\nwhen there is none. A stored channel whose funding has not confirmed is waited for up to 60 s\n(then CHANNEL_NOT_READY). A run that stops part way says how many requests and sats were\npaid, and exits 1.",
    options: `--count N           how many requests; default 1
--max-price SAT     never pay more than SAT for one request; default 1000
--capacity SAT      open a channel of SAT if none is open to that payee
${CONNECT_LINE}
${NODE_LINES}`,
    example: 'paychan payer fetch http://127.0.0.1:8420/v1/paid/hello --count 5',
  },
  status: {
    usage: 'status',
    about: 'the current channel as the payer sees it: state, capacity, paid, expiry',
    options: NODE_LINES,
    example: 'paychan payer status --json',
  },
  sync: {
    usage: 'sync',
    about: "duplex: connect to the payee and take its queued pay-backs",
    options: `${CONNECT_LINE}\n${NODE_LINES}`,
    example: 'paychan payer sync',
  },
  close: {
    usage: 'close [--unilateral]',
    about:
      "ask the payee to close the current channel now, and wait for the close to confirm\nDuplex --unilateral: publish the newest state alone once its locktime passes.",
    options: `--unilateral        duplex: close without the payee
${CONNECT_LINE}
${NODE_LINES}`,
    example: 'paychan payer close',
  },
  watch: {
    usage: 'watch',
    about:
      "wait until the current channel is settled on chain\nRefunds it at expiry if the payee never closed, re-signing with a higher fee if it gets stuck.",
    options: `--fee-rate SAT/VB   refund fee rate when the node has no estimate; default 2
${NODE_LINES}`,
    example: 'paychan payer watch',
  },
  refund: {
    usage: 'refund [--fee-rate R]',
    about: "after expiry: take the current channel's capacity back with the refund",
    options: `--fee-rate SAT/VB   refund fee rate; default 2
${NODE_LINES}`,
    example: 'paychan payer refund --fee-rate 5',
  },
};

const PAYER_OPTIONS = {
  ...NODE_OPTIONS,
  'data-dir': { type: 'string' as const },
  'fee-rate': { type: 'string' as const },
  capacity: { type: 'string' as const },
  variant: { type: 'string' as const },
  'expiry-blocks': { type: 'string' as const },
  count: { type: 'string' as const },
  'max-price': { type: 'string' as const },
  'payee-contribution': { type: 'string' as const },
  unilateral: { type: 'boolean' as const },
  'connect-timeout': { type: 'string' as const },
  psbt: { type: 'boolean' as const },
  'signed-psbt': { type: 'string' as const },
  'funded-psbt': { type: 'string' as const },
};

/** The one-way variant `--variant` names (duplex was routed to payer-duplex.ts before). */
function variantOf(p: Parsed): VariantName {
  const kind = channelKindOf(p.str('variant'));
  if (kind.type !== 'one-way') throw new UsageError(`--variant ${kind.type} opens through its own command path`);
  return kind.variant;
}

/**
 * Opens a Spilman channel. Once its funding is out it is the current channel (PayerApp records
 * that), so a duplex channel stops being the current one at that same moment, and only then.
 */
async function openChannel(app: PayerApp, dataDir: string, url: string, p: Parsed, progress: (l: string) => void): Promise<ConnectedChannel> {
  const capacitySat = amountSat('--capacity', p.str('capacity'));
  const balance = app.wallet.balance().confirmedSat;
  if (balance < capacitySat) throw insufficientFunds(balance, capacitySat, app.wallet.receiveAddress());
  progress(`opening a ${variantOf(p)} channel of ${capacitySat} sat to ${url}`);
  // Said once, when the payee broadcast the funding: the line says what to do (mine a block).
  return app.openChannel(url, { variant: variantOf(p), capacitySat, expiryBlocks: positiveInt('--expiry-blocks', p.str('expiry-blocks'), 144) }, (txid) => {
    forgetCurrentDuplex(dataDir);
    progress(`funding ${txid} broadcast by the payee; waiting for it to confirm (on regtest: paychan regtest mine 1)`);
  });
}

/** `open --psbt` / `open --signed-psbt FILE`: checked before touching the node or the disk. */
function checkExternalUsage(p: Parsed, args: string[]): void {
  if (externalFlags(p) > 1) throw new UsageError('--psbt (print the PSBT), --funded-psbt FILE (v1: refund first) and --signed-psbt FILE (finish) are steps: one at a time');
  if (p.flag('psbt') && (args.length !== 1 || p.str('capacity') === undefined)) throw new UsageError('usage: paychan payer open URL --capacity SAT --psbt');
  for (const flag of ['signed-psbt', 'funded-psbt']) {
    if (p.str(flag) !== undefined && (args.length !== 0 || p.str('capacity') !== undefined)) {
      throw new UsageError(`usage: paychan payer open --${flag} FILE (the payee and the capacity are those of the pending opening)`);
    }
  }
  if (p.flag('psbt') && channelKindOf(p.str('variant')).type === 'duplex') throw new UsageError('--psbt funds spilman-v1 and spilman-v2 channels; a duplex channel is funded by both sides through its own messages');
}

/** How many of the external funding's step flags are given. */
function externalFlags(p: Parsed): number {
  return [p.flag('psbt'), p.str('signed-psbt') !== undefined, p.str('funded-psbt') !== undefined].filter(Boolean).length;
}

function readPsbtFile(flag: string, file: string): Uint8Array {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new UsageError(`${flag} ${file}: ${(err as Error).message}`);
  }
}

/** v1's optional middle step: the payee signs the refund for the funded, unsigned PSBT. */
async function refundFirst(app: PayerApp, funded: Uint8Array, out: { json: boolean; log: (line: string) => void }): Promise<number> {
  let fundingTxid: string;
  try {
    fundingTxid = await app.refundBeforeSigning(funded);
  } catch (err) {
    if (err instanceof PsbtFundingError || (err instanceof ProtocolError && err.code.startsWith('FUNDING_'))) {
      throw Object.assign(new Error(`${err.code}: ${err.message}. Nothing changed: fix the PSBT and run paychan payer open --funded-psbt FILE again`), { code: err.code });
    }
    throw err;
  }
  const next = 'paychan payer open --signed-psbt FILE';
  if (out.json) printJson({ state: 'AwaitingFundingSignature', fundingTxid, next });
  else out.log(`the payee signed the refund of funding ${fundingTxid}; now sign that same PSBT in your wallet (do not broadcast it) and run: ${next}`);
  return 0;
}

/** Step 1 of an external funding: propose, print the PSBT, keep the opening pending. */
async function proposeExternal(app: PayerApp, url: string, p: Parsed, out: { json: boolean; log: (line: string) => void }): Promise<number> {
  const capacitySat = amountSat('--capacity', p.str('capacity'));
  const { connected, funding } = await app.proposeExternalFunding(url, { variant: variantOf(p), capacitySat, expiryBlocks: positiveInt('--expiry-blocks', p.str('expiry-blocks'), 144) });
  connected.link.close();
  await connected.client.drain();
  const next = 'paychan payer open --signed-psbt FILE';
  if (out.json) {
    printJson({ ...funding, state: 'Funding', next });
    return 0;
  }
  // The PSBT alone on stdout's last line, so `> channel.psbt` saves just it; guidance on stderr.
  const say = (line: string) => process.stderr.write(`${line}\n`);
  say(`channel ${funding.tempId} (${funding.variant}, refundable after block ${funding.expiryHeight}) waits for its funding:`);
  say(`  pay exactly ${funding.amountSat} sat to ${funding.channelAddress}`);
  say('Fund this PSBT in your wallet (it adds its inputs and change), sign it, do NOT broadcast it,');
  say(`save the signed PSBT to a file and run: ${next}`);
  if (funding.bip21) say(`Or pay ${funding.bip21} from any wallet and pass its transaction (hex) as FILE.`);
  out.log(funding.psbt);
  return 0;
}

/** Step 2: finish the pending opening with the wallet's signed PSBT (a refusal leaves it pending). */
async function finishExternal(app: PayerApp, dataDir: string, signed: Uint8Array, progress: (l: string) => void): Promise<ConnectedChannel> {
  try {
    return await app.finishExternalFunding(signed, (txid) => {
      forgetCurrentDuplex(dataDir);
      progress(`funding ${txid} broadcast by the payee; waiting for it to confirm (on regtest: paychan regtest mine 1)`);
    });
  } catch (err) {
    if (err instanceof PsbtFundingError || (err instanceof ProtocolError && err.code.startsWith('FUNDING_'))) {
      throw Object.assign(new Error(`${err.code}: ${err.message}. The opening is still pending: fix the PSBT and run paychan payer open --signed-psbt FILE again`), { code: err.code });
    }
    throw err;
  }
}

function summary(client: PayerClient) {
  const s = client.state;
  if (!s) return { state: 'none' };
  const base = { tempId: client.id, state: s.type, variant: s.proposal.variant, capacitySat: s.proposal.capacitySat, expiryHeight: s.proposal.expiryHeight };
  if (!('channel' in s)) return base;
  return {
    ...base,
    channelId: s.channel.id,
    fundingTxid: s.channel.funding.txid,
    signedSat: 'signedTotalSat' in s ? s.signedTotalSat : 0n,
    ackedSat: 'ackedTotalSat' in s ? s.ackedTotalSat : 0n,
    ...(s.type === 'Closed' ? { closeTxid: s.closeTxid } : {}),
  };
}

export async function payerCommand(argv: string[]): Promise<number> {
  const p = parse(argv, PAYER_OPTIONS);
  const [sub, ...args] = p.positionals;
  if (p.flag('help') || sub === undefined || sub === 'help') {
    const which = sub === 'help' ? args[0] : sub;
    process.stdout.write(helpText('payer', PAYER_HELP, PAYER_COMMANDS, which === 'open' && externalFlags(p) > 0 ? 'open --psbt' : which));
    return 0;
  }
  if (!['address', 'open', 'pay', 'fetch', 'status', 'close', 'watch', 'refund', 'sync'].includes(sub)) throw new UsageError(`unknown payer command '${sub}'`);
  const network = networkOf(p);
  const log = logger(p);
  // Progress (what is being waited for, reconnections) never mixes with a command's answer.
  const progress = (line: string) => process.stderr.write(`${line}\n`);
  const json = p.flag('json');
  const connectTimeoutMs = seconds('--connect-timeout', p.str('connect-timeout'), 30) * 1000;
  const fee = feeRate('--fee-rate', p.str('fee-rate'), 2);
  const dataDir = p.str('data-dir') ?? path.join(paychanHome(), 'payer');
  const external = sub === 'open' && externalFlags(p) > 0;
  const duplex = external ? false : sub === 'open' ? channelKindOf(p.str('variant')).type === 'duplex' : sub === 'sync' || (['pay', 'status', 'close', 'watch'].includes(sub) && currentIsDuplex(dataDir));
  if (duplex) {
    if (sub === 'open' && (args.length !== 1 || p.str('capacity') === undefined)) throw new UsageError('usage: paychan payer open URL --variant duplex --capacity SAT [--payee-contribution SAT]');
    if (sub === 'pay' && args.length !== 1) throw new UsageError('usage: paychan payer pay AMOUNT [--count N]');
    if (sub === 'pay') amountSat('AMOUNT', args[0]);
    const backend = await connectNode({ url: p.str('rpc-url'), user: p.str('rpc-user'), pass: p.str('rpc-pass') }, network);
    try {
      return await payerDuplexCommand({ sub, args, p, network, backend, dataDir, feeRate: fee, json, log, progress, connectTimeoutMs });
    } finally {
      await backend.close();
    }
  }
  if (sub === 'sync') throw new UsageError("'paychan payer sync' is for duplex channels");
  // Validate arguments before touching the node or the disk.
  if (external) checkExternalUsage(p, args);
  else if (sub === 'open' && (args.length !== 1 || p.str('capacity') === undefined)) throw new UsageError('usage: paychan payer open URL --capacity SAT');
  const signed = p.str('signed-psbt') === undefined ? undefined : readPsbtFile('--signed-psbt', p.str('signed-psbt')!);
  const fundedUnsigned = p.str('funded-psbt') === undefined ? undefined : readPsbtFile('--funded-psbt', p.str('funded-psbt')!);
  if (sub === 'pay' && args.length !== 1) throw new UsageError('usage: paychan payer pay AMOUNT [--count N]');
  if (sub === 'fetch' && args.length !== 1) throw new UsageError('usage: paychan payer fetch URL [--count N]');
  const amount = sub === 'pay' ? amountSat('AMOUNT', args[0]) : 0n;
  const count = positiveInt('--count', p.str('count'), 1);
  const backend = await connectNode({ url: p.str('rpc-url'), user: p.str('rpc-user'), pass: p.str('rpc-pass') }, network);
  const app = await PayerApp.open({ network, backend, dataDir, fundingFeeRateSatPerVb: fee, connectTimeoutMs, log: (l) => progress(`payer: ${l}`) });
  let connected: ConnectedChannel | undefined;
  try {
    switch (sub) {
      case 'address': {
        const address = app.wallet.receiveAddress();
        const b = app.wallet.balance();
        if (json) printJson({ address, ...b });
        else log(`${address}\n  spendable ${b.confirmedSat} sat, unconfirmed ${b.unconfirmedSat} sat, immature ${b.immatureSat} sat`);
        return 0;
      }
      case 'open': {
        if (fundedUnsigned !== undefined) return await refundFirst(app, fundedUnsigned, { json, log });
        if (external && signed === undefined) return await proposeExternal(app, args[0]!, p, { json, log });
        connected = signed !== undefined ? await finishExternal(app, dataDir, signed, progress) : await openChannel(app, dataDir, args[0]!, p, progress);
        const s = summary(connected.client);
        if (json) printJson(s);
        else log(`channel ${connected.client.channel.id} is open`);
        return 0;
      }
      case 'pay': {
        connected = await app.resumeChannel();
        const client = connected.client;
        await client.waitFor((s) => s.type === 'Open' || s.type === 'Closed');
        const started = performance.now();
        let run: PayRun;
        try {
          run = await interruptible((signal) => payRepeatedly(client, amount, count, { signal }));
        } catch (err) {
          if (!(err instanceof CannotPayError)) throw err;
          return reportStopped({ json, summary: summary(client), counts: { payments: 0, paidNowSat: 0n, requestedPayments: count }, done: 'nothing paid', error: err });
        }
        if (run.error) {
          return reportStopped({
            json,
            summary: summary(client),
            counts: { payments: run.payments, paidNowSat: run.paidSat, requestedPayments: count },
            done:
              (run.payments === 0 ? 'nothing paid' : `stopped after ${run.payments} of ${count} payment(s): ${run.paidSat} sat paid`) +
              ` (${run.ackedTotalSat} sat acknowledged in total on ${client.channel.id}${signedBeyondAcked(run.signedTotalSat, run.ackedTotalSat)})`,
            error: run.error,
          });
        }
        const elapsedMs = performance.now() - started;
        const total = run.ackedTotalSat;
        // `ackedSat` (in the summary) is the acknowledged total: one key for it, as everywhere.
        if (json) printJson({ ...summary(client), paidNowSat: run.paidSat, payments: count, elapsedMs: Math.round(elapsedMs), paymentsPerSec: Math.round(count / (elapsedMs / 1000)) });
        else log(`paid ${run.paidSat} sat in ${count} payment(s); ${total} sat acknowledged in total on ${client.channel.id}`);
        return 0;
      }
      case 'fetch': {
        const maxPriceSat = amountSat('--max-price', p.str('max-price'), 1_000n);
        const paidOn = new PaidTally();
        const payingFetch = createPayingFetch({
          maxPriceSat,
          channelFor: async (offer) => paidOn.track(await channelFor(offer)),
        });
        const channelFor = async (offer: PaymentRequiredBody): Promise<PayerClient> => {
          // A stored channel to this payee that is still Open (createPayer's channelFor does the same).
          // One that can pay what this request is due (a used-up or expiring one is passed over).
          const reused = await app.reuseChannelTo(offer.channelUrl, BigInt(offer.dueSat));
          if (reused) {
            connected = reused;
            return reused.client;
          }
          if (p.str('capacity') === undefined) throw new UsageError(`no open channel to ${offer.channelUrl}: pass --capacity SAT to open one`);
          connected = await openChannel(app, dataDir, offer.channelUrl, p, progress);
          return connected.client;
        };
        let last: unknown;
        let done = 0;
        try {
          await interruptible(async (signal) => {
            for (; done < count; done++) {
              if (signal.aborted) throw signal.reason;
              const res = await payingFetch(args[0]!).catch((err: unknown) => {
                throw fetchFailure(args[0]!, err);
              });
              if (!res.ok) throw new Error(`GET ${args[0]} answered ${res.status}: ${await res.text()}`);
              last = await res.json();
            }
          });
        } catch (err) {
          const paidSat = paidOn.paidSat();
          return reportStopped({
            json,
            summary: connected ? summary(connected.client) : {},
            counts: { paidRequests: done, paidNowSat: paidSat, requestedRequests: count },
            done: done === 0 && paidSat === 0n ? 'nothing paid' : `stopped after ${done} of ${count} paid request(s): ${paidSat} sat paid`,
            error: err,
          });
        }
        const s = connected ? summary(connected.client) : {};
        if (json) printJson({ ...s, paidRequests: count, paidNowSat: paidOn.paidSat(), lastResponse: last });
        else log(`${count} paid request(s) to ${args[0]}; last answer: ${JSON.stringify(last)}`);
        return 0;
      }
      case 'status': {
        const client = await app.currentClientOffline();
        const books = summary(client);
        // The books say what was agreed; only the node says whether the funding is still on its
        // chain (a reorg, or a node restarted without its blocks, can take it away).
        const s = 'fundingTxid' in books ? { ...books, fundingConfirmations: (await backend.getTransaction(books.fundingTxid))?.confirmations ?? null } : books;
        if (json) printJson(s);
        else for (const [k, v] of Object.entries(s)) log(`${k.padEnd(20)} ${String(v)}`);
        if ('fundingConfirmations' in s && !s.fundingConfirmations && s.state === 'Open') {
          const where = s.fundingConfirmations === null ? 'the node does not know the funding' : 'the node has the funding unconfirmed';
          process.stderr.write(`paychan: warning: ${where} ${s.fundingTxid}; the payee takes no payments until it confirms (is this the node the channel was opened on?)\n`);
        }
        return 0;
      }
      case 'close': {
        connected = await app.resumeChannel();
        const client = connected.client;
        await client.waitFor((s) => s.type === 'Open' || s.type === 'Closed');
        if (client.state?.type === 'Open' && client.state.signedTotalSat === 0n) {
          throw new Error(`nothing was paid on channel ${client.channel.id}, so there is nothing for the payee to close: take the capacity back with 'paychan payer refund' after block ${client.channel.expiryHeight}`);
        }
        if (client.state?.type === 'Open') client.requestClose();
        await client.waitFor((s) => s.type === 'Closed');
        const s = client.state;
        if (s?.type !== 'Closed') throw new Error('unreachable');
        // Watch the funding output, not one txid: the payee may replace its close with a higher fee.
        const seen: { spend?: Extract<OutpointStatus, { state: 'spent' }> } = {};
        await waitWithProgress(
          async () => {
            const status = await backend.getOutpointStatus(s.channel.funding, Math.max(0, s.channel.expiryHeight - 5000));
            if (status.state === 'spent' && status.confirmations >= 1) seen.spend = status;
            return seen.spend !== undefined;
          },
          `waiting for the close ${s.closeTxid} to confirm (on regtest: paychan regtest mine 1)`,
          progress,
        );
        const final = seen.spend!;
        await app.syncWallet();
        if (json) printJson({ ...summary(client), closeTxid: final.spendingTxid, closeConfirmations: final.confirmations });
        else log(`closed: ${final.spendingTxid} confirmed; ${s.channel.capacitySat - s.ackedTotalSat} sat back to the payer`);
        return 0;
      }
      case 'watch': {
        // Runs until the channel is settled on chain: refunds at expiry if the payee never closed.
        const client = await app.currentClientOffline();
        const watcher = new PayerWatcher(client, { backend, fallbackFeeRateSatPerVb: fee, maxFeeRateSatPerVb: 200, bumpAfterBlocks: 2, log: progress });
        // The tip poller's timer does not hold the process open (it is unref'ed); this does.
        const keepAlive = setInterval(() => undefined, 60_000);
        const settled = await new Promise<WatchEvent>((resolve, reject) => {
          let busy = false;
          const onTip = (tip: BlockTip) => {
            if (busy) return;
            busy = true;
            watcher.tick(tip).then(
              (event) => {
                busy = false;
                if (event.type === 'waiting') progress(`channel ${client.channel.id}: ${event.blocksToExpiry} block(s) to expiry; watching`);
                if (event.type === 'settled' || event.type === 'idle') {
                  unsubscribe();
                  resolve(event);
                }
              },
              (err: unknown) => {
                unsubscribe();
                reject(err as Error);
              },
            );
          };
          const unsubscribe = backend.subscribeTips(onTip);
          void backend.getTip().then(onTip, reject);
        }).finally(() => clearInterval(keepAlive));
        await app.syncWallet();
        if (json) printJson({ ...summary(client), settlement: settled });
        else log(settled.type === 'settled' ? `settled by ${settled.by} ${settled.txid}: ${settled.payerValueSat} sat to the payer` : 'nothing to watch: the channel is settled');
        return 0;
      }
      case 'refund': {
        const client = await app.currentClientOffline();
        const state = client.state;
        if (state && 'channel' in state) await assertRefundable(backend, state.channel);
        const refund = await client.refund(fee);
        if (json) printJson({ ...summary(client), refundTxid: refund.txid, refundFeeSat: refund.feeSat, refundVsize: refund.vsize });
        else log(`refund ${refund.txid} broadcast (fee ${refund.feeSat} sat); it confirms with the next block`);
        return 0;
      }
    }
    return 0;
  } finally {
    connected?.link.close();
    if (connected) await connected.client.drain();
    await app.close();
    await backend.close();
  }
}
