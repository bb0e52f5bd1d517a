/**
 * The payee's frame router: duplex frames and errors about duplex channels go to side B, every
 * other frame to the Spilman service. An error names what it answers as the channel, a state
 * (`<channel>/<index>`) or a pay request (`<channel>#<request>`); all three must reach B.
 */
import { describe, expect, it } from 'vitest';
import { routeDuplexFrames } from '../../src/app/duplex-routes.js';
import { splitRef } from '../../src/duplex/duplex-peer.js';
import { decodeMessage, encodeMessage, errorMessage, msg, type Message } from '../../src/protocol/messages.js';
import type { PeerLink } from '../../src/transport/link.js';

const DUPLEX = `${'cd'.repeat(32)}:0`;
const SPILMAN = `${'ab'.repeat(32)}:1`;
const REQUEST = '0f'.repeat(16);

function router(): { route: (m: Message) => Promise<void>; seen: string[] } {
  const seen: string[] = [];
  const routed = routeDuplexFrames(
    { handle: (m) => (seen.push(`spilman ${m.type}`), Promise.resolve()), channel: () => undefined, channelTypes: () => [] },
    { receive: (m) => (seen.push(`duplex ${m.type}`), Promise.resolve()), knowsRef: (ref) => splitRef(ref)[0] === DUPLEX },
  );
  const link: PeerLink = { send: (m) => seen.push(`reply ${m.type}`) };
  // Through the wire codec, as the connection decodes each frame before routing it.
  return { route: (m) => routed.handle(decodeMessage(encodeMessage(m)), link), seen };
}

describe('routeDuplexFrames', () => {
  it('sends errors about a duplex channel, a state of it or a pay request on it to side B', async () => {
    const { route, seen } = router();
    for (const ref of [DUPLEX, `${DUPLEX}/7`, `${DUPLEX}#${REQUEST}`]) await route(errorMessage('BALANCE_MISMATCH', 'refused', 'reject', ref));
    expect(seen).toEqual(['duplex error', 'duplex error', 'duplex error']);
  });

  it('sends payments, Spilman errors and errors without a ref to the Spilman service', async () => {
    const { route, seen } = router();
    await route(msg('payment', { channelId: SPILMAN, totalSat: 5n, signature: new Uint8Array(64) }));
    await route(errorMessage('UNKNOWN_CHANNEL', 'no', 'reject', `${SPILMAN}#${REQUEST}`));
    await route(errorMessage('UNKNOWN_CHANNEL', 'no', 'reject'));
    expect(seen).toEqual(['spilman payment', 'spilman error', 'spilman error']);
  });

  it('sends duplex messages to side B on their decoded type', async () => {
    const { route, seen } = router();
    await route(msg('duplex-pay-request', { channelId: DUPLEX, amountSat: 5n, requestId: REQUEST }));
    await route(msg('duplex-channel', { tempId: REQUEST, channelId: DUPLEX }));
    expect(seen).toEqual(['duplex duplex-pay-request', 'duplex duplex-channel']);
  });

  it('splits error refs into the channel and what they answer', () => {
    expect(splitRef(`${DUPLEX}/12`)).toEqual([DUPLEX, { index: 12 }]);
    expect(splitRef(`${DUPLEX}#${REQUEST}`)).toEqual([DUPLEX, { requestId: REQUEST }]);
    expect(splitRef(DUPLEX)).toEqual([DUPLEX, {}]);
    expect(splitRef(undefined)).toEqual([undefined, {}]);
  });
});
