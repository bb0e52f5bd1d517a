/**
 * The state codec round-trips every value a protocol state can hold: nested objects and arrays,
 * bigints of any size and sign, byte arrays, nulls, and strings or keys that look like its tags.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeState, encodeState } from '../../src/store/codec.js';

/** Strings a naive tagged codec would confuse with its own encoding. */
const tagLike = fc.constantFrom('$n', '$b', '{"$n":"1"}', '{"$b":"00"}', '123', '-5', 'ff00', '', '$', '$$n');
const key = fc.oneof(fc.string({ maxLength: 8 }), tagLike).filter((k) => k !== '__proto__');

const leaf = fc.oneof(
  fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }),
  fc.constantFrom(0n, -1n, 2n ** 64n, 2n ** 64n + 1n, -(2n ** 64n) - 1n, 2n ** 256n),
  fc.uint8Array({ maxLength: 40 }),
  fc.oneof(fc.string(), tagLike),
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  // JSON has no -0, NaN or Infinity; states hold none (amounts are bigints).
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Object.is(x, -0)),
);

/**
 * An object whose only key is `$n` or `$b` is the codec's own tag shape and decodes as a bigint
 * or bytes; states never contain one (their fields are named by the protocol types).
 */
const isTagShape = (o: Record<string, unknown>): boolean => {
  const keys = Object.keys(o);
  return keys.length === 1 && (keys[0] === '$n' || keys[0] === '$b');
};

const { tree } = fc.letrec<{ tree: unknown; node: unknown }>((tie) => ({
  tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('node')),
  node: fc.oneof(
    fc.array(tie('tree'), { maxLength: 5 }),
    fc.dictionary(key, tie('tree'), { maxKeys: 5, noNullPrototype: true }).filter((o) => !isTagShape(o)),
  ),
}));

describe('state codec', () => {
  it('round-trips nested values with bigints, bytes, nulls and tag-like strings', () => {
    fc.assert(
      fc.property(tree, (value) => {
        expect(decodeState(encodeState(value))).toStrictEqual(value);
      }),
      { numRuns: 1000 },
    );
  });

  it('encodes to JSON text that a generic JSON parser accepts', () => {
    fc.assert(
      fc.property(tree, (value) => {
        expect(() => JSON.parse(encodeState(value)) as unknown).not.toThrow();
      }),
    );
  });

  it('keeps bigints beyond 2^64 and negative ones exact', () => {
    const value = { big: 2n ** 64n + 12345n, neg: -(2n ** 70n), tiny: -1n, list: [0n, 1n] };
    expect(encodeState(value)).toBe('{"big":{"$n":"18446744073709563961"},"neg":{"$n":"-1180591620717411303424"},"tiny":{"$n":"-1"},"list":[{"$n":"0"},{"$n":"1"}]}');
    expect(decodeState(encodeState(value))).toStrictEqual(value);
  });

  it('keeps strings that look like tags as strings', () => {
    const value = { a: '$n', b: '{"$b":"00"}', $n: 'x', $b: 'y', nested: { $n: '1', other: true } };
    expect(decodeState(encodeState(value))).toStrictEqual(value);
  });

  it('decodes bytes as a Uint8Array', () => {
    const decoded = decodeState<{ sig: Uint8Array }>(encodeState({ sig: Uint8Array.of(0, 1, 255) }));
    expect(decoded.sig).toBeInstanceOf(Uint8Array);
    expect([...decoded.sig]).toEqual([0, 1, 255]);
  });

  it('refuses malformed tagged values', () => {
    expect(() => decodeState('{"$n":"12x"}')).toThrow(SyntaxError);
    expect(() => decodeState('{"$b":"abc"}')).toThrow(TypeError);
    expect(() => decodeState('not json')).toThrow(SyntaxError);
  });
});
