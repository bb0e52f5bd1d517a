/**
 * The real channels the fuzzer attacks, set up on the payee before the run by honest payers
 * (`PayerClient` over `connectPayee`, wired like src/app/payer-app.ts) and by a raw payer, so
 * that the payee holds one channel in every state:
 *
 *   honest   spilman-v1 Open            the honest payer keeps paying on it during the run (0.1 BTC)
 *   idle     spilman-v2 Open            paid 20 times, then idle: its paid total must not move
 *   closed   spilman-v2 Closed          closed on the payer's request, close mined
 *   closing  spilman-v1 Closing         close broadcast, not mined
 *   pending  spilman-v2 AwaitingConfirmation  funding broadcast, not mined
 *   refund?  spilman-v1 proposal, nothing held (raw hello: the payer holds its cookie)
 *   fund?    spilman-v2 proposal, nothing held (raw hello)
 *   fund1?   spilman-v1 proposal, nothing held (raw hello + refund signed for a made-up outpoint)
 *
 * Every frame of the setup is captured (both directions), for the generators to mutate and replay.
 * Nothing is mined after the setup until the run is over.
 */
import { randomBytes } from 'node:crypto';
import { address as baddress } from 'bitcoinjs-lib';
import { PayerClient } from '../../src/payer/payer-client.js';
import { makeChannel, type ChannelTerms } from '../../src/protocol/channel.js';
import { decodeMessage, encodeMessage, msg, type Message } from '../../src/protocol/messages.js';
import { bitcoinjsNetwork } from '../../src/protocol/network.js';
import { refundTemplateHex } from '../../src/protocol/refund.js';
import type { Variant } from '../../src/protocol/scripts.js';
import type { PeerLink } from '../../src/transport/link.js';
import { connectPayee, type WsPeerLink } from '../../src/transport/ws-client.js';
import type { KeyPair } from '../../src/wallet/keys.js';
import type { RegtestEnv } from '../helpers/regtest-env.js';
import { FuzzSocket } from './fuzz-socket.js';
import type { PayeeProcess } from './payee-process.js';
import { toHex } from '../../src/protocol/bytes.js';
import { Captures, wireEcho, type FundedTarget, type FuzzTargets, type PendingTarget } from './targets.js';
import { waitUntil } from '../helpers/local-pair.js';
import { regtestPayer } from '../helpers/regtest-peers.js';

export interface HonestChannel {
  readonly label: string;
  readonly client: PayerClient;
  readonly link: WsPeerLink;
  /** The channel's payer key (the probes authenticate with it on connections of their own). */
  readonly channelKey: KeyPair;
}

export interface Fixtures {
  readonly targets: FuzzTargets;
  /** The channel paid on during the run. */
  readonly honest: HonestChannel;
  /** Every honest payer, the honest one included. */
  readonly payers: readonly HonestChannel[];
  /** The payer whose funding waits for a confirmation; `opened` settles when it hears channel-open. */
  readonly confirming: HonestChannel & { readonly opened: Promise<unknown> };
  close(): Promise<void>;
}

const EXPIRY_BLOCKS = 300;

/** The fixtures wait on the payee process and the chain together: longer than waitUntil's default. */
const FIXTURE_TIMEOUT_MS = 60_000;

