/**
 * A hostile payer against the payee service on a real node: each bad input is refused with its
 * specific code, and the channel's state (and the chain) are exactly as before.
 */
import { randomBytes } from 'node:crypto';
import { Transaction, address as baddress } from 'bitcoinjs-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../src/protocol/bytes.js';
import { makeChannel, fundingScriptOf, type ChannelTerms } from '../../src/protocol/channel.js';
import { MAX_MESSAGE_BYTES, decodeMessage, encodeMessage, msg, type Message, type MessageOf } from '../../src/protocol/messages.js';
import { bitcoinjsNetwork } from '../../src/protocol/network.js';
import { paymentDigest, paymentSighasher } from '../../src/protocol/payment.js';
import { refundTemplateHex } from '../../src/protocol/refund.js';
import type { Variant } from '../../src/protocol/scripts.js';
import { PayeeService } from '../../src/payee/payee-service.js';
import { waitUntil } from '../helpers/local-pair.js';
import type { PeerLink } from '../../src/transport/link.js';
import { regtestPayee } from '../helpers/regtest-peers.js';
import { startFundedEnv, type RegtestEnv } from '../helpers/regtest-env.js';

let env: RegtestEnv;
let payee: PayeeService;

beforeAll(async () => {
  env = await startFundedEnv();
  payee = await regtestPayee(env);
  payee.start();
});
afterAll(async () => {
  payee?.stop();
  await env?.stop();
});

/** A payer speaking raw messages; `send` resolves with the payee's replies to that message. */
class RawPayer {
  readonly key = env.wallet.nextChannelKey();
  readonly script = baddress.toOutputScript(env.wallet.changeAddress(), bitcoinjsNetwork('regtest'));
  readonly tempId = toHex(randomBytes(16));
  private inbox: Message[] = [];
  private readonly link: PeerLink = { send: (m) => this.inbox.push(decodeMessage(encodeMessage(m))) };

  async sendText(text: string): Promise<Message[]> {
    this.inbox = [];
    await payee.receive(text, this.link);
    await payee.drain(); // replies wait for the store
    return this.inbox;
  }
  send(m: Message): Promise<Message[]> {
    return this.sendText(encodeMessage(m));
  }
}

const codes = (replies: Message[]) => replies.map((m) => (m.type === 'error' ? m.code : m.type));

/** A proposal the payee accepted: the channel terms, and what later opening messages echo. */
interface Proposed extends ChannelTerms {
  readonly echo: MessageOf<'funding'>['proposal'];
  readonly cookie: Uint8Array;
}

async function proposed(p: RawPayer, variant: Variant): Promise<Proposed> {
  const tip = await env.backend.getTip();
  const echo = { variant, network: 'regtest' as const, payerPubkey: p.key.publicKey, capacitySat: 500_000n, expiryHeight: tip.height + 40, payerScript: p.script };
  const [accept] = await p.send(msg('hello', { tempId: p.tempId, ...echo }));
  if (accept?.type !== 'accept') throw new Error(`expected accept, got ${JSON.stringify(accept)}`);
  return { ...echo, payeePubkey: accept.payeePubkey, echo, cookie: accept.cookie };
}

const fundingMsg = (p: RawPayer, t: Proposed, fundingTx: string) => msg('funding', { tempId: p.tempId, proposal: t.echo, cookie: t.cookie, fundingTx });

/** Opens a v2 channel by hand and returns what a payer needs to pay on it. */
async function openedV2(p: RawPayer) {
  const terms = await proposed(p, 'spilman-v2');
  const funding = await env.wallet.fund([{ script: fundingScriptOf(terms).fundingScript, valueSat: terms.capacitySat }], 2);
  expect(codes(await p.send(fundingMsg(p, terms, funding.txHex)))).toEqual([]);
  await waitUntil(async () => (await env.backend.getTransaction(funding.txid)) !== null, 'funding broadcast');
  await env.mine(1);
  await waitUntil(() => payee.channel(p.tempId)?.type === 'Open', 'the channel to open');
  const channel = makeChannel(terms, { txid: funding.txid, vout: 0 });
  const sighasher = paymentSighasher(channel);
  const pay = (totalSat: bigint, signFor = totalSat) =>
    p.send(msg('payment', { channelId: channel.id, totalSat, signature: env.secp.ecdsaSign(paymentDigest(channel, sighasher, signFor), p.key.privateKey) }));
  return { channel, pay };
}

