/**
 * Fuzzes the payee over its real socket: `paychan payee serve` runs in its own process on a
 * private btcd; real channels are set up on it in every state (./fixtures.ts); then several
 * WebSocket connections send it `messages` hostile frames (./generators.ts) while an honest payer
 * keeps paying on its channel. Then the per-peer limits are checked (./limits.ts), and a few
 * probes look for weaknesses the fuzz frames cannot show by themselves.
 *
 * What must hold (the report's `ok`):
 * - the payee process never exits on its own (`crashes`);
 * - every frame is answered (`unanswered`): by an `error` with a known code, by the close code
 *   the protocol specifies for oversized (1009) or non-UTF-8 (1007) frames, or by the one
 *   legitimate answer an honest payer would get for the same message (./oracle.ts);
 *   where the generator or the codec knows the exact code, it is that code (`wrongCodes`);
 * - every reply passes the protocol's own schema, so an error's code is a known one
 *   (`invalidReplies`); none is INTERNAL_ERROR (`internalErrorReplies`), and no frame makes the
 *   decoder throw anything but a ProtocolError (`decoderThrew`);
 * - no frame gets an answer that accepts it when it must be refused (`unexpectedAccepts`);
 * - every fixture channel's state, in memory (HTTP) and on disk (SQLite), is the same after the
 *   run as before, except the honest channel's paid total, which must equal what the honest payer
 *   had acknowledged (`stateChanges`); no stored row appears, not even for an accepted hello
 *   (`orphanRows`: a proposal holds nothing, docs/design.md "Openings without state");
 * - every payment of the honest payer made during the run is acknowledged (`honestFailures`).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isProtocolErrorCode } from '../../src/protocol/errors.js';
import { authMessage } from '../../src/protocol/auth.js';
import { decodeMessage, encodeMessage } from '../../src/protocol/messages.js';
import { DEFAULT_SERVER_LIMITS } from '../../src/transport/server-limits.js';
import { decodeState, encodeState } from '../../src/store/codec.js';
import { startFundedEnv, type RegtestEnv } from '../helpers/regtest-env.js';
import { waitUntil } from '../helpers/local-pair.js';
import { setUpFixtures, type Fixtures, type HonestChannel } from './fixtures.js';
import { FuzzSocket, openWebSocket, type Outcome } from './fuzz-socket.js';
import { FRAME_KINDS, FrameGenerator, type Frame, type FrameKind } from './generators.js';
import { checkConnectionLimit, checkMessageRate, checkOpenAttempts, round, type LimitsReport } from './limits.js';
import { expectationOf, type Expectation } from './oracle.js';
import { PayeeProcess, type ChannelSummary, type StoredRow } from './payee-process.js';
import { Prng } from './prng.js';
import type { FuzzTargets } from './targets.js';
import type { WebSocket } from 'ws';

export interface FuzzOptions {
  /** Hostile frames to send, shared evenly by the connections. */
  readonly messages: number;
  readonly seed: number;
  /** Hostile connections side by side; default 8 (the payee allows 16 per address). */
  readonly connections?: number;
  /** Check the per-peer limits after the run; default true. */
  readonly limits?: boolean;
  /** Frames of the rate-limit floods (binary, then text); default 120,000 each. */
  readonly rateFrames?: number;
  readonly textFloodFrames?: number;
  /** Hellos of the open-attempt flood from one address; default 40. */
  readonly helloFlood?: number;
  readonly log?: (line: string) => void;
}

export interface KindCounts {
  sent: number;
  errors: number;
  nonError: number;
  closes: number;
  unanswered: number;
}

export interface Finding {
  readonly id: string;
  readonly severity: 'high' | 'medium' | 'low';
  readonly where: string;
  readonly evidence: string;
}

export interface FuzzReport {
  readonly messages: number;
  readonly crashes: number;
  readonly errorReplies: number;
  readonly unanswered: number;
  readonly honestPayments: number;
  readonly honestFailures: number;
  readonly stateChanges: number;
  readonly durationSec: number;
  readonly ok: boolean;
  readonly seed: number;
  readonly connections: number;
  readonly messagesPerSec: number;
  readonly reconnects: number;
  /** Loopback addresses the hostile connections used (each a peer to the payee). */
  readonly peers: number;
  readonly skipped: number;
  readonly closes: Record<string, number>;
  readonly nonErrorReplies: Record<string, number>;
  readonly silent: number;
  readonly wrongCodes: number;
  readonly unexpectedAccepts: number;
  readonly unexpectedCloses: number;
  readonly invalidReplies: number;
  readonly internalErrorReplies: number;
  readonly decoderThrew: number;
  readonly troubleLogLines: number;
  /** What the payee logged during the run, by line shape. */
  readonly payeeLog: Record<string, number>;
  readonly helloAccepted: number;
  readonly orphanRows: number;
  readonly keyIndicesUsed: number;
  readonly honestPaidSat: string;
  /** The honest payer's slowest round of payments, and its payments, per phase (fuzz, and each limit check). */
  readonly honestMaxLatencyMs: Record<string, number>;
  readonly honestPaymentsByPhase: Record<string, number>;
  /** The payee process's resident memory (MiB) before and after the run. */
  readonly payeeRssMiB: { readonly before: number; readonly after: number };
  readonly serverRejected: number;
  readonly byKind: Record<FrameKind, KindCounts>;
  readonly byCode: Record<string, number>;
  readonly stateChecks: { label: string; state: string; paidSat: string; ok: boolean; detail?: string }[];
  readonly limits: LimitsReport | null;
  readonly findings: Finding[];
  readonly samples: Record<string, string[]>;
}

