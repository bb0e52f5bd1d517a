/**
 * A hostile payer against the payee service on a real node: each bad input is refused with its
 * specific code, and the channel's state (and the chain) are exactly as before.
 */
import { randomBytes } from 'node:crypto';
import { Transaction, address as baddress } from 'bitcoinjs-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../src/protocol/bytes.js';
import { makeChannel, fundingScriptOf, type ChannelTerms } from '../../src/protocol/channel.js';
import { MAX_MESSAGE_BYTES, decodeMessage, encodeMessage, msg, type Message } from '../../src/protocol/messages.js';
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

async function proposed(p: RawPayer, variant: Variant): Promise<ChannelTerms> {
  const tip = await env.backend.getTip();
  const terms = { variant, network: 'regtest' as const, payerPubkey: p.key.publicKey, capacitySat: 500_000n, expiryHeight: tip.height + 40, payerScript: p.script };
  const [accept] = await p.send(msg('hello', { tempId: p.tempId, ...terms }));
  if (accept?.type !== 'accept') throw new Error(`expected accept, got ${JSON.stringify(accept)}`);
  return { ...terms, payeePubkey: accept.payeePubkey };
}

/** Opens a v2 channel by hand and returns what a payer needs to pay on it. */
async function openedV2(p: RawPayer) {
  const terms = await proposed(p, 'spilman-v2');
  const funding = await env.wallet.fund([{ script: fundingScriptOf(terms).fundingScript, valueSat: terms.capacitySat }], 2);
  expect(codes(await p.send(msg('funding', { tempId: p.tempId, fundingTx: funding.txHex })))).toEqual([]);
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
    const replies = await p.send(msg('refund-request', { tempId: p.tempId, fundingTxid: funding.txid, fundingVout: funding.vout, refundTx: tx.toHex() }));
    expect(codes(replies)).toEqual([code]);
    expect(payee.channel(p.tempId)?.type).toBe('AwaitingRefundRequest');
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
    expect(codes(await p.send(msg('funding', { tempId: p.tempId, fundingTx: funding.txHex })))).toEqual(['FUNDING_MISMATCH']);
    expect(payee.channel(p.tempId)?.type).toBe('AwaitingFunding');
    expect(await env.backend.getTransaction(funding.txid)).toBeNull();
    await env.wallet.release(funding.txid);
  });
});

describe('proposal flood', () => {
  it('refuses a peer its 17th unfunded proposal, and only that peer', async () => {
    const tip = await env.backend.getTip();
    const key = env.wallet.nextChannelKey();
    const script = baddress.toOutputScript(env.wallet.changeAddress(), bitcoinjsNetwork('regtest'));
    const replies: Message[] = [];
    const flooder: PeerLink = { send: (m) => replies.push(m), peer: '10.9.9.9' };
    const hello = (tempId: string) =>
      msg('hello', { tempId, network: 'regtest', variant: 'spilman-v2', payerPubkey: key.publicKey, capacitySat: 100_000n, expiryHeight: tip.height + 40, payerScript: script });
    for (let i = 0; i < 17; i++) await payee.handle(hello(toHex(randomBytes(16))), flooder);
    await payee.drain();
    expect(codes(replies.slice(0, 16))).toEqual(Array(16).fill('accept'));
    expect(codes(replies.slice(16))).toEqual(['RATE_LIMITED']);
    const other: Message[] = [];
    await payee.handle(hello(toHex(randomBytes(16))), { send: (m) => other.push(m), peer: '10.9.9.10' });
    await payee.drain();
    expect(codes(other)).toEqual(['accept']);
  });
});

describe('stale proposals', () => {
  it('are abandoned after proposalTimeoutBlocks, freeing their peer’s slots', async () => {
    const tip = await env.backend.getTip();
    const key = env.wallet.nextChannelKey();
    const script = baddress.toOutputScript(env.wallet.changeAddress(), bitcoinjsNetwork('regtest'));
    const replies: Message[] = [];
    const peer: PeerLink = { send: (m) => replies.push(m), peer: '10.8.8.8' };
    const hello = (tempId: string) =>
      msg('hello', { tempId, network: 'regtest', variant: 'spilman-v2', payerPubkey: key.publicKey, capacitySat: 100_000n, expiryHeight: tip.height + 40, payerScript: script });
    const tempId = toHex(randomBytes(16));
    for (let i = 0; i < 16; i++) await payee.handle(hello(i === 0 ? tempId : toHex(randomBytes(16))), peer);
    await payee.drain();
    expect(codes(replies)).toEqual(Array(16).fill('accept'));
    await payee.onTip({ height: tip.height + 5, hash: tip.hash });
    expect(payee.channel(tempId)?.type).toBe('AwaitingFunding'); // 5 blocks: still waiting
    await payee.onTip({ height: tip.height + 6, hash: tip.hash });
    expect(payee.channel(tempId)).toBeUndefined(); // abandoned
    replies.length = 0;
    await payee.handle(hello(toHex(randomBytes(16))), peer);
    await payee.drain();
    expect(codes(replies)).toEqual(['accept']); // the peer's slots are free again
  });
});
