/**
 * FrameSlab hands `ws` views of a connection's own slabs: a view once handed out must keep its
 * bytes while the socket may still hold it, however many frames follow (a new slab is taken
 * when one is full), and no view shares memory with another connection's frames.
 */
import { describe, expect, it } from 'vitest';
import { encodeMessage, msg, type Message } from '../../src/protocol/messages.js';
import { FrameSlab } from '../../src/transport/frame-slab.js';

const hotMessage = (i: number): Message => {
  const channelId = `${(i % 256).toString(16).padStart(2, '0').repeat(32)}:${i % 7}`;
  return i % 2 === 0 ? msg('payment-ack', { channelId, totalSat: BigInt(i) }) : msg('payment', { channelId, totalSat: BigInt(i) * 1000n, signature: new Uint8Array(64).fill(i % 256) });
};

describe('FrameSlab', () => {
  it('encodes payments and acks as encodeMessage does and never rewrites a frame it handed out', () => {
    const slab = new FrameSlab();
    const sent: { frame: Buffer; text: string }[] = [];
    for (let i = 0; i < 2000; i++) {
      const m = hotMessage(i);
      const frame = slab.hotPathFrame(m);
      expect(frame).not.toBeNull();
      sent.push({ frame: frame!, text: encodeMessage(m) });
    }
    // 2,000 frames of ~110–255 bytes span many slabs: every one is still intact.
    for (const { frame, text } of sent) expect(frame.toString('utf8')).toBe(text);
  });

  it("a connection's frames pin only its own slabs, about as many bytes as it queued", () => {
    // A peer that stops reading one connection while others keep sending: what its queued
    // frames keep alive must not grow with the other connections' traffic.
    const stalled = new FrameSlab();
    const busy = new FrameSlab();
    const queued: Buffer[] = [];
    for (let i = 0; i < 1000; i++) {
      queued.push(stalled.hotPathFrame(hotMessage(2 * i))!); // acks, ~140 bytes each
      for (let k = 0; k < 30; k++) busy.hotPathFrame(hotMessage(2 * k));
    }
    const queuedBytes = queued.reduce((s, f) => s + f.length, 0);
    const pinned = new Set(queued.map((f) => f.buffer));
    const pinnedBytes = [...pinned].reduce((s, b) => s + b.byteLength, 0);
    expect(pinnedBytes).toBeLessThanOrEqual(queuedBytes * 1.1 + 4096);
    const busyFrame = busy.hotPathFrame(hotMessage(0))!;
    expect(pinned.has(busyFrame.buffer)).toBe(false);
  });

  it('declines any other message (its text is sent instead)', () => {
    const slab = new FrameSlab();
    expect(slab.hotPathFrame(msg('close-request', { channelId: `${'ab'.repeat(32)}:0` }))).toBeNull();
    expect(slab.wireFrame(msg('close-request', { channelId: `${'ab'.repeat(32)}:0` }))).toBe(encodeMessage(msg('close-request', { channelId: `${'ab'.repeat(32)}:0` })));
  });
});
