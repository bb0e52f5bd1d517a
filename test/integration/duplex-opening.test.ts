/**
 * Who may open a duplex channel with B, on the real node (issue 13.4, 13.5): B shows and reserves
 * its coins only to an A whose own coins are shown first and are real on chain, and openings are
 * limited per payer key and per source address, never by one global cap that a single connection
 * could fill.
 */
import { randomBytes } from 'node:crypto';
import { address as baddress, networks } from 'bitcoinjs-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_OPENINGS_PER_ADDRESS, MAX_OPENINGS_PER_KEY, OPENING_TIMEOUT_BLOCKS } from '../../src/duplex/duplex-opening.js';
import { fromHex } from '../../src/protocol/bytes.js';
import { buildDuplexFundingTx } from '../../src/protocol/duplex-funding.js';
import { duplexFundingScripts, makeDuplexChannel, stateSighash } from '../../src/protocol/duplex-tx.js';
import { plannedInitialLocktime } from '../../src/protocol/duplex-update.js';
import { RELEASED_SPEND_FINAL_CONFIRMATIONS } from '../../src/duplex/duplex-watcher.js';
import { msg, type Message, type MessageOf } from '../../src/protocol/messages.js';
import type { PeerLink } from '../../src/transport/link.js';
import type { ChainBackend } from '../../src/chain/backend.js';
import { duplexPair, type DuplexPair } from '../helpers/duplex-pair.js';
import { startFundedEnv, type RegtestEnv } from '../helpers/regtest-env.js';

let env: RegtestEnv;
beforeAll(async () => {
  env = await startFundedEnv();
});
afterAll(async () => {
  await env?.stop();
});

/** A connection from `address` that records what B answers, and whether B called it proven. */
function strangerLink(address: string): PeerLink & { got: Message[]; provenCalls: number } {
  const got: Message[] = [];
  const link = { got, provenCalls: 0, peer: address, send: (m: Message) => void got.push(m), proven: () => void link.provenCalls++ };
  return link;
}

async function strangerOpen(pair: DuplexPair, keyA: Uint8Array, over: Partial<MessageOf<'duplex-open'>> = {}): Promise<MessageOf<'duplex-open'>> {
  const tip = (await env.backend.getTip()).height;
  return msg('duplex-open', {
    tempId: randomBytes(16).toString('hex'),
    network: 'regtest',
    keyA,
    scriptA: fromHex('0014' + '33'.repeat(20)),
    contributionASat: 500_000n,
    contributionBSat: 0n,
    initialLocktime: plannedInitialLocktime(pair.b.options.policy, tip),
    deltaBlocks: pair.b.options.policy.deltaBlocks,
    stateFeeRateSatPerVb: 2,
    fundingFeeRateSatPerVb: 2,
    inputs: [],
    outputs: [],
    ...over,
  });
}

const newKey = () => env.secp.publicKeyCreate(randomBytes(32));

/**
 * A stranger's opening with B's coins in it, funded by someone else's real coin the stranger can
 * never sign: B signs its inputs for a funding that never reaches the node. @returns its tempId.
 */
async function strangerFunded(pair: DuplexPair, link: PeerLink & { got: Message[] }, secret: Uint8Array, contributionBSat = 400_000n): Promise<string> {
  const keyA = env.secp.publicKeyCreate(secret);
  const foreign = env.wallet.coins().find((c) => c.confirmations > 0 && !c.reserved && !c.coinbase && c.valueSat >= 600_000n)!;
  const open = await strangerOpen(pair, keyA, { contributionBSat, inputs: [{ ...foreign.outpoint, valueSat: foreign.valueSat }] });
  await pair.b.receive(open, link);
  const accept = link.got.at(-1)!;
  if (accept.type !== 'duplex-accept') throw new Error(`no accept: ${accept.type === 'error' ? accept.code : accept.type}`);
  const { fundingScript } = duplexFundingScripts(keyA, accept.keyB);
  const funding = buildDuplexFundingTx(fundingScript, 500_000n + contributionBSat, [{ ...foreign.outpoint, valueSat: foreign.valueSat }, ...accept.inputs], [...accept.outputs]);
  const channel = makeDuplexChannel({ ...open, keyB: accept.keyB, scriptB: accept.scriptB }, { txid: funding.getId(), vout: 0 });
  const signature = env.secp.ecdsaSign(stateSighash(channel, { index: 0, balanceASat: 500_000n, balanceBSat: contributionBSat }), secret);
  await pair.b.receive(msg('duplex-fund', { tempId: open.tempId, fundingTx: funding.toHex(), fundingVout: 0, signature }), link);
  expect(types(link).at(-1)).toBe('duplex-funded');
  return open.tempId;
}