describe('hostile payments', () => {
  it('each is refused with its code and changes nothing', async () => {
    const p = new RawPayer();
    const { channel, pay } = await openedV2(p);
    expect(codes(await pay(10_000n))).toEqual(['payment-ack']);
    const paid = () => {
      const s = payee.channel(channel.id);
      return s?.type === 'Open' ? s.paidSat : -1n;
    };
    expect(codes(await pay(20_000n, 20_001n))).toEqual(['INVALID_SIGNATURE']);
    expect(codes(await pay(9_000n))).toEqual(['AMOUNT_NOT_INCREASING']);
    expect(codes(await pay(5_000n))).toEqual(['AMOUNT_NOT_INCREASING']); // an older payment replayed
    expect(codes(await pay(10_000n))).toEqual(['payment-ack']); // the newest resent: acked again, nothing changes
    const tooMuch = msg('payment', { channelId: channel.id, totalSat: 500_001n, signature: new Uint8Array(64).fill(9) });
    expect(codes(await p.send(tooMuch))).toEqual(['AMOUNT_EXCEEDS_CAPACITY']);
    const otherChannel = msg('payment', { channelId: `${'ee'.repeat(32)}:0`, totalSat: 20_000n, signature: new Uint8Array(64).fill(9) });
    expect(codes(await p.send(otherChannel))).toEqual(['UNKNOWN_CHANNEL']);
    expect(codes(await p.sendText('{"v":1,"type":"payment","channelId":"x"}'))).toEqual(['MALFORMED_MESSAGE']);
    expect(codes(await p.sendText('{'.padEnd(MAX_MESSAGE_BYTES + 10, ' ')))).toEqual(['MESSAGE_TOO_LARGE']);
    expect(paid()).toBe(10_000n);
    expect(codes(await pay(20_000n))).toEqual(['payment-ack']); // still serving the honest payer
    expect(paid()).toBe(20_000n);
  });
});

describe('hostile refund requests (spilman-v1, seed step 4)', () => {
  const mutations: [string, (tx: Transaction) => void, string][] = [
    ['a locktime short of the agreed expiry', (tx) => void (tx.locktime -= 1), 'REFUND_LOCKTIME_MISMATCH'],
    ['an extra input', (tx) => void tx.addInput(fromHex('ab'.repeat(32)), 0, 0xfffffffd), 'REFUND_EXTRA_INPUT'],
    ['a wrong outpoint', (tx) => void (tx.ins[0]!.index += 1), 'REFUND_WRONG_OUTPOINT'],
  ];
  it.each(mutations)('a refund with %s is refused and the payee signs nothing', async (_d, mutate, code) => {
    const p = new RawPayer();
    const terms = await proposed(p, 'spilman-v1');
    const funding = { txid: toHex(randomBytes(32)), vout: 0 };
    const tx = Transaction.fromHex(refundTemplateHex(makeChannel(terms, funding)));
    mutate(tx);
    const request = { tempId: p.tempId, proposal: terms.echo, cookie: terms.cookie, fundingTxid: funding.txid, fundingVout: funding.vout };
    const replies = await p.send(msg('refund-request', { ...request, refundTx: tx.toHex() }));
    expect(codes(replies)).toEqual([code]);
    expect(payee.channel(p.tempId)).toBeUndefined(); // the payee holds nothing before a funding
    // The untouched template is signed (the cookie vouches for the proposal), still holding nothing.
    expect(codes(await p.send(msg('refund-request', { ...request, refundTx: refundTemplateHex(makeChannel(terms, funding)) })))).toEqual(['refund-signature']);
    expect(payee.channel(p.tempId)).toBeUndefined();
  });
});

