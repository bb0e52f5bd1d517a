/**
 * The kinds of channel the CLI opens, in one table: every one-way variant of the protocol's
 * table (src/protocol/variants/index.ts), then duplex, which is another protocol (payments both
 * ways), not a variant of the one-way channel. `--variant` is parsed, and its help written, from
 * this table only: a new variant appears here by being added to the protocol's table.
 */
import { VARIANT_NAMES, variantOf, type VariantName } from '../protocol/variants/index.js';
import { UsageError } from './options.js';

export type ChannelKind = { readonly type: 'one-way'; readonly variant: VariantName } | { readonly type: 'duplex' };

interface KindEntry {
  readonly name: string;
  readonly kind: ChannelKind;
  /** One line of help. */
  readonly summary: string;
}

const CHANNEL_KINDS: readonly KindEntry[] = Object.freeze([
  ...VARIANT_NAMES.map((variant): KindEntry => ({ name: variant, kind: { type: 'one-way', variant }, summary: variantOf(variant).summary })),
  { name: 'duplex', kind: { type: 'duplex' }, summary: 'payments both ways; both sides may put coins in' },
]);

/** The kind `--variant` means when it is not given: the seed's channel. */
export const DEFAULT_CHANNEL_KIND: VariantName = 'spilman-v1';

/** `spilman-v1|spilman-v2|duplex`, for usage lines. */
export const CHANNEL_KIND_CHOICES = CHANNEL_KINDS.map((k) => k.name).join('|');

/**
 * The help lines of `--variant`: one per kind, each `indent` deep, the default marked.
 * @param indent spaces before each line (to line up with the option's other lines).
 */
export function channelKindHelp(indent: number): string {
  const width = Math.max(...CHANNEL_KINDS.map((k) => k.name.length));
  return CHANNEL_KINDS.map((k) => `${' '.repeat(indent)}${k.name.padEnd(width)}  ${k.name === DEFAULT_CHANNEL_KIND ? '(default) ' : ''}${k.summary}`).join('\n');
}

/**
 * The kind `--variant` names (the default when it is absent).
 * @throws UsageError naming every kind, for any other value.
 */
export function channelKindOf(name: string | undefined): ChannelKind {
  const wanted = name ?? DEFAULT_CHANNEL_KIND;
  const entry = CHANNEL_KINDS.find((k) => k.name === wanted);
  if (!entry) throw new UsageError(`--variant must be one of ${CHANNEL_KINDS.map((k) => k.name).join(', ')}, got '${wanted}'`);
  return entry.kind;
}