const REPLY_TIMEOUT_MS = 10_000;
/** How long to wait for an answer that may rightly not come (then the socket is renewed, so a late answer cannot be taken for the next frame's). */
const SILENT_OK_TIMEOUT_MS = 300;

/** Pays 1 sat at a time, a few in flight, until stopped; counts what was acknowledged. */
class HonestStream {
  payments = 0;
  failures = 0;
  readonly errors: string[] = [];
  /** The slowest round of payments (ms) in each phase of the run. */
  readonly maxLatencyMs: Record<string, number> = {};
  /** Payments acknowledged in each phase. */
  readonly paymentsByPhase: Record<string, number> = {};
  phase = 'fuzz';
  private running = true;
  private readonly loop: Promise<void>;

  constructor(
    private readonly payer: HonestChannel,
    private readonly depth = 4,
    private readonly pauseMs = 8,
  ) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      const s = this.payer.client.state;
      if (s?.type === 'Open' && s.signedTotalSat + BigInt(this.depth) > s.proposal.maxTotalSat - 1_000n) {
        this.errors.push('the honest channel is nearly spent: stopped paying');
        return;
      }
      const started = performance.now();
      const phase = this.phase;
      const results = await Promise.allSettled(Array.from({ length: this.depth }, () => this.payer.client.pay(1n)));
      this.maxLatencyMs[phase] = Math.round(Math.max(this.maxLatencyMs[phase] ?? 0, performance.now() - started));
      for (const r of results) {
        if (r.status === 'fulfilled') {
          this.payments++;
          this.paymentsByPhase[phase] = (this.paymentsByPhase[phase] ?? 0) + 1;
        } else {
          this.failures++;
          if (this.errors.length < 5) this.errors.push(String(r.reason));
        }
      }
      if (this.failures > 100) return; // something is badly wrong; the report says so
      await new Promise((r) => setTimeout(r, this.pauseMs));
    }
  }

  /** Stops and waits for the payments in flight (at most `timeoutMs`). @returns false if stuck. */
  async stop(timeoutMs = 30_000): Promise<boolean> {
    this.running = false;
    let timer: NodeJS.Timeout | undefined;
    const stuck = await Promise.race([this.loop.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs)))]);
    clearTimeout(timer);
    return !stuck;
  }
}

interface Snapshot {
  readonly rows: Map<string, StoredRow>;
  readonly summaries: Map<string, ChannelSummary | null>;
  readonly keyCounter: number;
}

async function snapshot(payee: PayeeProcess, t: FuzzTargets): Promise<Snapshot> {
  const { rows, keyCounter } = payee.readStore();
  const summaries = new Map<string, ChannelSummary | null>();
  for (const f of t.funded) summaries.set(f.channel.id, await payee.summary(f.channel.id));
  return { rows, summaries, keyCounter };
}

/** The paid total a stored row stands for: the state's, or the separately stored newest payment's if higher. */
function storedPaid(row: StoredRow): bigint | undefined {
  const fromState = decodeState<{ paidSat?: bigint }>(row.state).paidSat;
  const fromPayments = row.payment ? BigInt(row.payment.totalSat) : undefined;
  if (fromState === undefined) return fromPayments;
  return fromPayments !== undefined && fromPayments > fromState ? fromPayments : fromState;
}

/** A stored state without the fields the honest payer's payments change. */
function withoutPayment(stateJson: string): string {
  const s = decodeState<Record<string, unknown>>(stateJson);
  const { paidSat: _p, signature: _s, ...rest } = s;
  return encodeState(rest);
}

