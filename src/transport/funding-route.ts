/**
 * What a page learns of the chain from the payee (public facts, cheap to answer):
 * - `GET /v1/funding/:script` — the confirmed funding of a channel output, for a page whose user
 *   paid the channel's address from any wallet (src/payee/funding-finder.ts says why trusting the
 *   payee here risks nothing). 200 {txid, vout, valueSat (a number), height, txHex} or 404 NOT_FOUND. The
 *   script is a P2WSH output script (68 hex digits); anything else is 400 BAD_REQUEST.
 * - `GET /v1/chain/tip` — {height, hash}: a new channel's expiry counts from it. A payee that
 *   lies here only makes the channel's expiry nearer or farther; the payer's policy bounds it
 *   and the refund kit shows it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError, sendJson } from './http-replies.js';

export const FUNDING_ROUTE_PREFIX = '/v1/funding/';
export const TIP_ROUTE = '/v1/chain/tip';
const P2WSH_SCRIPT = /^0020[0-9a-f]{64}$/;
const TIP_CACHE_MS = 1_000;

/** The routes, for the payee's route list and its OpenAPI document. */
export const FUNDING_ROUTES = [
  { method: 'GET', path: `${FUNDING_ROUTE_PREFIX}{script}` },
  { method: 'GET', path: TIP_ROUTE },
] as const;

/** What the route needs: a finder of fundings by output script. */
export interface FundingLookup {
  find(scriptHex: string): Promise<{ txid: string; vout: number; valueSat: bigint; height: number; txHex: string } | null>;
}

/** @returns an extra route; resolves true when it answered. */
export function fundingRoute(finder: FundingLookup, tip?: () => Promise<{ height: number; hash: string }>): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> | false {
  // A stranger's requests for the tip cost at most one node call a second.
  let tipAsked: { atMs: number; answer: Promise<{ height: number; hash: string }> } | null = null;
  const answer = async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    if (tip && req.url === TIP_ROUTE && req.method === 'GET') {
      const now = Date.now();
      if (!tipAsked || now - tipAsked.atMs >= TIP_CACHE_MS) {
        tipAsked = { atMs: now, answer: tip() };
        tipAsked.answer.catch(() => (tipAsked = null)); // a failed call is not remembered
      }
      const { height, hash } = await tipAsked.answer;
      sendJson(res, 200, { height, hash });
      return true;
    }
    if (!req.url?.startsWith(FUNDING_ROUTE_PREFIX)) return false;
    if (req.method !== 'GET') {
      sendError(res, 'METHOD_NOT_ALLOWED', undefined, { allow: 'GET' });
      return true;
    }
    const script = req.url.slice(FUNDING_ROUTE_PREFIX.length).toLowerCase();
    if (!P2WSH_SCRIPT.test(script)) {
      sendError(res, 'BAD_REQUEST', 'the path ends with a P2WSH output script, 68 hex digits');
      return true;
    }
    const found = await finder.find(script);
    if (!found) sendError(res, 'NOT_FOUND', 'no confirmed output pays this script in the recent blocks');
    else sendJson(res, 200, { txid: found.txid, vout: found.vout, valueSat: Number(found.valueSat), height: found.height, txHex: found.txHex });
    return true;
  };
  // `false` at once, not a promise, for every other request: each request `paychan proxy`
  // forwards passes here, paid ones included.
  return (req, res) => ((tip && req.url === TIP_ROUTE && req.method === 'GET') || req.url?.startsWith(FUNDING_ROUTE_PREFIX) ? answer(req, res) : false);
}