describe('hostile funding (seed step 6)', () => {
  it.each([
    ['one satoshi short', 499_999n, false],
    ['to another script', 500_000n, true],
  ] as const)('a funding tx paying %s is refused and never broadcast', async (_d, valueSat, otherScript) => {
    const p = new RawPayer();
    const terms = await proposed(p, 'spilman-v2');
    const script = otherScript ? p.script : fundingScriptOf(terms).fundingScript;
    const funding = await env.wallet.fund([{ script, valueSat }], 2);
    expect(codes(await p.send(fundingMsg(p, terms, funding.txHex)))).toEqual(['FUNDING_MISMATCH']);
    expect(payee.channel(p.tempId)).toBeUndefined();
    expect(await env.backend.getTransaction(funding.txid)).toBeNull();
    await env.wallet.release(funding.txid);
  });
});

describe('hostile openings (issue 13, item 2)', () => {
  it('unfunded proposals from many peers hold nothing and lock no one out', async () => {
    // Before cookies: 16 unfunded proposals per address, then RATE_LIMITED for that address, and
    // 10,000 in total locked every new payer out until they were abandoned 6 blocks later.
    const tip = await env.backend.getTip();
    const key = env.wallet.nextChannelKey();
    const script = baddress.toOutputScript(env.wallet.changeAddress(), bitcoinjsNetwork('regtest'));
    const replies: Message[] = [];
    const hello = (tempId: string) =>
      msg('hello', { tempId, network: 'regtest', variant: 'spilman-v2', payerPubkey: key.publicKey, capacitySat: 100_000n, expiryHeight: tip.height + 40, payerScript: script });
    const before = payee.channels().length;
    for (let peer = 0; peer < 4; peer++) {
      const flooder: PeerLink = { send: (m) => replies.push(m), peer: `10.9.9.${peer}` };
      for (let i = 0; i < 40; i++) await payee.handle(hello(toHex(randomBytes(16))), flooder);
    }
    await payee.drain();
    expect(codes(replies)).toEqual(Array(160).fill('accept'));
    expect(payee.channels().length).toBe(before);
    // The honest payer, from one of the flooders' addresses too, still opens.
    const p = new RawPayer();
    const { pay } = await openedV2(p);
    expect(codes(await pay(10_000n))).toEqual(['payment-ack']);
  });

  it('a forged cookie, or a proposal altered under a real one, is refused before any work', async () => {
    const p = new RawPayer();
    const terms = await proposed(p, 'spilman-v2');
    const funding = await env.wallet.fund([{ script: fundingScriptOf(terms).fundingScript, valueSat: terms.capacitySat }], 2);
    const forged = Uint8Array.from(terms.cookie);
    forged[10]! ^= 0x80;
    expect(codes(await p.send(msg('funding', { tempId: p.tempId, proposal: terms.echo, cookie: forged, fundingTx: funding.txHex })))).toEqual(['INVALID_COOKIE']);
    const bigger = { ...terms.echo, capacitySat: terms.capacitySat + 1n };
    expect(codes(await p.send(msg('funding', { tempId: p.tempId, proposal: bigger, cookie: terms.cookie, fundingTx: funding.txHex })))).toEqual(['INVALID_COOKIE']);
    expect(payee.channel(p.tempId)).toBeUndefined();
    expect(await env.backend.getTransaction(funding.txid)).toBeNull(); // never broadcast
    await env.wallet.release(funding.txid);
  });

  it('a funding the node refuses leaves no channel behind', async () => {
    const p = new RawPayer();
    const terms = await proposed(p, 'spilman-v2');
    const funding = await env.wallet.fund([{ script: fundingScriptOf(terms).fundingScript, valueSat: terms.capacitySat }], 2);
    const tx = Transaction.fromHex(funding.txHex);
    tx.setWitness(0, [new Uint8Array(71).fill(1), tx.ins[0]!.witness[1]!]); // a bad signature: same txid, refused by the node
    expect(codes(await p.send(fundingMsg(p, terms, tx.toHex())))).toEqual(['FUNDING_REJECTED']);
    expect(payee.channel(p.tempId)).toBeUndefined();
    // The real one still opens the channel.
    expect(codes(await p.send(fundingMsg(p, terms, funding.txHex)))).toEqual([]);
    expect(payee.channel(p.tempId)?.type).toBe('AwaitingConfirmation');
  });
});