function compare(before: Snapshot, after: Snapshot, t: FuzzTargets, honestAcked: bigint): FuzzReport['stateChecks'] {
  const checks: FuzzReport['stateChecks'] = [];
  // A proposal holds nothing at the payee, before the run or after it (opening cookies).
  for (const p of t.pending) {
    const held = before.rows.has(p.tempId) || after.rows.has(p.tempId);
    checks.push({ label: p.label, state: held ? 'stored' : 'none', paidSat: '-', ok: !held, ...(held ? { detail: 'a row for an unfunded proposal' } : {}) });
  }
  const labelled = t.funded.map((f) => ({ label: f.label, tempId: f.tempId, id: f.channel.id as string | null }));
  for (const { label, tempId, id } of labelled) {
    const b = before.rows.get(tempId);
    const a = after.rows.get(tempId);
    const problems: string[] = [];
    if (!b || !a) problems.push(`stored row missing (${b ? 'after' : 'before'})`);
    const honest = tempId === t.honest.tempId;
    if (a && b) {
      if (honest) {
        if (withoutPayment(a.state) !== withoutPayment(b.state)) problems.push('stored state changed beyond the paid total');
        const paid = storedPaid(a);
        if (paid !== honestAcked) problems.push(`stored paidSat ${String(paid)} ≠ acknowledged ${honestAcked}`);
      } else {
        if (a.state !== b.state) problems.push(`stored state changed: ${b.stateType} → ${a.stateType}`);
        if (JSON.stringify(a.payment) !== JSON.stringify(b.payment)) problems.push(`stored payment changed: ${JSON.stringify(b.payment)} → ${JSON.stringify(a.payment)}`);
      }
    }
    let paidSat = a ? String(storedPaid(a) ?? '-') : '-';
    if (id) {
      const sb = before.summaries.get(id);
      const sa = after.summaries.get(id);
      if (!sb || !sa) problems.push('GET /v1/channels/:id answered 404');
      else {
        if (sa.state !== sb.state) problems.push(`state ${sb.state} → ${sa.state}`);
        if (honest ? sa.paidSat !== Number(honestAcked) : sa.paidSat !== sb.paidSat) problems.push(`paidSat ${sb.paidSat} → ${sa.paidSat}`);
        paidSat = String(sa.paidSat);
      }
    }
    checks.push({ label, state: a?.stateType ?? '?', paidSat, ok: problems.length === 0, ...(problems.length ? { detail: problems.join('; ') } : {}) });
  }
  return checks;
}

const preview = (data: string | Buffer, n = 160) => {
  const s = typeof data === 'string' ? data : `<${data.length} bytes> ${data.toString('latin1')}`;
  return s.length > n ? `${s.slice(0, n)}…(${s.length})` : s;
};

