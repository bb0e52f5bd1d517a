/** The allocation-free SHA-256 of the payment sighash equals @noble/hashes on every length. */
import fc from 'fast-check';
import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../src/protocol/bytes.js';
import { SHA256_IV, compressBlock, finish } from '../../src/protocol/sha256-blocks.js';

function hash(data: Uint8Array, split: number): Uint8Array {
  const state = Uint32Array.from(SHA256_IV);
  const absorbed = Math.min(split, data.length) - (Math.min(split, data.length) % 64);
  for (let off = 0; off < absorbed; off += 64) compressBlock(state, data, off);
  const out = new Uint8Array(32);
  finish(state, absorbed, data.subarray(absorbed), data.length - absorbed, out, 0);
  return out;
}

describe('sha256-blocks', () => {
  it('derives the standard constants (SHA-256 of the empty string)', () => {
    expect(toHex(hash(new Uint8Array(0), 0))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });
  it('equals noble for any input and any midstate split', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.nat({ max: 300 }), (data, split) => {
        expect(toHex(hash(data, split))).toBe(toHex(sha256(data)));
      }),
      { numRuns: 1000 },
    );
  });
});
