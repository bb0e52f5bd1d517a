/**
 * The payee's per-peer limits with their default values, checked over real sockets on the payee
 * process: connections per address (HTTP 429 beyond it, while another address still gets in), the
 * message rate (a flood on one connection gets `error` RATE_LIMITED for what is over the rate,
 * and every frame is answered), and open-channel attempts (a flood of valid hellos from one
 * address: the payee accepts every one and holds nothing for any, no row, no key index, so
 * another address, and the same one, still get in; docs/design.md "Openings without state").
 */
import { randomBytes } from 'node:crypto';
import { WebSocket, type RawData } from 'ws';
import { encodeMessage, msg } from '../../src/protocol/messages.js';
import { DEFAULT_SERVER_LIMITS } from '../../src/transport/server-limits.js';
import { FuzzSocket, openWebSocket, UpgradeRefusedError } from './fuzz-socket.js';
import type { PayeeProcess } from './payee-process.js';
import type { FuzzTargets } from './targets.js';

export interface ConnectionLimitReport {
  /** WebSocket connections already open from 127.0.0.1 (the honest payers'). */
  readonly openBefore: number;
  /** All WebSocket connections open before the check, from any address (/metrics). */
  readonly openTotal: number;
  /** Further connections the payee accepted from 127.0.0.1. */
  readonly accepted: number;
  /** The limit: DEFAULT_SERVER_LIMITS.maxConnectionsPerAddress. */
  readonly limit: number;
  readonly refusedStatus: number | null;
  readonly refusedCode: string | null;
  /** A connection from 127.0.0.2 while 127.0.0.1 was at its limit. */
  readonly otherAddressAccepted: boolean | null;
  readonly ok: boolean;
}

export interface RateLimitReport {
  readonly frames: number;
  readonly rateLimited: number;
  readonly otherErrors: number;
  readonly unanswered: number;
  readonly seconds: number;
  /** How fast the payee answered the flood. */
  readonly framesPerSec: number;
  /** The default per-connection limit and burst. */
  readonly limitPerSec: number;
  readonly burst: number;
  /**
   * True if the flood had more frames than the bucket allows in that time (burst + rate × time),
   * so some had to be RATE_LIMITED. False when the payee could not even process frames as fast
   * as its limit: then the limit is never reached.
   */
  readonly overLimit: boolean;
  /** Every frame answered, RATE_LIMITED whenever the flood was over the limit, and never more let through than the bucket allows. */
  readonly ok: boolean;
}

export interface OpenAttemptsReport {
  /** Valid hellos sent from one fresh address (127.0.0.4). */
  readonly hellos: number;
  readonly accepted: number;
  readonly refused: Record<string, number>;
  /** Unfunded proposals the payee holds per peer: 0 (opening cookies). */
  readonly limit: number;
  /** A hello from another address (127.0.0.5) right after the flood. */
  readonly otherPeerAccepted: boolean;
  readonly rowsAdded: number;
  readonly keyIndicesUsed: number;
  /** True if the payee refused any of the flood for being a flood. */
  readonly limited: boolean;
  /** Every hello accepted (the other peer's too), not one stored row or key index spent. */
  readonly ok: boolean;
}

export interface LimitsReport {
  readonly connectionsPerAddress: ConnectionLimitReport;
  /** A flood of one-byte binary frames (refused before decoding): over the rate, RATE_LIMITED. */
  readonly messageRate: RateLimitReport;
  /** A flood of one-byte text frames (each decoded and refused). */
  readonly textFlood: RateLimitReport;
  readonly openAttempts: OpenAttemptsReport;
}

/** Rounds to hundredths, for the report. */
export const round = (x: number) => Math.round(x * 100) / 100;

/** A valid hello from the fuzzer's hello key and script, with a fresh tempId, encoded. */
export function validHello(targets: FuzzTargets, variant: 'spilman-v1' | 'spilman-v2', capacitySat: bigint): { tempId: string; text: string } {
  const tempId = randomBytes(16).toString('hex');
  const text = encodeMessage(
    msg('hello', {
      tempId,
      network: 'regtest',
      variant,
      payerPubkey: targets.helloPubkey,
      capacitySat,
      expiryHeight: targets.tipHeight + 4_000,
      payerScript: targets.helloScript,
    }),
  );
  return { tempId, text };
}

/** `openBefore`: connections already open from 127.0.0.1. */
export async function checkConnectionLimit(payee: PayeeProcess, openBefore: number): Promise<ConnectionLimitReport> {
  const limit = DEFAULT_SERVER_LIMITS.maxConnectionsPerAddress;
  const openTotal = (await payee.metricValues('paychan_connections'))[0] ?? NaN;
  const sockets: WebSocket[] = [];
  let refusedStatus: number | null = null;
  let refusedCode: string | null = null;
  let otherAddressAccepted: boolean | null = null;
  try {
    while (sockets.length < 4 * limit) {
      try {
        sockets.push(await openWebSocket(payee.wsUrl));
      } catch (err) {
        if (!(err instanceof UpgradeRefusedError)) throw err;
        refusedStatus = err.status;
        try {
          refusedCode = (JSON.parse(err.body) as { code?: string }).code ?? null;
        } catch {
          refusedCode = null;
        }
        break;
      }
    }
    try {
      sockets.push(await openWebSocket(payee.wsUrl, { localAddress: '127.0.0.2' }));
      otherAddressAccepted = true;
    } catch (err) {
      otherAddressAccepted = err instanceof UpgradeRefusedError ? false : null; // null: no 127.0.0.2 here
    }
  } finally {
    await Promise.all(sockets.map((ws) => closeQuietly(ws)));
  }
  const accepted = sockets.length - (otherAddressAccepted ? 1 : 0);
  const ok = accepted + openBefore === limit && refusedStatus === 429 && refusedCode === 'TOO_MANY_CONNECTIONS_FROM_ADDRESS' && otherAddressAccepted !== false;
  return { openBefore, openTotal, accepted, limit, refusedStatus, refusedCode, otherAddressAccepted, ok };
}

