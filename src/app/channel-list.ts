/**
 * Every channel a payee holds, Spilman (v1, v2) and duplex, in one list for its operator
 * (`paychan payee channels`): `GET /v1/admin/channels` with the data dir's admin token.
 * Channels that were never funded carry no money and are left out.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DuplexSummary } from '../duplex/duplex-view.js';
import type { DuplexPeer } from '../duplex/duplex-peer.js';
import { stateLocktime } from '../protocol/duplex-tx.js';
import type { PayeeState } from '../protocol/payee-machine.js';
import type { VariantName } from '../protocol/variants/index.js';
import { sendError, sendJson } from '../transport/http-replies.js';
import type { HttpRoute } from '../transport/http-routes.js';

export interface ChannelRow {
  /** The funding outpoint `txid:vout`. */
  readonly channelId: string;
  /** A one-way variant's name, or duplex (another protocol: see src/cli/channel-kinds.ts). */
  readonly variant: VariantName | 'duplex';
  readonly capacitySat: bigint;
  /** Paid to the payee: the newest acknowledged total (duplex: A to B). */
  readonly paidSat: bigint;
  /** Duplex only: paid back by the payee to the payer (B to A). */
  readonly paidBackSat?: bigint;
  /** The payee's state name (Spilman) or phase (duplex). */
  readonly state: string;
  /**
   * Spilman: the refund height, by which the payee must close. Duplex: the locktime of the
   * newest state, from which either side can publish it alone.
   */
  readonly expiryHeight: number;
}

export const ADMIN_CHANNELS_ROUTE = '/v1/admin/channels';
/** The route of {@link channelListRoute}, for the payee's route list (app/openapi.ts). */
export const CHANNEL_LIST_ROUTES: readonly HttpRoute[] = [{ method: 'GET', path: ADMIN_CHANNELS_ROUTE }];

/** A duplex row also carries the duplex summary's own fields (phase, balances, updates…). */
export type ChannelListRow = ChannelRow | (ChannelRow & Omit<DuplexSummary, 'capacitySat' | 'channelId'>);

export function listChannels(spilman: readonly PayeeState[], duplex: Pick<DuplexPeer, 'list' | 'get'>): ChannelListRow[] {
  const rows: ChannelListRow[] = [];
  for (const s of spilman) {
    if (!('channel' in s)) continue;
    rows.push({ channelId: s.channel.id, variant: s.channel.variant, capacitySat: s.channel.capacitySat, paidSat: 'paidSat' in s ? s.paidSat : 0n, state: s.type, expiryHeight: s.channel.expiryHeight });
  }
  for (const d of duplex.list()) {
    const terms = duplex.get(d.tempId)?.terms;
    if (!d.channelId || !terms) continue;
    rows.push({
      // B's whole view of a duplex channel (phase, balances, updates…), as GET /v1/duplex/channels.
      ...d,
      channelId: d.channelId,
      variant: 'duplex',
      capacitySat: terms.contributionASat + terms.contributionBSat,
      paidSat: d.paidAtoBSat,
      paidBackSat: d.paidBtoASat,
      state: d.phase,
      // The height at which the newest state becomes final (its nLockTime): one definition.
      expiryHeight: stateLocktime(terms, d.index ?? 0),
    });
  }
  return rows;
}

/** The route; false for any other request. `authorized` checks the admin token. */
export function channelListRoute(list: () => ChannelListRow[], authorized: (req: IncomingMessage) => boolean) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.url !== ADMIN_CHANNELS_ROUTE) return false;
    if (!authorized(req)) sendError(res, 'UNAUTHORIZED');
    else if (req.method !== 'GET') sendError(res, 'METHOD_NOT_ALLOWED', undefined, { allow: 'GET' });
    else sendJson(res, 200, { channels: list() });
    return true;
  };
}
