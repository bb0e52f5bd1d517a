/**
 * hotPathFrame hands `ws` views of one slab: a view once handed out must keep its bytes while the
 * socket may still hold it, however many frames follow (a new slab is taken when one is full).
 */
import { describe, expect, it } from 'vitest';
import { encodeMessage, msg } from '../../src/protocol/messages.js';
import { hotPathFrame } from '../../src/transport/frame-slab.js';

describe('hotPathFrame', () => {
  it('encodes payments and acks as encodeMessage does and never rewrites a frame it handed out', () => {
    const sent: { frame: Buffer; text: string }[] = [];
    for (let i = 0; i < 2000; i++) {
      const channelId = `${(i % 256).toString(16).padStart(2, '0').repeat(32)}:${i % 7}`;
      const m =
        i % 2 === 0
          ? msg('payment-ack', { channelId, totalSat: BigInt(i) })
          : msg('payment', { channelId, totalSat: BigInt(i) * 1000n, signature: new Uint8Array(64).fill(i % 256) });
      const frame = hotPathFrame(m);
      expect(frame).not.toBeNull();
      sent.push({ frame: frame!, text: encodeMessage(m) });
    }
    // 2,000 frames of ~110–255 bytes span several 64 KiB slabs: every one is still intact.
    for (const { frame, text } of sent) expect(frame.toString('utf8')).toBe(text);
  });

  it('declines any other message (its text is sent instead)', () => {
    expect(hotPathFrame(msg('close-request', { channelId: `${'ab'.repeat(32)}:0` }))).toBeNull();
  });
});
