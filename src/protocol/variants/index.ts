/**
 * The one table of one-way channel variants: a name on the wire maps to its spec
 * (./variant.ts), the way scure-btc-signer lists its output types. Adding a variant is its
 * module and one line here (docs/design.md "Adding a variant").
 *
 * Order matters and is append-only: a variant's position is its number in the payee's packed
 * channel states (src/payee/compact-state.ts).
 *
 * Duplex is not here: it is another protocol (payments both ways, src/protocol/duplex-*.ts),
 * not a variant of this one; the CLI lists it beside these (src/cli/channel-kinds.ts).
 */
import { spilmanV1 } from './spilman-v1.js';
import { spilmanV2 } from './spilman-v2.js';
import { variantLookup } from './table.js';
import type { ChannelVariant } from './variant.js';

export const VARIANTS = {
  'spilman-v1': spilmanV1,
  'spilman-v2': spilmanV2,
} as const satisfies Record<string, ChannelVariant>;

/** The name of a one-way channel variant, as it travels in a hello and is stored. */
export type VariantName = keyof typeof VARIANTS;

// Each entry's key is its spec's name (the wire name must find the spec that claims it).
type KeyIsName = { [K in VariantName]: (typeof VARIANTS)[K]['name'] extends K ? true : false }[VariantName];
const _keysAreNames: false extends KeyIsName ? never : true = true;

const lookup = variantLookup(VARIANTS);

/** Every variant's name, in table order. */
export const VARIANT_NAMES: readonly VariantName[] = lookup.names;

/** @returns whether `name` is a variant of the table (a type guard for names from outside). */
export const isVariantName: (name: string) => name is VariantName = lookup.has;

/**
 * The spec of variant `name`.
 * @throws RangeError naming the known variants, for a name not in the table (a name from a peer
 *   is checked when its message is decoded, and refused there with UNSUPPORTED_VARIANT).
 */
export const variantOf: (name: string) => ChannelVariant = lookup.get;

export type { ChannelVariant } from './variant.js';