export async function fuzzPayee(options: FuzzOptions): Promise<FuzzReport> {
  const log = options.log ?? (() => undefined);
  const connections = options.connections ?? 8;
  const started = performance.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-fuzz-'));
  let env: RegtestEnv | undefined;
  let payee: PayeeProcess | undefined;
  let fixtures: Fixtures | undefined;
  try {
    env = await startFundedEnv();
    payee = await PayeeProcess.start({ rpcUrl: env.node.rpcUrl, rpcUser: env.node.rpcUser, rpcPass: env.node.rpcPass, dir, log: (l) => log(l) });
    log(`payee process ${payee.pid} listening on ${payee.wsUrl}`);
    fixtures = await setUpFixtures(env, payee, log);
    const t = fixtures.targets;
    const before = await snapshot(payee, t);
    const rssBefore = payee.rssMiB();
    log(`fixtures ready: ${t.funded.map((f) => `${f.label}=${f.payeeState}`).join(' ')} ${t.pending.map((p) => `${p.label}=proposal`).join(' ')}`);

    // ------------------------------------------------------------------ the run
    const byKind = Object.fromEntries(FRAME_KINDS.map((k) => [k, { sent: 0, errors: 0, nonError: 0, closes: 0, unanswered: 0 }])) as Record<FrameKind, KindCounts>;
    const byCode: Record<string, number> = {};
    const closes: Record<string, number> = {};
    const nonErrorReplies: Record<string, number> = {};
    const samples: Record<string, string[]> = {};
    const sample = (what: string, line: string) => {
      const list = (samples[what] ??= []);
      if (list.length < 5) list.push(line);
    };
    const c = { sent: 0, errorReplies: 0, unanswered: 0, silent: 0, skipped: 0, wrongCodes: 0, unexpectedAccepts: 0, unexpectedCloses: 0, invalidReplies: 0, internalErrorReplies: 0, decoderThrew: 0, helloAccepted: 0, errorFramesAnsweredWithError: 0 };

    const account = (frame: Frame, exp: Exclude<Expectation, { type: 'skip' }>, o: Outcome): 'ok' | 'resync' | 'accepted' => {
      const k = byKind[frame.kind];
      if (o.kind === 'closed') {
        k.closes++;
        closes[o.code] = (closes[o.code] ?? 0) + 1;
        if (exp.type !== 'close' || exp.code !== o.code) {
          c.unexpectedCloses++;
          sample('unexpectedCloses', `${frame.kind} ${frame.label}: closed ${o.code}, expected ${JSON.stringify(exp)}: ${preview(frame.data)}`);
        }
        return 'ok';
      }
      if (o.kind === 'timeout') {
        if (exp.type === 'reply' && exp.silentOk) {
          c.silent++;
          return 'resync';
        }
        c.unanswered++;
        k.unanswered++;
        sample('unanswered', `${frame.kind} ${frame.label}: ${preview(frame.data)}`);
        return 'resync';
      }
      // A reply.
      if (exp.type === 'close') {
        c.unexpectedCloses++;
        sample('unexpectedCloses', `${frame.kind} ${frame.label}: expected close ${exp.code}, got ${preview(o.text)}`);
        return 'resync';
      }
      let type: string;
      let code: string | undefined;
      try {
        const m = decodeMessage(o.text);
        type = m.type;
        code = m.type === 'error' ? m.code : undefined;
      } catch (err) {
        // The payee's own reply breaks the protocol schema (e.g. an error message over 1000 chars).
        c.invalidReplies++;
        sample('invalidReplies', `${frame.kind} ${frame.label}: reply ${preview(o.text, 200)} refused by the codec: ${String(err).slice(0, 120)}`);
        const raw = JSON.parse(o.text) as { type?: string; code?: string };
        type = String(raw.type);
        code = raw.code;
      }
      if (type === 'error') {
        c.errorReplies++;
        k.errors++;
        byCode[code ?? '?'] = (byCode[code ?? '?'] ?? 0) + 1;
        if (!isProtocolErrorCode(code)) sample('unknownCodes', `${frame.kind}: ${preview(o.text)}`);
        if (code === 'INTERNAL_ERROR') {
          c.internalErrorReplies++;
          sample('internalErrorReplies', `${frame.kind} ${frame.label}: ${preview(frame.data)}`);
        }
        if (exp.decoderThrew) {
          c.decoderThrew++;
          sample('decoderThrew', `${exp.decoderThrew} ← ${preview(frame.data)} → ${code}`);
        }
        if (exp.decodedType === 'error') c.errorFramesAnsweredWithError++;
        // An opening message past an unproven connection's budget is refused unprocessed (the
        // budget of opening messages, issue 13): right whatever else it would have been.
        const openingOverBudget = code === 'RATE_LIMITED' && (exp.decodedType === 'hello' || exp.decodedType === 'refund-request' || exp.decodedType === 'funding');
        if (exp.code && code !== exp.code && !openingOverBudget) {
          c.wrongCodes++;
          sample('wrongCodes', `${frame.kind} ${frame.label}: expected ${exp.code}, got ${code} (${preview(o.text, 200)}) for ${preview(frame.data, 300)}`);
        }
        return 'ok';
      }
      k.nonError++;
      nonErrorReplies[type] = (nonErrorReplies[type] ?? 0) + 1;
      if (!exp.allow.includes(type as never)) {
        c.unexpectedAccepts++;
        sample('unexpectedAccepts', `${frame.kind} ${frame.label}: answered ${preview(o.text)} to ${preview(frame.data, 300)}`);
        return 'resync';
      }
      if (type === 'accept' && exp.helloTempId) {
        c.helloAccepted++;
        t.ownTempIds.add(exp.helloTempId);
        return 'accepted';
      }
      return 'ok';
    };

    const honest = new HonestStream(fixtures.honest);
    const root = new Prng(options.seed);
    const sockets = Array.from({ length: connections }, () => new FuzzSocket(payee!.wsUrl));
    let lastLog = performance.now();
    const fuzzStarted = performance.now();
    let peers = 0;
    const worker = async (socket: FuzzSocket, prng: Prng, quota: number, index: number) => {
      const gen = new FrameGenerator(prng, t, env!.secp);
      // Each connection is its own peer (a loopback address of its own). Its hellos are all
      // accepted however many: the payee holds nothing for a proposal (opening cookies).
      await socket.moveTo(`127.${1 + index}.1.1`);
      peers++;
      for (let mine = 0; mine < quota; ) {
        const frame = gen.next();
        const exp = expectationOf(frame, t);
        if (exp.type === 'skip') {
          c.skipped++;
          continue;
        }
        mine++;
        c.sent++;
        byKind[frame.kind].sent++;
        const timeout = exp.type === 'reply' && exp.silentOk ? SILENT_OK_TIMEOUT_MS : REPLY_TIMEOUT_MS;
        let o: Outcome;
        try {
          o = await socket.exchange(frame.data, frame.binary, timeout);
        } catch (err) {
          // Could not even connect: the payee is down (crash) or refusing.
          await payee!.settled();
          sample('connectFailures', String(err));
          c.unanswered++;
          continue;
        }
        const result = account(frame, exp, o);
        if (result === 'resync') await socket.reset();
        if (!payee!.alive()) await payee!.settled();
        const now = performance.now();
        if (now - lastLog > 5_000) {
          lastLog = now;
          const rate = Math.round(c.sent / ((now - fuzzStarted) / 1000));
          log(`fuzz: ${c.sent}/${options.messages} frames (${rate}/s), ${c.errorReplies} errors, ${c.unanswered} unanswered, honest payments ${honest.payments}, crashes ${payee!.crashes.length}`);
        }
      }
    };
    // Each connection sends a fixed share, from its own generator: the frames' kinds and mutations
    // follow from the seed (the values they borrow from live traffic vary from run to run).
    await Promise.all(sockets.map((s, i) => worker(s, root.fork(), Math.floor(options.messages / connections) + (i < options.messages % connections ? 1 : 0), i)));
    const fuzzSeconds = (performance.now() - fuzzStarted) / 1000;
    const reconnects = sockets.reduce((s, x) => s + x.connects - 1, 0);
    for (const s of sockets) for (const u of s.unsolicited) sample('unsolicited', preview(u));
    await Promise.all(sockets.map((s) => s.close()));
    log(`fuzz done: ${c.sent} frames in ${fuzzSeconds.toFixed(1)} s; honest payments so far ${honest.payments}`);

    // ------------------------------------------------------------------ limits, honest payer still paying
    let limits: LimitsReport | null = null;
    if (options.limits ?? true) {
      honest.phase = 'connectionLimit';
      const connectionsPerAddress = await checkConnectionLimit(payee, fixtures.payers.filter((p) => p.link.connected).length);
      log(`limits: connections per address ${JSON.stringify(connectionsPerAddress)}`);
      honest.phase = 'rateFlood';
      // The floods run on the idle payer's authenticated connection (see checkMessageRate).
      const idleTarget = t.open.find((f) => f !== t.honest)!;
      const idleKey = fixtures.payers.find((h) => h.client.id === idleTarget.tempId)!.channelKey;
      const auth = (challenge: Uint8Array) => encodeMessage(authMessage(env!.secp, challenge, idleTarget.tempId, idleKey.privateKey));
      const messageRate = await checkMessageRate(payee, options.rateFrames ?? 120_000, 'binary', auth);
      log(`limits: message rate (binary flood) ${JSON.stringify(messageRate)}`);
      honest.phase = 'textFlood';
      const textFlood = await checkMessageRate(payee, options.textFloodFrames ?? 120_000, 'text', auth);
      log(`limits: message rate (text flood) ${JSON.stringify(textFlood)}`);
      honest.phase = 'helloFlood';
      const openAttempts = await checkOpenAttempts(payee, t, options.helloFlood ?? 40);
      log(`limits: open attempts ${JSON.stringify(openAttempts)}`);
      limits = { connectionsPerAddress, messageRate, textFlood, openAttempts };
    }

    const stopped = await honest.stop();
    if (!stopped) {
      honest.failures++;
      honest.errors.push('honest payments still unacknowledged 30 s after the run');
    }
    await fixtures.honest.client.drain();
    const acked = fixtures.honest.client.state?.type === 'Open' ? fixtures.honest.client.state.ackedTotalSat : -1n;
    // The payee stores before it acknowledges, so its state is final once the honest payer's acks are in.
    await waitUntil(async () => (await payee!.summary(t.honest.channel.id))?.paidSat === Number(acked), 'the honest total to show', 10_000).catch(() => undefined);
    const after = await snapshot(payee, t);
    const stateChecks = compare(before, after, t, acked);
    const stateChanges = stateChecks.filter((s) => !s.ok).length;
    const orphanRows = after.rows.size - before.rows.size;
    const serverRejected = (await payee.metricValues('paychan_messages_rejected_total')).reduce((s, v) => s + v, 0);
    const rssAfter = payee.rssMiB();

    // ------------------------------------------------------------------ probes (they change states: last)
    const findings = await probe(env, payee, fixtures, { ...c, sent: c.sent }, samples, limits, honest);

    const crashes = payee.crashes.length;
    const troubleLogLines = payee.troubleLines().length;
    for (const line of payee.troubleLines().slice(0, 3)) sample('troubleLogLines', line.slice(0, 300));
    for (const cr of payee.crashes) sample('crashes', `code ${cr.code} signal ${cr.signal}: ${cr.tail.slice(-1000)}`);
    const ok =
      crashes === 0 &&
      stateChanges === 0 &&
      c.unanswered === 0 &&
      honest.failures === 0 &&
      c.unexpectedAccepts === 0 &&
      c.unexpectedCloses === 0 &&
      c.wrongCodes === 0 &&
      c.invalidReplies === 0 &&
      c.internalErrorReplies === 0 &&
      c.decoderThrew === 0 &&
      orphanRows === 0 &&
      // The probes' high-severity findings are regressions of fixed attacks (issue 13).
      !findings.some((f) => f.severity === 'high') &&
      (limits === null || (limits.connectionsPerAddress.ok && limits.messageRate.ok && limits.textFlood.ok && limits.openAttempts.ok));
    for (const e of honest.errors) sample('honestFailures', e);
    return {
      messages: c.sent,
      crashes,
      errorReplies: c.errorReplies,
      unanswered: c.unanswered,
      honestPayments: honest.payments,
      honestFailures: honest.failures,
      stateChanges,
      durationSec: round((performance.now() - started) / 1000),
      ok,
      seed: options.seed,
      connections,
      messagesPerSec: Math.round(c.sent / fuzzSeconds),
      reconnects,
      peers,
      skipped: c.skipped,
      closes,
      nonErrorReplies,
      silent: c.silent,
      wrongCodes: c.wrongCodes,
      unexpectedAccepts: c.unexpectedAccepts,
      unexpectedCloses: c.unexpectedCloses,
      invalidReplies: c.invalidReplies,
      internalErrorReplies: c.internalErrorReplies,
      decoderThrew: c.decoderThrew,
      troubleLogLines,
      payeeLog: payee.logShapes(),
      helloAccepted: c.helloAccepted,
      orphanRows,
      keyIndicesUsed: after.keyCounter - before.keyCounter,
      honestPaidSat: acked.toString(),
      honestMaxLatencyMs: honest.maxLatencyMs,
      honestPaymentsByPhase: honest.paymentsByPhase,
      payeeRssMiB: { before: rssBefore, after: rssAfter },
      serverRejected,
      byKind,
      byCode,
      stateChecks,
      limits,
      findings,
      samples,
    };
  } finally {
    await fixtures?.close().catch(() => undefined);
    await payee?.stop().catch(() => undefined);
    await env?.stop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Probes for weaknesses found while writing the fuzzer; each becomes a finding only if the
 * payee behaves that way now.
 */
async function probe(
  env: RegtestEnv,
  payee: PayeeProcess,
  fixtures: Fixtures,
  c: { sent: number; internalErrorReplies: number; decoderThrew: number; invalidReplies: number; errorFramesAnsweredWithError: number },
  samples: Record<string, string[]>,
  limits: LimitsReport | null,
  honest: HonestStream,
): Promise<Finding[]> {
  const findings: Finding[] = [];
  const t = fixtures.targets;
  if (c.decoderThrew > 0) {
    findings.push({
      id: 'decoder-throws-non-protocol-errors',
      severity: 'medium',
      where: 'src/protocol/messages.ts decodeMessage (String(raw.v))',
      evidence: `${c.decoderThrew} frames made decodeMessage throw a TypeError/RangeError instead of a ProtocolError (answered INTERNAL_ERROR and logged as an internal error with a stack trace), e.g. ${samples.decoderThrew?.[0] ?? ''}`,
    });
  }
  if (c.invalidReplies > 0) {
    findings.push({
      id: 'error-replies-break-the-schema',
      severity: 'low',
      where: 'src/protocol/messages.ts decodeMessage / src/payee/payee-service.ts reply',
      evidence: `${c.invalidReplies} error replies fail the protocol's own ErrorSchema (message over 1000 characters: the peer's input is echoed back unbounded), e.g. ${samples.invalidReplies?.[0] ?? ''}`,
    });
  }
  if (c.errorFramesAnsweredWithError > 0) {
    findings.push({
      id: 'payer-errors-never-reach-the-channel',
      severity: 'low',
      where: 'src/payee/payee-service.ts handle (ref lookup)',
      evidence: `${c.errorFramesAnsweredWithError} 'error' messages (with a ref naming a real channel or not) were answered with an error instead of being delivered to the channel: handle() looks for tempId/channelId, an error carries 'ref'`,
    });
  }
  // Hellos are answered without limit by design (a proposal holds nothing: opening cookies); a
  // finding only if answering them stored anything or spent a key index.
  if (limits && (limits.openAttempts.rowsAdded > 0 || limits.openAttempts.keyIndicesUsed > 0)) {
    findings.push({
      id: 'unfunded-proposals-hold-state',
      severity: 'high',
      where: 'src/payee/payee-service.ts onHello',
      evidence: `one address proposed ${limits.openAttempts.hellos} channels: ${limits.openAttempts.rowsAdded} stored rows and ${limits.openAttempts.keyIndicesUsed} key indices used`,
    });
  }

  const flood = limits?.textFlood;
  // Bigger than the burst, yet never limited: the payee could not answer as fast as its own limit.
  if (flood && flood.rateLimited === 0 && flood.frames > flood.burst) {
    findings.push({
      id: 'one-connection-saturates-the-payee-below-its-rate-limit',
      severity: 'medium',
      where: 'src/transport/server-limits.ts messagesPerSecond/messageBurst (per connection only)',
      evidence: `${flood.frames} one-byte text frames on one connection: the payee decoded and refused them all in ${flood.seconds} s (${flood.framesPerSec}/s), never emptying its token bucket (burst ${flood.burst} + ${flood.limitPerSec}/s), so none was RATE_LIMITED; meanwhile the honest payer's slowest round of 4 payments took ${honest.maxLatencyMs.textFlood ?? '?'} ms (vs ${honest.maxLatencyMs.fuzz ?? '?'} ms during the fuzz run). Binary frames, refused before decoding, did reach the limit (${limits?.messageRate.rateLimited ?? '?'} RATE_LIMITED at ${limits?.messageRate.framesPerSec ?? '?'}/s). With 16 connections per address and no per-address rate, one peer can take the whole payee`,
    });
  }

  // A stranger names a channel that waits for its funding to confirm; then it confirms.
  const stranger = new FuzzSocket(payee.wsUrl, { localAddress: '127.0.0.3' });
  const confirming = t.funded.find((f) => f.payeeState === 'AwaitingConfirmation')!;
  const status = await stranger.exchange(JSON.stringify({ v: 1, type: 'status-request', channelId: confirming.channel.id }), false, 5_000).catch(() => null);
  await stranger.close();
  await env.mine(1);
  const openedForPayer = await Promise.race([fixtures.confirming.opened.then(() => true, () => false), new Promise<boolean>((r) => setTimeout(() => r(false), 5_000))]);
  const payeeSays = (await payee.summary(confirming.channel.id))?.state;
  if (!openedForPayer && payeeSays === 'Open') {
    findings.push({
      id: 'any-message-hijacks-the-channel-link',
      severity: 'high',
      where: 'src/payee/payee-service.ts handle (entry.link = link before the message is stepped)',
      evidence: `a stranger's status-request for ${confirming.channel.id} (answered ${status?.kind === 'reply' ? preview(status.text, 80) : status?.kind}) made its connection the channel's link; when the funding confirmed the payee opened the channel (GET says ${payeeSays}) but sent channel-open to the stranger's closed socket: the real payer's open() never resolved`,
    });
  }

  // Issue 13: a stranger replays the newest payment of a channel whose payer is offline (seen in
  // a Paychan-Payment header or a plain ws:// stream), then asks for a close on that connection.
  const idle = t.open.find((f) => f !== t.honest)!;
  const newest = t.captures
    .payments()
    .filter((p) => p.channelId === idle.channel.id)
    .reduce<{ channelId: string; totalSat: string; signature: string } | null>((a, p) => (a === null || BigInt(p.totalSat) > BigInt(a.totalSat) ? p : a), null);
  if (newest) {
    const replayer = new FuzzSocket(payee.wsUrl, { localAddress: '127.0.0.6' });
    const ack = await replayer.exchange(JSON.stringify({ v: 1, type: 'payment', ...newest }), false, 5_000).catch(() => null);
    const refusal = await replayer.exchange(JSON.stringify({ v: 1, type: 'close-request', channelId: idle.channel.id }), false, 2_000).catch(() => null);
    await replayer.close();
    await waitUntil(async () => (await payee.summary(idle.channel.id))?.state !== 'Open', 'a close', 3_000).catch(() => undefined);
    const state = (await payee.summary(idle.channel.id))?.state;
    if (state !== 'Open') {
      findings.push({
        id: 'a-replayed-payment-closes-the-channel',
        severity: 'high',
        where: 'src/payee/payee-service.ts stepInput (link binding)',
        evidence: `the newest payment of ${idle.channel.id} replayed on a stranger's connection (answer: ${ack?.kind === 'reply' ? preview(ack.text, 60) : ack?.kind}) then a close-request (answer: ${refusal?.kind === 'reply' ? preview(refusal.text, 60) : refusal?.kind}): the channel is now ${state}`,
      });
    }
  }

  // Issue 13: a peer's error text with a newline must not write a line of its own into the log.
  const marker = `FORGED-${Math.random().toString(36).slice(2)}`;
  // Sent on a connection authenticated as the channel's payer: a stranger's error is not logged at all.
  const forger = new FuzzSocket(payee.wsUrl, { localAddress: '127.0.0.6' });
  await forger.exchange('{}', false, 2_000).catch(() => null); // connects (the challenge first), then a throwaway frame
  const forgerKey = fixtures.payers.find((h) => h.client.id === idle.tempId)?.channelKey;
  if (forger.challenge && forgerKey) await forger.exchange(encodeMessage(authMessage(env.secp, forger.challenge, idle.tempId, forgerKey.privateKey)), false, 300).catch(() => null);
  await forger.exchange(JSON.stringify({ v: 1, type: 'error', code: 'INTERNAL_ERROR', message: `fuzz\n${marker} payee: paid 1 BTC`, action: 'reject', ref: idle.channel.id }), false, 300).catch(() => null);
  await forger.close();
  await waitUntil(() => payee.allOutput().includes(marker), 'the error in the log', 5_000).catch(() => undefined);
  const forged = payee
    .allOutput()
    .split('\n')
    .filter((l) => l.includes(marker) && !l.includes('payer reported'));
  if (forged.length > 0) {
    findings.push({ id: 'peer-text-forges-log-lines', severity: 'high', where: 'src/payee/payee-service.ts peer-error log', evidence: `an error frame's message wrote this line into the payee's log: ${preview(forged[0]!, 120)}` });
  }

  // Issue 13: idle strangers fill every connection slot (64 addresses × 16, answering pings);
  // a payer must still connect, authenticate and be served.
  const { maxConnections, maxConnectionsPerAddress } = DEFAULT_SERVER_LIMITS;
  const idlers: WebSocket[] = [];
  let lockedOut: string | null = null;
  try {
    for (let i = 0; i < maxConnections + 1; i++) {
      const address = `127.0.1.${1 + Math.floor(i / maxConnectionsPerAddress)}`;
      idlers.push(await openWebSocket(payee.wsUrl, { localAddress: address }).catch((err: unknown) => Promise.reject(new Error(`stranger ${i} from ${address}: ${String(err)}`))));
    }
    const payer = fixtures.payers.find((h) => h.client.id === idle.tempId)!;
    const returning = new FuzzSocket(payee.wsUrl, { localAddress: '127.0.2.1' });
    try {
      await returning.exchange('{}', false, 2_000); // connects (the challenge first), then a throwaway frame
      const auth = authMessage(env.secp, returning.challenge!, idle.tempId, payer.channelKey.privateKey);
      const authAnswer = await returning.exchange(encodeMessage(auth), false, 500);
      const status = await returning.exchange(JSON.stringify({ v: 1, type: 'status-request', channelId: idle.channel.id }), false, 5_000);
      if (authAnswer.kind !== 'timeout' || status.kind !== 'reply' || !status.text.includes('"channel-status"')) {
        lockedOut = `auth answered ${authAnswer.kind === 'reply' ? preview(authAnswer.text, 60) : authAnswer.kind}, status answered ${status.kind === 'reply' ? preview(status.text, 60) : status.kind}`;
      }
    } catch (err) {
      lockedOut = String(err);
    } finally {
      await returning.close();
    }
  } catch (err) {
    lockedOut = `opening the idle strangers failed: ${String(err)}`;
  } finally {
    for (const ws of idlers) ws.terminate();
  }
  if (lockedOut) {
    findings.push({
      id: 'idle-strangers-lock-payers-out',
      severity: 'high',
      where: 'src/transport/payee-server.ts upgrade budgets',
      evidence: `with ${maxConnections + 1} idle unauthenticated WebSockets open, the payer of ${idle.channel.id} could not connect and authenticate: ${lockedOut}`,
    });
  }

  // A stranger asks the payee to close someone else's open channel.
  const closer = new FuzzSocket(payee.wsUrl, { localAddress: '127.0.0.3' });
  const reply = await closer.exchange(JSON.stringify({ v: 1, type: 'close-request', channelId: idle.channel.id }), false, 2_000).catch(() => null);
  await closer.close();
  await waitUntil(async () => (await payee.summary(idle.channel.id))?.state !== 'Open', 'a close', 5_000).catch(() => undefined);
  const idleState = (await payee.summary(idle.channel.id))?.state;
  if (idleState !== 'Open') {
    findings.push({
      id: 'anyone-can-close-any-channel',
      severity: 'medium',
      where: 'src/protocol/payee-machine.ts close-request / src/payee/payee-service.ts handle',
      evidence: `a close-request for ${idle.channel.id} from a connection that never spoke for it (127.0.0.3; reply: ${reply?.kind === 'reply' ? preview(reply.text, 80) : (reply?.kind ?? 'none')}) made the payee close the channel (state now ${idleState}); channel ids are funding outpoints, public on chain`,
    });
  }
  // The payee restarts on its store: every channel is still there (and no proposal, there were none to store).
  const rowsBefore = payee.readStore().rows.size;
  await payee.restart();
  const rowsAfter = payee.readStore().rows.size;
  if (rowsAfter !== rowsBefore || !payee.alive()) {
    findings.push({ id: 'restart-lost-channels', severity: 'high', where: 'src/payee/payee-service.ts open', evidence: `${rowsBefore} stored channels before the restart, ${rowsAfter} after` });
  }
  return findings;
}
