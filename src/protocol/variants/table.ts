/**
 * Look-ups over a table of variant specs: kept apart from the table itself (./index.ts) so that
 * a test can build the same look-ups over the table plus a variant of its own, and run the real
 * callers against it (test/unit/variants.test.ts).
 */
import type { ChannelVariant } from './variant.js';

export interface VariantLookup<Name extends string> {
  /** Every name, in table order. */
  readonly names: readonly Name[];
  /** Whether `name` is in the table (a type guard for names from outside). */
  has(name: string): name is Name;
  /** @throws RangeError naming the known variants, for a name not in the table. */
  get(name: string): ChannelVariant;
}

export function variantLookup<Table extends Readonly<Record<string, ChannelVariant>>>(table: Table): VariantLookup<keyof Table & string> {
  type Name = keyof Table & string;
  const names = Object.freeze(Object.keys(table) as Name[]);
  const has = (name: string): name is Name => Object.hasOwn(table, name);
  return Object.freeze({
    names,
    has,
    get(name: string): ChannelVariant {
      const spec: ChannelVariant | undefined = has(name) ? table[name] : undefined;
      if (spec === undefined) throw new RangeError(`unknown channel variant '${name.slice(0, 40)}'; known: ${names.join(', ')}`);
      return spec;
    },
  });
}
