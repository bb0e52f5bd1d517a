/**
 * The operator's dashboard without a chain: payment rates from the counters (times given, no
 * clock), the fee-bump history of closes, the snapshot built from payee and duplex states
 * (numbers of satoshis, totals, order, bounds), and its HTTP routes on a real socket (the CSP,
 * no secret in the page, the admin token on the JSON).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloseVersions, MAX_VERSIONS } from '../../src/app/dashboard/close-versions.js';
import { dashboardSnapshot, MAX_ROWS } from '../../src/app/dashboard/dashboard-snapshot.js';
import { DASHBOARD_API_PATH, DASHBOARD_CSP, dashboardRoutes } from '../../src/app/dashboard/dashboard-routes.js';
import { PaymentActivity, RATE_WINDOW_SAMPLES } from '../../src/app/dashboard/payment-activity.js';
import { bearerAuthorizer } from '../../src/app/duplex-routes.js';
import type { DuplexChannelState } from '../../src/protocol/duplex-state.js';
import type { PayeeState } from '../../src/protocol/payee-machine.js';
import { ChannelEntry } from '../../src/payee/channel-entry.js';
import { sendError } from '../../src/transport/http-replies.js';
import { channel, closeRecordFor, terms } from '../helpers/protocol.js';

describe('PaymentActivity', () => {
  it('rates payments over the window the samples really span, overall and per channel', () => {
    const a = new PaymentActivity();
    a.sample(0);
    for (let s = 1; s <= RATE_WINDOW_SAMPLES; s++) {
      for (let i = 0; i < 30; i++) a.onPayment('c1');
      for (let i = 0; i < 10; i++) a.onPayment('c2');
      // A late timer: the samples are 2 s apart, so the rate halves rather than doubling up.
      a.sample(s * 2000);
    }
    expect(a.paymentsPerSecond()).toBe(20);
    expect(a.channelRate('c1')).toEqual({ paymentsPerSecond: 15, recentPayments: 300 });
    expect(a.channelRate('c2')?.paymentsPerSecond).toBe(5);
    expect(a.channelRate('nobody')).toBeUndefined();
    expect(a.recentSeries()).toEqual([0, ...Array(RATE_WINDOW_SAMPLES).fill(40)]);
  });

  it('drops a channel idle for a whole window (memory follows busy channels), and counts it again later', () => {
    const a = new PaymentActivity();
    a.onPayment('c1');
    a.sample(1000);
    expect(a.trackedChannels()).toBe(1);
    for (let s = 2; s <= RATE_WINDOW_SAMPLES + 1; s++) a.sample(s * 1000);
    expect(a.trackedChannels()).toBe(0);
    expect(a.channelRate('c1')).toBeUndefined();
    a.onPayment('c1');
    a.sample((RATE_WINDOW_SAMPLES + 2) * 1000);
    expect(a.channelRate('c1')?.recentPayments).toBe(1);
  });

  it('counts duplex updates from the states from when it first sees them, and forgets closed channels', () => {
    const a = new PaymentActivity();
    a.sample(0, [['d1', 50]]); // 50 updates before this process looked: not recent
    expect(a.channelRate('d1', true)).toBeUndefined();
    a.sample(1000, [['d1', 56]]);
    a.sample(2000, [['d1', 60]]);
    expect(a.channelRate('d1', true)).toEqual({ paymentsPerSecond: 5, recentPayments: 10 });
    expect(a.channelRate('d1')).toBeUndefined(); // the Spilman counter of that id is another
    expect(a.recentSeries()).toEqual([0, 6, 4]);
    a.sample(3000, []);
    expect(a.trackedChannels()).toBe(0);
  });
});

describe('CloseVersions', () => {
  it('keeps the versions a close went through, bounded, and forgets closes no longer waiting', () => {
    const c = new CloseVersions();
    expect(c.observe('x', { txid: 'a', feeSat: 100, feeRateSatPerVb: 1 })).toHaveLength(1);
    expect(c.observe('x', { txid: 'a', feeSat: 100, feeRateSatPerVb: 1 })).toHaveLength(1); // seen again: no bump
    expect(c.observe('x', { txid: 'b', feeSat: 125, feeRateSatPerVb: 1.25 }).map((v) => v.txid)).toEqual(['a', 'b']);
    for (let i = 0; i < MAX_VERSIONS * 2; i++) c.observe('x', { txid: `t${i}`, feeSat: i, feeRateSatPerVb: i });
    const kept = c.observe('x', { txid: 'last', feeSat: 1, feeRateSatPerVb: 1 });
    expect(kept).toHaveLength(MAX_VERSIONS);
    expect(kept[kept.length - 1]?.txid).toBe('last');
    c.retainSeen();
    c.retainSeen(); // not observed since: the close confirmed
    expect(c.observe('x', { txid: 'last', feeSat: 1, feeRateSatPerVb: 1 })).toHaveLength(1);
  });
});

// ---------------------------------------------------------------- snapshot

const SIG = new Uint8Array(64).fill(1);

function openState(variant: 'spilman-v1' | 'spilman-v2', capacitySat: bigint, paidSat: bigint, expiryHeight: number): Extract<PayeeState, { type: 'Open' }> {
  const t = terms(variant, { capacitySat, expiryHeight });
  return { type: 'Open', tempId: `t-${variant}-${capacitySat}`, terms: t, keyIndex: 0, channel: channel(variant, { capacitySat, expiryHeight }), paidSat, signature: SIG };
}

function duplexState(type: 'Open' | 'Closing', id: string, updates: number, close?: { txid: string; feeRateSatPerVb: number; feeSat: bigint }): DuplexChannelState {
  const base = {
    type,
    tempId: `dt-${id}`,
    role: 'B',
    keyIndex: 0,
    fundingFeeRateSatPerVb: 1,
    minFundingConfirmations: 1,
    openedHeight: 100,
    openedBy: null,
    ownInputs: [],
    ownOutputs: [],
    updates,
    paidAtoBSat: 7000n,
    paidBtoASat: 2000n,
    channelId: id,
    terms: { network: 'regtest', keyA: new Uint8Array(33), keyB: new Uint8Array(33), scriptA: new Uint8Array(22), scriptB: new Uint8Array(22), contributionASat: 60_000n, contributionBSat: 40_000n, initialLocktime: 1000, deltaBlocks: 6, stateFeeRateSatPerVb: 1 },
    fundingTxHex: '',
    fundingConfirmed: true,
    fundingHeight: 101,
    fundingSignedHeight: 100,
    ownInputsReleased: false,
    current: { index: 5, balanceASat: 55_000n, balanceBSat: 45_000n, sigA: SIG, sigB: SIG },
    pending: null,
    refusedIndex: null,
    proposedRequests: [],
    rolloverProposal: null,
    payBackQueue: [],
    predecessorId: null,
  };
  // Built by hand (the fields viewOf reads): driving a duplex machine to Closing is duplex-machine.test.ts's job.
  return (close ? { ...base, close: { kind: 'unilateral', txid: close.txid, txHex: '02', feeSat: close.feeSat, feeRateSatPerVb: close.feeRateSatPerVb, broadcastHeight: 130, stateIndex: 5 } } : base) as unknown as DuplexChannelState;
}

describe('dashboardSnapshot', () => {
  const v1 = openState('spilman-v1', 100_000n, 1_050n, 300);
  const v2 = openState('spilman-v2', 50_000n, 0n, 310);
  const paid = openState('spilman-v1', 80_000n, 20_000n, 320);
  const record = closeRecordFor(paid, 2);
  const closing: PayeeState = { ...paid, type: 'Closing', signature: SIG, close: { ...record, broadcastHeight: 120 } };
  const closed: PayeeState = { ...openState('spilman-v2', 70_000n, 5_000n, 200), type: 'Closed', closeTxid: 'cc'.repeat(32), settledBy: 'close' };

  it('shows every variant with numbers of satoshis, the closes waiting with their bumps, and totals over all', () => {
    const activity = new PaymentActivity();
    activity.sample(0, [['d'.repeat(64) + ':0', 10]]);
    for (let i = 0; i < 20; i++) activity.onPayment(v1.channel.id);
    activity.sample(1000, [['d'.repeat(64) + ':0', 13]]);
    const closes = new CloseVersions();
    const input = { network: 'regtest', tipHeight: 125, spilman: [v1, v2, closing, closed], duplex: [duplexState('Open', 'd'.repeat(64) + ':0', 13), duplexState('Closing', 'e'.repeat(64) + ':1', 4, { txid: 'ab'.repeat(32), feeRateSatPerVb: 1, feeSat: 300n })], activity, closes };
    const first = dashboardSnapshot(input);
    expect(first.totals).toEqual({
      channels: 6,
      liveChannels: 5,
      capacitySat: 100_000 + 50_000 + 80_000 + 100_000 + 100_000,
      paidSat: 1_050 + 20_000 + 5_000 + 7_000 + 7_000,
      paidBackSat: 4_000,
      byVariant: { 'spilman-v1': { channels: 2, liveChannels: 2, paidSat: 21_050 }, 'spilman-v2': { channels: 2, liveChannels: 1, paidSat: 5_000 }, duplex: { channels: 2, liveChannels: 2, paidSat: 14_000 } },
      closesWaiting: 2,
    });
    expect(first.rate).toEqual({ windowSeconds: RATE_WINDOW_SAMPLES, paymentsPerSecond: 23, series: [0, 23] });
    // Closing first, then open ones by rate; closed last.
    expect(first.channels.map((c) => [c.variant, c.state])).toEqual([
      ['spilman-v1', 'Closing'],
      ['duplex', 'closing'],
      ['spilman-v1', 'Open'],
      ['duplex', 'open'],
      ['spilman-v2', 'Open'],
      ['spilman-v2', 'Closed'],
    ]);
    expect(first.channels[2]).toEqual({ channelId: v1.channel.id, variant: 'spilman-v1', state: 'Open', capacitySat: 100_000, paidSat: 1_050, expiryHeight: 300, paymentsPerSecond: 20 });
    expect(first.channels[3]).toMatchObject({ variant: 'duplex', paidSat: 7_000, paidBackSat: 2_000, expiryHeight: 1000 - 5 * 6, paymentsPerSecond: 3 });
    expect(first.channels[0]?.closeTxid).toBe(record.txid);
    expect(first.channels[5]?.closeTxid).toBe('cc'.repeat(32));
    expect(first.closes).toEqual([
      { txid: record.txid, variant: 'spilman-v1', channelIds: [paid.channel.id], kind: 'batch', feeSat: Number(record.feeSat), feeRateSatPerVb: 2, broadcastHeight: 120, waitingBlocks: 5, bumps: 0, versions: [{ txid: record.txid, feeSat: Number(record.feeSat), feeRateSatPerVb: 2, broadcastHeight: 120 }] },
      { txid: 'ab'.repeat(32), variant: 'duplex', channelIds: ['e'.repeat(64) + ':1'], kind: 'unilateral', feeSat: 300, feeRateSatPerVb: 1, broadcastHeight: 130, waitingBlocks: 0, finalAtHeight: 970, bumps: 0, versions: [{ txid: 'ab'.repeat(32), feeSat: 300, feeRateSatPerVb: 1, broadcastHeight: 130 }] },
    ]);
    expect(JSON.parse(JSON.stringify(first))).toEqual(first); // plain JSON: no bigint anywhere

    // The closer bumps the close: the next snapshot shows the earlier version too.
    const bumped = closeRecordFor(paid, 3);
    const again = dashboardSnapshot({ ...input, tipHeight: 127, spilman: [{ ...closing, close: { ...bumped, broadcastHeight: 127 } }] });
    expect(again.closes[0]).toMatchObject({ txid: bumped.txid, bumps: 1, waitingBlocks: 0, versions: [{ txid: record.txid, feeRateSatPerVb: 2 }, { txid: bumped.txid, feeRateSatPerVb: 3 }] });
  });

  it('sends at most MAX_ROWS channels, and says how many it left out', () => {
    const many = Array.from({ length: MAX_ROWS + 5 }, (_, i) => openState('spilman-v1', 10_000n + BigInt(i), 0n, 300));
    const s = dashboardSnapshot({ network: 'regtest', tipHeight: null, spilman: many, duplex: [], activity: new PaymentActivity(), closes: new CloseVersions() });
    expect(s.channels).toHaveLength(MAX_ROWS);
    expect(s.channelsNotShown).toBe(5);
    expect(s.totals.channels).toBe(MAX_ROWS + 5);
  });
});

describe('ChannelEntry.peek (what PayeeService.peekChannels reads)', () => {
  it('reads a packed idle channel without keeping it unpacked', () => {
    const state = { ...openState('spilman-v1', 100_000n, 1_050n, 300), tempId: 'ab'.repeat(16) }; // a tempId packing takes
    const entry = new ChannelEntry(state.tempId, state, null);
    expect(entry.pack()).toBe(true);
    const a = entry.peek();
    const b = entry.peek();
    expect(a).toEqual(state);
    expect(a).not.toBe(b); // a fresh copy each time: nothing unpacked was kept
    expect(entry.state).toBe(entry.state); // reading through `state` unpacks and keeps it
  });
});

// ---------------------------------------------------------------- routes

describe('dashboard routes', () => {
  const TOKEN = 'f'.repeat(48);
  let server: http.Server;
  let base: string;

  beforeAll(async () => {
    const snapshot = () => dashboardSnapshot({ network: 'regtest', tipHeight: 1, spilman: [], duplex: [], activity: new PaymentActivity(), closes: new CloseVersions() });
    const routes = dashboardRoutes(snapshot, bearerAuthorizer(TOKEN));
    server = http.createServer((req, res) => {
      if (!routes(req, res)) sendError(res, 'NOT_FOUND');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('serves the page with a strict CSP, no inline script or style, nothing external and no secret', async () => {
    const res = await fetch(`${base}/dashboard`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    expect(DASHBOARD_CSP).not.toMatch(/unsafe|https?:|\*/);
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    const html = await res.text();
    expect(html).toContain('name="viewport"');
    expect(html).not.toContain(TOKEN);
    for (const [tag] of html.matchAll(/<script[^>]*>/g)) expect(tag).toMatch(/src="dashboard\/dashboard\.js"/);
    expect(html).not.toMatch(/<script[^>]*>[^<]+<\/script>/); // nothing inline
    expect(html).not.toMatch(/\sstyle=|\son[a-z]+=/);
    expect(html).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);
    for (const [file, type] of [['dashboard.js', /^text\/javascript/], ['dashboard.css', /^text\/css/]] as const) {
      const asset = await fetch(`${base}/dashboard/${file}`);
      expect(asset.status).toBe(200);
      expect(asset.headers.get('content-type')).toMatch(type);
      expect(asset.headers.get('x-content-type-options')).toBe('nosniff');
    }
  });

  it('answers the JSON only with the admin token', async () => {
    expect((await fetch(`${base}${DASHBOARD_API_PATH}`)).status).toBe(401);
    const wrong = await fetch(`${base}${DASHBOARD_API_PATH}`, { headers: { authorization: `Bearer ${'e'.repeat(48)}` } });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ code: 'UNAUTHORIZED' });
    const ok = await fetch(`${base}${DASHBOARD_API_PATH}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ network: 'regtest', tipHeight: 1, channels: [], closes: [] });
    const post = await fetch(`${base}${DASHBOARD_API_PATH}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(post.status).toBe(405);
    expect((await fetch(`${base}/dashboard/other.js`)).status).toBe(404);
  });

  it('behind `paychan proxy` (page: false) serves the API only: the page would share the upstream\'s origin', async () => {
    const snapshot = () => dashboardSnapshot({ network: 'regtest', tipHeight: 1, spilman: [], duplex: [], activity: new PaymentActivity(), closes: new CloseVersions() });
    const apiOnly = dashboardRoutes(snapshot, bearerAuthorizer(TOKEN), { page: false });
    const upstream: string[] = [];
    const proxied = http.createServer((req, res) => {
      if (apiOnly(req, res)) return;
      upstream.push(req.url ?? ''); // what the proxy would forward to its upstream
      res.end('upstream');
    });
    await new Promise<void>((r) => proxied.listen(0, '127.0.0.1', r));
    const at = `http://127.0.0.1:${(proxied.address() as AddressInfo).port}`;
    try {
      expect(await (await fetch(`${at}/dashboard`)).text()).toBe('upstream');
      expect(await (await fetch(`${at}/dashboard/dashboard.js`)).text()).toBe('upstream');
      expect(upstream).toEqual(['/dashboard', '/dashboard/dashboard.js']);
      expect((await fetch(`${at}${DASHBOARD_API_PATH}`)).status).toBe(401);
      expect((await fetch(`${at}${DASHBOARD_API_PATH}`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    } finally {
      await new Promise<void>((r) => proxied.close(() => r()));
    }
  });
});
