/**
 * The connection challenge and its answer (src/protocol/auth.ts), and how peer text enters the
 * log (src/transport/log-text.ts).
 */
import { describe, expect, it } from 'vitest';
import { secp256k1 } from '../../src/crypto/index.js';
import { authDigest, authMessage, verifyAuth } from '../../src/protocol/auth.js';
import { fromHex, toHex } from '../../src/protocol/bytes.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { decodeMessage, encodeMessage, msg } from '../../src/protocol/messages.js';
import { logText } from '../../src/transport/log-text.js';

const secp = secp256k1();
const key = fromHex('11'.repeat(32));
const pubkey = secp.publicKeyCreate(key);
const challenge = fromHex('ab'.repeat(32));
const tempId = 'cd'.repeat(16);

describe('auth', () => {
  it('signs the tag, the challenge, the tempId and the type; verifies only that', () => {
    // Frozen: a change to the digest is a change to the protocol.
    expect(toHex(authDigest(challenge, tempId))).toMatchInlineSnapshot(`"132ceec64ecaa1ca939891fb859615631ec9e90ec1578b43203be1f3be5028cb"`);
    const auth = decodeMessage(encodeMessage(authMessage(secp, challenge, tempId, key)));
    if (auth.type !== 'auth') throw new Error('unreachable');
    expect(() => verifyAuth(secp, challenge, pubkey, auth)).not.toThrow();
    const refusedWith = (f: () => void) => {
      try {
        f();
      } catch (err) {
        return err instanceof ProtocolError ? err.code : String(err);
      }
      return 'accepted';
    };
    // Another connection's challenge (a replay), another channel, another key, no challenge at all.
    expect(refusedWith(() => verifyAuth(secp, fromHex('ac'.repeat(32)), pubkey, auth))).toBe('AUTH_INVALID');
    expect(refusedWith(() => verifyAuth(secp, challenge, pubkey, { ...auth, tempId: 'ce'.repeat(16) }))).toBe('AUTH_INVALID');
    expect(refusedWith(() => verifyAuth(secp, challenge, secp.publicKeyCreate(fromHex('22'.repeat(32))), auth))).toBe('AUTH_INVALID');
    expect(refusedWith(() => verifyAuth(secp, undefined, pubkey, auth))).toBe('AUTH_INVALID');
  });

  it('the challenge and the auth go through the codec', () => {
    const m = msg('challenge', { challenge });
    expect(decodeMessage(encodeMessage(m))).toEqual(m);
    expect(() => decodeMessage('{"v":1,"type":"challenge","challenge":"ab"}')).toThrow(/MALFORMED_MESSAGE/);
  });
});

describe('logText', () => {
  it('keeps a peer string on one line, quoted and escaped', () => {
    const text = logText('oops\npayee: paid 1 BTC\r\u2028\u2029\u001b[31m"x"\\');
    for (const c of ['\n', '\r', '\u2028', '\u2029', '\u001b']) expect(text).not.toContain(c);
    expect(text).toBe('"oops\\npayee: paid 1 BTC\\r\\u2028\\u2029\\u001b[31m\\"x\\"\\\\"');
    expect(logText('a'.repeat(1000))).toHaveLength(300 + 3);
  });
});
