/**
 * A small seeded pseudo-random generator for the crash harness: the same seed gives the same
 * sequence of kill delays and payment amounts (timings still differ from run to run, so a run is
 * repeatable in its choices, not in its interleavings).
 *
 * The generator is SplitMix32-style: a 32-bit counter advanced by a fixed odd constant, then
 * scrambled by multiply/xor-shift rounds. Statistical quality is far beyond what picking delays
 * needs; speed and determinism are what matter here.
 */
export interface Prng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max] (both inclusive). */
  int(min: number, max: number): number;
  /** A float in [min, max). */
  between(min: number, max: number): number;
  /** true with probability `p`. */
  chance(p: number): boolean;
}

/** @throws RangeError unless `seed` is an integer in [0, 2^32). */
export function prng(seed: number): Prng {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffff_ffff) throw new RangeError(`seed must be an integer in [0, 2^32), got ${seed}`);
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x9e37_79b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85eb_ca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2_ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
    return z / 0x1_0000_0000;
  };
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    between: (min, max) => min + next() * (max - min),
    chance: (p) => next() < p,
  };
}

/** A fresh seed from the clock and Math.random, for runs that did not name one. */
export function randomSeed(): number {
  return (Date.now() ^ Math.floor(Math.random() * 0x1_0000_0000)) >>> 0;
}