function closeQuietly(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    ws.once('close', () => resolve());
    ws.terminate();
  });
}

/**
 * Sends `frames` one-byte frames (binary or text) on one connection as fast as the socket takes
 * them; each must be answered: RATE_LIMITED for those over the rate, MALFORMED_MESSAGE for the rest.
 */
export async function checkMessageRate(payee: PayeeProcess, frames: number, kind: 'binary' | 'text' = 'binary', auth?: (challenge: Uint8Array) => string): Promise<RateLimitReport> {
  // A stranger's connection is cut after the payee's auth deadline (10 s), which a long flood on
  // a slow machine outlasts: with `auth`, the flood runs on a payer's authenticated connection.
  let greeted: (challenge: Uint8Array) => void = () => undefined;
  const challenge = new Promise<Uint8Array>((resolve) => (greeted = resolve));
  const ws = await openWebSocket(payee.wsUrl, {}, (data) => {
    const hex = /^\{"v":1,"type":"challenge","challenge":"([0-9a-f]{64})"\}$/.exec(data.toString())?.[1];
    if (hex) greeted(Uint8Array.from(Buffer.from(hex, 'hex')));
  });
  if (auth) ws.send(auth(await challenge));
  const started = performance.now();
  let rateLimited = 0;
  let otherErrors = 0;
  let answered = 0;
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 60_000);
    ws.on('message', (data: RawData) => {
      const text = data.toString();
      if (text.includes('"type":"challenge"')) return; // the connection's greeting, not an answer
      if (text.includes('"RATE_LIMITED"')) rateLimited++;
      else otherErrors++;
      if (++answered === frames) {
        clearTimeout(timer);
        resolve();
      }
    });
    ws.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  // One-byte binary frames are the cheapest frame for the payee to refuse (no decoding), so that
  // flood goes as fast as the payee can answer; one-byte text frames go through the decoder.
  const frame = kind === 'binary' ? Buffer.from([0]) : 'x';
  for (let i = 0; i < frames; i++) ws.send(frame, { binary: kind === 'binary' });
  await done;
  const seconds = (performance.now() - started) / 1000;
  await closeQuietly(ws);
  const unanswered = frames - answered;
  const { messagesPerSecond: limitPerSec, messageBurst: burst } = DEFAULT_SERVER_LIMITS;
  const allowed = burst + limitPerSec * seconds;
  const overLimit = frames > allowed;
  const ok = unanswered === 0 && (overLimit ? rateLimited > 0 : true) && otherErrors <= allowed * 1.05;
  return { frames, rateLimited, otherErrors, unanswered, seconds: round(seconds), framesPerSec: Math.round(answered / seconds), limitPerSec, burst, overLimit, ok };
}

/** A flood of valid channel proposals from one fresh peer, then one from another peer. */
export async function checkOpenAttempts(payee: PayeeProcess, targets: FuzzTargets, hellos: number): Promise<OpenAttemptsReport> {
  const before = payee.readStore();
  const hello = (i: number) => validHello(targets, i % 2 === 0 ? 'spilman-v1' : 'spilman-v2', 100_000_000n);
  let accepted = 0;
  const refused: Record<string, number> = {};
  const flooder = new FuzzSocket(payee.wsUrl, { localAddress: '127.0.0.4' });
  let otherPeerAccepted = false;
  try {
    for (let i = 0; i < hellos; i++) {
      const { tempId, text } = hello(i);
      const o = await flooder.exchange(text, false, 10_000);
      if (o.kind === 'reply' && o.text.includes('"type":"accept"')) {
        accepted++;
        targets.ownTempIds.add(tempId);
      } else {
        const code = o.kind === 'reply' ? (/"code":"([A-Z_]+)"/.exec(o.text)?.[1] ?? 'non-error') : o.kind;
        refused[code] = (refused[code] ?? 0) + 1;
      }
    }
    const other = new FuzzSocket(payee.wsUrl, { localAddress: '127.0.0.5' });
    const { tempId, text } = hello(1);
    const o = await other.exchange(text, false, 10_000);
    await other.close();
    otherPeerAccepted = o.kind === 'reply' && o.text.includes('"type":"accept"');
    if (otherPeerAccepted) targets.ownTempIds.add(tempId);
  } finally {
    await flooder.close();
  }
  const after = payee.readStore();
  const rowsAdded = after.rows.size - before.rows.size;
  const keyIndicesUsed = after.keyCounter - before.keyCounter;
  return {
    hellos,
    accepted,
    refused,
    limit: 0,
    otherPeerAccepted,
    rowsAdded,
    keyIndicesUsed,
    limited: Object.keys(refused).some((c) => c === 'RATE_LIMITED' || c.startsWith('TOO_MANY')),
    ok: accepted === hellos && otherPeerAccepted && rowsAdded === 0 && keyIndicesUsed === 0,
  };
}