/** The real backend, counting the calls made through it. */
function countingBackend(): { backend: ChainBackend; calls: () => number } {
  let calls = 0;
  const backend = new Proxy(env.backend, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls++;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { backend, calls: () => calls };
}
const types = (link: { got: Message[] }) => link.got.map((m) => (m.type === 'error' ? m.code : m.type));

describe('duplex opening', () => {
  it('shows and reserves none of B’s coins before A’s own coins are shown and real on chain', async () => {
    const pair = await duplexPair(env);
    const wallet = pair.b.options.wallet;
    const stranger = strangerLink('198.51.100.7');
    // No coins shown, then coins that do not exist, then a real coin claimed at another value.
    const real = env.wallet.coins().find((c) => c.confirmations > 0 && !c.reserved && !c.coinbase)!;
    const asks = [
      [],
      [{ txid: 'ab'.repeat(32), vout: 0, valueSat: 600_000n }],
      [{ txid: real.outpoint.txid, vout: real.outpoint.vout, valueSat: real.valueSat + 1n }],
    ];
    for (const inputs of asks) await pair.b.receive(await strangerOpen(pair, newKey(), { contributionBSat: 400_000n, inputs }), stranger);
    expect(types(stranger)).toEqual(['FUNDING_MISMATCH', 'FUNDING_MISMATCH', 'FUNDING_MISMATCH']);
    expect(wallet.state().reservations).toEqual([]);
    expect(pair.b.list()).toEqual([]);
    // An honest A shows its coins first; B checks them and puts its own in.
    const id = await pair.a.open({ link: pair.link.a, contributionASat: 300_000n, contributionBSat: 100_000n, fundingFeeRateSatPerVb: 2 });
    await pair.mine(1);
    expect(pair.b.get(id)).toMatchObject({ phase: 'open', fundingConfirmed: true });
    expect(pair.b.get(id)!.ownInputs!.length).toBeGreaterThan(0);
  });

  it('limits openings per payer key and per source address, so one connection cannot block an honest payer', async () => {
    const pair = await duplexPair(env, {}, 0n);
    const stranger = strangerLink('198.51.100.7');
    const key = newKey();
    for (let i = 0; i <= MAX_OPENINGS_PER_ADDRESS; i++) await pair.b.receive(await strangerOpen(pair, key), stranger);
    const oneKey = types(stranger);
    expect(oneKey.filter((t) => t === 'duplex-accept')).toHaveLength(MAX_OPENINGS_PER_KEY);
    expect(oneKey.slice(MAX_OPENINGS_PER_KEY).every((t) => t === 'RATE_LIMITED')).toBe(true);
    // New keys from the same address: accepted up to the address's share, then refused.
    stranger.got.length = 0;
    for (let i = 0; i <= MAX_OPENINGS_PER_ADDRESS; i++) await pair.b.receive(await strangerOpen(pair, newKey()), stranger);
    expect(types(stranger).filter((t) => t === 'duplex-accept')).toHaveLength(MAX_OPENINGS_PER_ADDRESS - MAX_OPENINGS_PER_KEY);
    expect(types(stranger).at(-1)).toBe('RATE_LIMITED');
    // Someone else, from another address, opens as usual.
    const other = strangerLink('203.0.113.9');
    await pair.b.receive(await strangerOpen(pair, newKey()), other);
    expect(types(other)).toEqual(['duplex-accept']);
    const id = await pair.a.open({ link: pair.link.a, contributionASat: 200_000n, fundingFeeRateSatPerVb: 2 });
    await pair.mine(1);
    expect(pair.b.get(id)).toMatchObject({ phase: 'open', fundingConfirmed: true });
  });

  it('releases B’s coins when a funding B signed never reaches the node (a stranger naming someone else’s coin)', async () => {
    const pair = await duplexPair(env);
    const wallet = pair.b.options.wallet;
    const stranger = strangerLink('198.51.100.8');
    const secret = randomBytes(32);
    const keyA = env.secp.publicKeyCreate(secret);
    // Someone else's real coin, at its true value: B's check on chain passes, but the stranger
    // can never sign it, so the funding it asks B to sign never reaches the node.
    const foreign = env.wallet.coins().find((c) => c.confirmations > 0 && !c.reserved && !c.coinbase && c.valueSat >= 600_000n)!;
    const open = await strangerOpen(pair, keyA, { contributionBSat: 400_000n, inputs: [{ ...foreign.outpoint, valueSat: foreign.valueSat }] });
    await pair.b.receive(open, stranger);
    const accept = stranger.got.at(-1)!;
    expect(accept.type).toBe('duplex-accept');
    if (accept.type !== 'duplex-accept') return;
    const terms = { ...open, keyB: accept.keyB, scriptB: accept.scriptB };
    const { fundingScript } = duplexFundingScripts(keyA, accept.keyB);
    const funding = buildDuplexFundingTx(fundingScript, 900_000n, [{ ...foreign.outpoint, valueSat: foreign.valueSat }, ...accept.inputs], [...accept.outputs]);
    const channel = makeDuplexChannel(terms, { txid: funding.getId(), vout: 0 });
    const signature = env.secp.ecdsaSign(stateSighash(channel, { index: 0, balanceASat: 500_000n, balanceBSat: 400_000n }), secret);
    await pair.b.receive(msg('duplex-fund', { tempId: open.tempId, fundingTx: funding.toHex(), fundingVout: 0, signature }), stranger);
    expect(types(stranger).at(-1)).toBe('duplex-funded');
    expect(wallet.state().reservations.map((r) => r.txid)).toContain(`duplex:${open.tempId}`);
    await pair.mine(OPENING_TIMEOUT_BLOCKS);
    expect(wallet.state().reservations.map((r) => r.txid)).not.toContain(`duplex:${open.tempId}`);
    // B's coins serve the next opening (before: CAPACITY_TOO_LARGE … INSUFFICIENT_FUNDS).
    const id = await pair.a.open({ link: pair.link.a, contributionASat: 300_000n, contributionBSat: 1_500_000n, fundingFeeRateSatPerVb: 2 });
    await pair.mine(1);
    expect(pair.b.get(id)).toMatchObject({ phase: 'open', fundingConfirmed: true });
    // B's coin the stranger's funding spent is spent elsewhere now, one block deep: a reorg could
    // still drop that spend and mine the stranger's funding, so the record stays watched.
    expect(pair.b.get(open.tempId)!.phase).toBe('open');
    await pair.mine(RELEASED_SPEND_FINAL_CONFIRMATIONS - 1);
    // Deep enough now: that funding can never confirm.
    expect(pair.b.get(open.tempId)!.phase).toBe('aborted');
  });

  it('keeps counting a key’s openings whose coins B released until they are aborted: a 5th from that key is refused', async () => {
    const pair = await duplexPair(env, {}, 2_000_000n);
    // One confirmed coin of B's per opening (each reserves its coins until released).
    for (let i = 1; i < MAX_OPENINGS_PER_KEY; i++) await env.wallet.send(pair.b.options.wallet.receiveAddress(), 500_000n, 2);
    await pair.mine(1);
    const stranger = strangerLink('198.51.100.13');
    const secret = randomBytes(32);
    const tempIds: string[] = [];
    for (let i = 0; i < MAX_OPENINGS_PER_KEY; i++) tempIds.push(await strangerFunded(pair, stranger, secret, 100_000n));
    await pair.mine(OPENING_TIMEOUT_BLOCKS);
    // B's coins are back in its wallet, the records still open and watched.
    const reserved = pair.b.options.wallet.state().reservations.map((r) => r.txid);
    for (const tempId of tempIds) {
      expect(pair.b.get(tempId)).toMatchObject({ phase: 'open', ownInputsReleased: true });
      expect(reserved).not.toContain(`duplex:${tempId}`);
    }
    stranger.got.length = 0;
    await pair.b.receive(await strangerOpen(pair, env.secp.publicKeyCreate(secret)), stranger);
    expect(types(stranger)).toEqual(['RATE_LIMITED']);
  });

  it('asks the node at most once per tip however often the adopted link repeats duplex-channel', async () => {
    const counting = countingBackend();
    const pair = await duplexPair(env, {}, 2_000_000n, ':memory:', counting.backend);
    await pair.check(); // the watcher has read the tip once
    const stranger = strangerLink('198.51.100.14');
    const tempId = await strangerFunded(pair, stranger, randomBytes(32), 100_000n);
    const channelId = pair.b.get(tempId)!.channelId!;
    const before = counting.calls();
    for (let i = 0; i < 50; i++) await pair.b.receive(msg('duplex-channel', { tempId, channelId }), stranger);
    expect(counting.calls() - before).toBeLessThanOrEqual(1);
    expect(stranger.provenCalls).toBe(0);
    // A new tip: one probe again.
    await pair.mine(1);
    const next = counting.calls();
    for (let i = 0; i < 50; i++) await pair.b.receive(msg('duplex-channel', { tempId, channelId }), stranger);
    expect(counting.calls() - next).toBeLessThanOrEqual(1);
  });

  it('counts a connection as a payer’s only once the node has the channel’s funding, not for an opening alone', async () => {
    const pair = await duplexPair(env, {}, 0n);
    const link = strangerLink('198.51.100.9');
    const secret = randomBytes(32);
    const keyA = env.secp.publicKeyCreate(secret);
    // An opening costs nothing: B puts nothing in, A shows nothing.
    const open = await strangerOpen(pair, keyA);
    await pair.b.receive(open, link);
    const accept = link.got.at(-1)!;
    expect(accept.type).toBe('duplex-accept');
    if (accept.type !== 'duplex-accept') return;
    expect(link.provenCalls).toBe(0);
    // A funds it by hand from a real coin, change back to its wallet.
    const coin = env.wallet.coins().find((c) => c.confirmations > 0 && !c.reserved && !c.coinbase && c.valueSat >= 600_000n)!;
    const change = { script: baddress.toOutputScript(env.wallet.receiveAddress(), networks.regtest), valueSat: coin.valueSat - 500_000n - 2_000n };
    const { fundingScript } = duplexFundingScripts(keyA, accept.keyB);
    const funding = buildDuplexFundingTx(fundingScript, 500_000n, [{ ...coin.outpoint, valueSat: coin.valueSat }], [change]);
    const channel = makeDuplexChannel({ ...open, keyB: accept.keyB, scriptB: accept.scriptB }, { txid: funding.getId(), vout: 0 });
    const signature = env.secp.ecdsaSign(stateSighash(channel, { index: 0, balanceASat: 500_000n, balanceBSat: 0n }), secret);
    await pair.b.receive(msg('duplex-fund', { tempId: open.tempId, fundingTx: funding.toHex(), fundingVout: 0, signature }), link);
    expect(types(link).at(-1)).toBe('duplex-funded');
    // Saying it was broadcast proves nothing while the node does not have it.
    const channelId = `${funding.getId()}:0`;
    await pair.b.receive(msg('duplex-channel', { tempId: open.tempId, channelId }), link);
    expect(link.provenCalls).toBe(0);
    for (const { index, stack } of env.wallet.signContribution(funding, [0])) funding.setWitness(index, stack);
    await env.backend.broadcast(funding.toHex());
    // (B probes the node at most once per tip for this message: the next block shows it.)
    await pair.mine(1);
    await pair.b.receive(msg('duplex-channel', { tempId: open.tempId, channelId }), link);
    expect(link.provenCalls).toBe(1);
    // Another connection naming that channel is not proven by it.
    const other = strangerLink('203.0.113.10');
    await pair.b.receive(msg('duplex-channel', { tempId: open.tempId, channelId }), other);
    expect(other.provenCalls).toBe(0);
    await env.mine(1);
  });

  it('forgets an abandoned opening B signed nothing for: a stranger’s openings leave no records behind', async () => {
    const pair = await duplexPair(env, {}, 0n);
    const stranger = strangerLink('198.51.100.11');
    const open = await strangerOpen(pair, newKey());
    await pair.b.receive(open, stranger);
    expect(types(stranger)).toEqual(['duplex-accept']);
    expect(pair.b.get(open.tempId)?.phase).toBe('opening');
    await pair.mine(OPENING_TIMEOUT_BLOCKS);
    expect(pair.b.get(open.tempId)).toBeUndefined();
    expect((await pair.b.options.store.loadAll()).map((r) => r.tempId)).not.toContain(open.tempId);
  });

  it('counts the openings of one IPv6 /64 together, whatever address of it each comes from', async () => {
    const pair = await duplexPair(env, {}, 0n);
    const from = (i: number) => strangerLink(`2001:db8:7:7:${(i + 1).toString(16)}::1`);
    const answers: string[] = [];
    for (let i = 0; i <= MAX_OPENINGS_PER_ADDRESS; i++) {
      const link = from(i);
      await pair.b.receive(await strangerOpen(pair, newKey()), link);
      answers.push(...types(link));
    }
    expect(answers.filter((t) => t === 'duplex-accept')).toHaveLength(MAX_OPENINGS_PER_ADDRESS);
    expect(answers.at(-1)).toBe('RATE_LIMITED');
    const neighbour = strangerLink('2001:db8:7:8::1');
    await pair.b.receive(await strangerOpen(pair, newKey()), neighbour);
    expect(types(neighbour)).toEqual(['duplex-accept']);
  });

  it('forgets a channel B put nothing into whose funding never reaches the node', async () => {
    const pair = await duplexPair(env, {}, 0n);
    const stranger = strangerLink('198.51.100.12');
    const secret = randomBytes(32);
    const keyA = env.secp.publicKeyCreate(secret);
    const open = await strangerOpen(pair, keyA);
    await pair.b.receive(open, stranger);
    const accept = stranger.got.at(-1)!;
    if (accept.type !== 'duplex-accept') throw new Error(`no accept: ${accept.type}`);
    // A funding naming someone else's coin: B signs state 0 (it puts nothing in), no one can sign the funding.
    const foreign = env.wallet.coins().find((c) => c.confirmations > 0 && !c.reserved && c.valueSat >= 600_000n)!;
    const { fundingScript } = duplexFundingScripts(keyA, accept.keyB);
    const funding = buildDuplexFundingTx(fundingScript, 500_000n, [{ ...foreign.outpoint, valueSat: foreign.valueSat }], []);
    const channel = makeDuplexChannel({ ...open, keyB: accept.keyB, scriptB: accept.scriptB }, { txid: funding.getId(), vout: 0 });
    const signature = env.secp.ecdsaSign(stateSighash(channel, { index: 0, balanceASat: 500_000n, balanceBSat: 0n }), secret);
    await pair.b.receive(msg('duplex-fund', { tempId: open.tempId, fundingTx: funding.toHex(), fundingVout: 0, signature }), stranger);
    expect(types(stranger).at(-1)).toBe('duplex-funded');
    expect(pair.b.get(open.tempId)?.phase).toBe('open');
    await pair.mine(OPENING_TIMEOUT_BLOCKS);
    // Nothing of B's is at stake (state 0 gives B nothing), and such records cost a stranger nothing.
    expect(pair.b.get(open.tempId)).toBeUndefined();
    expect((await pair.b.options.store.loadAll()).map((r) => r.tempId)).not.toContain(open.tempId);
  });
});
