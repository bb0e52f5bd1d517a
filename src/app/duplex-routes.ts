/**
 * The payee's duplex face on its server: the WebSocket frames of duplex channels go to side B
 * (everything else to the Spilman service), and two admin routes for the operator:
 *
 * - `POST /v1/duplex/pay-back` `{"channelId": "...", "amountSat": 3000}`: B pays A. Answered
 *   once B countersigned the state, or at once with `queued: true` when the payer is away (it
 *   takes the payment at its next connection).
 * - `POST /v1/duplex/force-close` `{"channelId": "..."}`: close alone: the newest state is
 *   published the moment its locktime passes (answers with that height).
 * - `GET /v1/duplex/channels`: every duplex channel as B sees it.
 *
 * Both move or show money, so both need `Authorization: Bearer <token>`, the token being the
 * content of `<data dir>/admin-token` (files.ts: mode 0600, created at first start): whoever
 * can read the payee's files may drive it, nobody else.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DuplexPeer } from '../duplex/duplex-peer.js';
import type { DuplexWatcher } from '../duplex/duplex-watcher.js';
import { ProtocolError } from '../protocol/errors.js';
import type { Message } from '../protocol/messages.js';
import type { PeerLink } from '../transport/link.js';
import { sendError, sendFailure, sendJson } from '../transport/http-replies.js';
import type { HttpRoute } from '../transport/http-routes.js';
import type { PayeeEndpoint } from '../transport/payee-server.js';

/** The messages of duplex channels (docs/duplex.md). */
type DuplexMessage = Extract<Message, { type: `duplex-${string}` }>;

function isDuplexMessage(message: Message): message is DuplexMessage {
  return message.type.startsWith('duplex-');
}

/**
 * Sends duplex messages to `duplex` and every other message to `spilman`, on the decoded type
 * (the connection decoded each frame once; a frame that did not decode was answered there,
 * through the one error mapping). An `error` goes to whichever side holds the channel it names.
 */
export function routeDuplexFrames(spilman: PayeeEndpoint, duplex: Pick<DuplexPeer, 'receive' | 'knowsRef'>): PayeeEndpoint {
  const handle = (message: Message, link: PeerLink): Promise<void> => {
    // Payments first: one compare on the hot path, no async frame.
    if (message.type === 'payment') return spilman.handle(message, link);
    // Errors name a duplex channel as the channel, a state of it or a pay request on it.
    if (isDuplexMessage(message) || (message.type === 'error' && duplex.knowsRef(message.ref))) return duplex.receive(message, link);
    return spilman.handle(message, link);
  };
  return { handle, channel: (id) => spilman.channel(id), channelTypes: () => spilman.channelTypes() };
}

async function readJson(req: IncomingMessage, maxBytes = 4096): Promise<unknown> {
  let body = '';
  for await (const chunk of req) {
    body += String(chunk);
    if (body.length > maxBytes) throw new RangeError('body too large');
  }
  return JSON.parse(body) as unknown;
}

/**
 * A positive amount of satoshis from a JSON body: a whole number (the documented form), or the
 * decimal string paychan's CLI sent before amounts became numbers. @returns undefined otherwise.
 */
function satsOf(value: unknown): bigint | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? BigInt(value) : undefined;
  if (typeof value === 'string' && /^[1-9][0-9]{0,15}$/.test(value)) return BigInt(value);
  return undefined;
}

/** Whether a request carries `Authorization: Bearer <token>` (compared in constant time). */
export function bearerAuthorizer(token: string): (req: IncomingMessage) => boolean {
  const expected = Buffer.from(`Bearer ${token}`);
  return (req) => {
    const given = Buffer.from(req.headers.authorization ?? '');
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
}

/** The routes of {@link duplexAdminRoutes}, for the payee's route list (app/openapi.ts). */
export const DUPLEX_ADMIN_ROUTES: readonly HttpRoute[] = [
  { method: 'GET', path: '/v1/duplex/channels' },
  { method: 'POST', path: '/v1/duplex/force-close' },
  { method: 'POST', path: '/v1/duplex/pay-back' },
];

/** The admin routes; returns false for any other request. */
export function duplexAdminRoutes(duplex: DuplexPeer, watcher: DuplexWatcher, token: string) {
  const authorized = bearerAuthorizer(token);
  const answer = async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const url = req.url ?? '';
    if (!authorized(req)) {
      sendError(res, 'UNAUTHORIZED');
      return true;
    }
    if (req.method === 'GET' && url === '/v1/duplex/channels') {
      sendJson(res, 200, { channels: duplex.list() });
      return true;
    }
    if (req.method === 'POST' && url === '/v1/duplex/force-close') {
      let channelId: string;
      try {
        const body = (await readJson(req)) as { channelId?: unknown };
        if (typeof body.channelId !== 'string') throw new TypeError();
        channelId = body.channelId;
      } catch {
        sendError(res, 'BAD_REQUEST', 'expected JSON {"channelId": "txid:vout"}');
        return true;
      }
      try {
        const minedFrom = await watcher.forceClose(channelId);
        sendJson(res, 200, { channelId, minedFromHeight: minedFrom });
      } catch (err) {
        // The watcher refuses a channel it cannot close alone (unknown, not open) with a RangeError.
        sendFailure(res, err instanceof RangeError ? new ProtocolError('CHANNEL_NOT_OPEN', err.message) : err);
      }
      return true;
    }
    if (req.method === 'POST' && url === '/v1/duplex/pay-back') {
      let channelId: string;
      let amountSat: bigint;
      try {
        const body = (await readJson(req)) as { channelId?: unknown; amountSat?: unknown };
        const amount = satsOf(body.amountSat);
        if (typeof body.channelId !== 'string' || amount === undefined) throw new TypeError();
        channelId = body.channelId;
        amountSat = amount;
      } catch {
        sendError(res, 'BAD_REQUEST', 'expected JSON {"channelId": "txid:vout", "amountSat": <positive whole number of satoshis>}');
        return true;
      }
      try {
        const { requestId, sent, applied } = await duplex.payBack(channelId, amountSat);
        if (!sent) {
          applied.catch(() => undefined);
          sendJson(res, 202, { queued: true, requestId, channelId, amountSat, message: 'the payer is not connected: it takes this payment when it next connects' });
          return true;
        }
        const state = await Promise.race([applied, new Promise<null>((r) => setTimeout(() => r(null), 10_000).unref())]);
        if (state === null) sendJson(res, 202, { queued: true, requestId, channelId, amountSat, message: 'sent; the payer has not answered yet' });
        else sendJson(res, 200, { queued: false, requestId, channelId, amountSat, index: state.index, balanceASat: state.balanceASat, balanceBSat: state.balanceBSat });
      } catch (err) {
        sendFailure(res, err);
      }
      return true;
    }
    sendError(res, 'NOT_FOUND', `${req.method} ${url}`);
    return true;
  };
  // `false` at once, not a promise, for every other request (each one `paychan proxy` forwards).
  return (req: IncomingMessage, res: ServerResponse): Promise<boolean> | false => (req.url?.startsWith('/v1/duplex/') ? answer(req, res) : false);
}
