/**
 * Serializes protocol states for storage: JSON where a `bigint` becomes `{"$n":"123"}` and a
 * `Uint8Array` becomes `{"$b":"hex"}`, so a state round-trips exactly (tested with fast-check).
 */
import { fromHex, toHex } from '../protocol/bytes.js';

export function encodeState(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return { $n: v.toString() };
    if (v instanceof Uint8Array) return { $b: toHex(v) };
    return v;
  });
}

/** @throws SyntaxError if `text` is not JSON; TypeError for a malformed tagged value. */
export function decodeState<T>(text: string): T {
  return JSON.parse(text, (_key, v: unknown) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const keys = Object.keys(v);
      if (keys.length === 1 && keys[0] === '$n') return BigInt((v as { $n: string }).$n);
      if (keys.length === 1 && keys[0] === '$b') return fromHex((v as { $b: string }).$b);
    }
    return v;
  }) as T;
}
