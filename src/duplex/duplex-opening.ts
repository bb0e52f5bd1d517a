/**
 * B's limits on openings (docs/duplex.md "Limits"): a decision over every channel B holds, so it
 * lives beside the driver rather than in the per-channel machine.
 */
import { equalBytes } from '../protocol/bytes.js';
import type { DuplexChannelState } from '../protocol/duplex-state.js';
import { ProtocolError } from '../protocol/errors.js';
import { addressGroup } from '../transport/address-group.js';

/**
 * Openings B takes part in at once per payer key, and per source address (what the transport
 * knows of the connection): one payer, or one connection rotating keys, cannot hold more and
 * block everyone else's openings. There is no global cap: B reserves coins only for an opener
 * whose own inputs are real on chain, and a funding B signed that never reaches the node gives
 * them back after OPENING_TIMEOUT_BLOCKS (duplex-watcher.ts): a stranger naming someone else's
 * coin holds B's coins that long, no longer.
 */
export const MAX_OPENINGS_PER_KEY = 4;
export const MAX_OPENINGS_PER_ADDRESS = 16;
/**
 * An opening with no funding signed after this many blocks is abandoned (its coins released); so
 * are B's coins in a funding B signed that the node has not seen this many blocks later.
 */
export const OPENING_TIMEOUT_BLOCKS = 6;

/** A's key of a channel B holds, whatever its stage. */
function keyAOf(state: DuplexChannelState): Uint8Array | null {
  if ('terms' in state) return state.terms.keyA;
  if (state.type === 'Vetting' || state.type === 'KeyPending') return state.open.keyA;
  return null;
}

/**
 * Refuses an opening from a payer key, or a source address, that already holds its share of
 * openings in progress, and of channels whose funding is not confirmed yet (B's signed inputs
 * are out and its coins reserved until then, or B keeps a record for it), until the watcher
 * gives those up. A record whose coins B released still counts until it is aborted: its signed
 * funding may still confirm, and a stranger must not pile them up for free.
 * @throws ProtocolError RATE_LIMITED.
 */
export function checkOpeningLimits(states: Iterable<DuplexChannelState>, keyA: Uint8Array, address: string | undefined): void {
  const busy = [...states].filter((s) => s.role === 'B' && (isOpening(s) || (s.type === 'Open' && !s.fundingConfirmed && s.predecessorId === null)));
  const byKey = busy.filter((s) => {
    const k = keyAOf(s);
    return k !== null && equalBytes(k, keyA);
  }).length;
  if (byKey >= MAX_OPENINGS_PER_KEY) throw new ProtocolError('RATE_LIMITED', `${byKey} duplex openings of this key are in progress; retry later`);
  if (address === undefined) return;
  // Per IPv4 address, per IPv6 /64 (a host's usual share), as the transport counts connections.
  const group = addressGroup(address);
  const byAddress = busy.filter((s) => s.openedBy !== null && addressGroup(s.openedBy) === group).length;
  if (byAddress >= MAX_OPENINGS_PER_ADDRESS) throw new ProtocolError('RATE_LIMITED', `${byAddress} duplex openings from ${group} are in progress; retry later`);
}

/** Whether the state is an opening (no state 0 signed by both yet). */
export function isOpening(state: DuplexChannelState): boolean {
  return !(state.type === 'Open' || state.type === 'Closing' || state.type === 'Closed' || state.type === 'Aborted');
}