export async function setUpFixtures(env: RegtestEnv, payee: PayeeProcess, log: (line: string) => void): Promise<Fixtures> {
  const captures = new Captures();
  const network = bitcoinjsNetwork('regtest');
  const payers: HonestChannel[] = [];

  const payer = (label: string): HonestChannel => {
    const channelKey = env.wallet.nextChannelKey();
    const holder: { client?: PayerClient } = {};
    const payerLog = (line: string) => log(`${label} payer: ${line}`);
    const link = connectPayee(payee.wsUrl, {
      onMessage: (text) => {
        captures.add(text);
        holder.client?.receive(text);
      },
      onOpen: () => holder.client?.resume(),
      reconnect: { minDelayMs: 50, maxDelayMs: 1_000 },
      log: payerLog,
    });
    const tapped: PeerLink = {
      send: (m) => {
        captures.addFromPayer(encodeMessage(m));
        link.send(m);
      },
    };
    const client = regtestPayer(env, tapped, { channelKey, log: payerLog });
    holder.client = client;
    const h = { label, client, link, channelKey };
    payers.push(h);
    return h;
  };
  const fundingSeen = async (h: HonestChannel) => h.client.state?.type === 'AwaitingOpen' && (await env.backend.getTransaction(h.client.channel.funding.txid)) !== null;
  const payeeState = async (h: HonestChannel) => (await payee.summary(h.client.channel.id))?.state;
  const fundingHex = (h: HonestChannel) => {
    const s = h.client.state;
    if (!s || !('fundingTxHex' in s)) throw new Error(`${h.label} has no funding`);
    return s.fundingTxHex;
  };

  // Enough mature coins for every funding at once.
  await env.mine(10);

  const honest = payer('honest');
  const idle = payer('idle');
  const closed = payer('closed');
  const closing = payer('closing');
  const four = [honest, idle, closed, closing];
  await Promise.all(four.map((h) => h.link.ready()));
  const plan: [HonestChannel, Variant, bigint][] = [
    [honest, 'spilman-v1', 10_000_000n],
    [idle, 'spilman-v2', 500_000n],
    [closed, 'spilman-v2', 200_000n],
    [closing, 'spilman-v1', 200_000n],
  ];
  const opens = plan.map(([h, variant, capacitySat]) => h.client.open({ variant, capacitySat, expiryBlocks: EXPIRY_BLOCKS }));
  await waitUntil(async () => (await Promise.all(four.map(fundingSeen))).every(Boolean), 'the four fundings to be broadcast', FIXTURE_TIMEOUT_MS);
  await env.mine(1);
  await Promise.all(opens);
  log('fixtures: four channels open');

  await honest.client.pay(10_000n);
  for (let i = 0; i < 50; i++) await honest.client.pay(1n);
  await Promise.all(Array.from({ length: 20 }, () => idle.client.pay(1_000n)));
  for (const h of [closed, closing]) {
    await h.client.pay(20_000n);
    await Promise.all(Array.from({ length: 5 }, () => h.client.pay(100n)));
  }

  closed.client.requestClose();
  await waitUntil(async () => (await payeeState(closed)) === 'Closing', 'the payee to close the closed channel', FIXTURE_TIMEOUT_MS);
  // Closing is stored before the close is broadcast: mine once the node has it.
  await waitUntil(async () => (await env.backend.getOutpointStatus(closed.client.channel.funding, 0)).state === 'spent', 'the close in the mempool', FIXTURE_TIMEOUT_MS);
  await env.mine(1);
  await waitUntil(async () => (await payeeState(closed)) === 'Closed', 'the close to confirm', FIXTURE_TIMEOUT_MS);
  closing.client.requestClose();
  await waitUntil(async () => (await payeeState(closing)) === 'Closing', 'the payee to close the closing channel', FIXTURE_TIMEOUT_MS);

  const confirmingPayer = payer('confirming');
  await confirmingPayer.link.ready();
  const opened = confirmingPayer.client.open({ variant: 'spilman-v2', capacitySat: 100_000n, expiryBlocks: EXPIRY_BLOCKS });
  opened.catch(() => undefined);
  await waitUntil(() => fundingSeen(confirmingPayer), 'the pending funding to be broadcast', FIXTURE_TIMEOUT_MS);
  await waitUntil(async () => (await payeeState(confirmingPayer)) === 'AwaitingConfirmation', 'the payee to wait for its confirmation', FIXTURE_TIMEOUT_MS);
  log('fixtures: closed, closing and confirming channels ready');

  // Proposals from a raw payer.
  const tip = (await env.backend.getTip()).height;
  const raw = new FuzzSocket(payee.wsUrl);
  const rawKey = env.wallet.nextChannelKey();
  const rawScript = baddress.toOutputScript(env.wallet.changeAddress(), network);
  const exchange = async (m: Message): Promise<Message> => {
    const text = encodeMessage(m);
    captures.addFromPayer(text);
    const o = await raw.exchange(text, false, 10_000);
    if (o.kind !== 'reply') throw new Error(`setup: no answer to ${m.type} (${o.kind})`);
    captures.add(o.text);
    return decodeMessage(o.text);
  };
  const propose = async (label: string, variant: Variant): Promise<{ tempId: string; terms: ChannelTerms; cookie: Uint8Array }> => {
    const tempId = randomBytes(16).toString('hex');
    const fields = { network: 'regtest' as const, variant, payerPubkey: rawKey.publicKey, capacitySat: 200_000n, expiryHeight: tip + EXPIRY_BLOCKS, payerScript: rawScript };
    const accept = await exchange(msg('hello', { tempId, ...fields }));
    if (accept.type !== 'accept') throw new Error(`setup: ${label} hello answered ${JSON.stringify(accept)}`);
    return { tempId, terms: { ...fields, payeePubkey: accept.payeePubkey }, cookie: accept.cookie };
  };
  const awaitingRefund = await propose('refund?', 'spilman-v1');
  const awaitingFunding = await propose('fund?', 'spilman-v2');
  const awaitingFunding1 = await propose('fund1?', 'spilman-v1');
  const madeUp = { txid: randomBytes(32).toString('hex'), vout: 0 };
  const refundTemplate = refundTemplateHex(makeChannel(awaitingFunding1.terms, madeUp));
  const { payeePubkey: _k, ...echo1 } = awaitingFunding1.terms;
  const signed = await exchange(
    msg('refund-request', { tempId: awaitingFunding1.tempId, proposal: echo1, cookie: awaitingFunding1.cookie, fundingTxid: madeUp.txid, fundingVout: madeUp.vout, refundTx: refundTemplate }),
  );
  if (signed.type !== 'refund-signature') throw new Error(`setup: refund request answered ${JSON.stringify(signed)}`);
  await raw.close();

  const paid = (h: HonestChannel) => {
    const s = h.client.state;
    return s && 'ackedTotalSat' in s ? s.ackedTotalSat : 0n;
  };
  const funded = (h: HonestChannel, payeeState: FundedTarget['payeeState'], paidSat: bigint | null): FundedTarget => ({
    label: h.label,
    tempId: h.client.id!,
    channel: h.client.channel,
    payeeState,
    paidSat,
    fundingTx: fundingHex(h),
  });
  const pendingOf = (label: string, p: { tempId: string; terms: ChannelTerms; cookie: Uint8Array }): PendingTarget => ({ label, tempId: p.tempId, terms: p.terms, echo: wireEcho(p.terms), cookie: toHex(p.cookie) });
  const pending: PendingTarget[] = [pendingOf('refund?', awaitingRefund), pendingOf('fund?', awaitingFunding), pendingOf('fund1?', awaitingFunding1)];
  const honestTarget = funded(honest, 'Open', null);
  const idleTarget = funded(idle, 'Open', paid(idle));
  const helloKey = env.wallet.nextChannelKey();
  const targets: FuzzTargets = {
    tipHeight: (await env.backend.getTip()).height,
    honest: honestTarget,
    open: [honestTarget, idleTarget],
    funded: [honestTarget, idleTarget, funded(closed, 'Closed', paid(closed)), funded(closing, 'Closing', paid(closing)), funded(confirmingPayer, 'AwaitingConfirmation', 0n)],
    pending,
    fundingTxs: [honest, idle, closed, closing, confirmingPayer].map(fundingHex),
    refundTemplates: [refundTemplateHex(honest.client.channel), refundTemplateHex(closing.client.channel), refundTemplate],
    helloPubkey: helloKey.publicKey,
    helloScript: baddress.toOutputScript(env.wallet.changeAddress(), network),
    captures,
    ownTempIds: new Set(),
  };
  return {
    targets,
    honest,
    payers,
    confirming: { ...confirmingPayer, opened },
    async close() {
      await Promise.all(payers.map((p) => p.link.close()));
    },
  };
}
