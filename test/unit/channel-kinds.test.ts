/** The CLI's one table of channel kinds: the protocol's one-way variants, then duplex. */
import { describe, expect, it } from 'vitest';
import { CHANNEL_KIND_CHOICES, channelKindHelp, channelKindOf } from '../../src/cli/channel-kinds.js';
import { UsageError } from '../../src/cli/options.js';
import { VARIANT_NAMES, variantOf } from '../../src/protocol/variants/index.js';

describe('channel kinds', () => {
  it('are every variant of the table, then duplex', () => {
    expect(CHANNEL_KIND_CHOICES).toBe([...VARIANT_NAMES, 'duplex'].join('|'));
    for (const name of VARIANT_NAMES) expect(channelKindOf(name)).toEqual({ type: 'one-way', variant: name });
    expect(channelKindOf('duplex')).toEqual({ type: 'duplex' });
  });

  it('default to spilman-v1', () => {
    expect(channelKindOf(undefined)).toEqual({ type: 'one-way', variant: 'spilman-v1' });
  });

  it('refuse any other name, listing the kinds', () => {
    expect(() => channelKindOf('spilman-v3')).toThrow(UsageError);
    expect(() => channelKindOf('duplex-x')).toThrow("--variant must be one of spilman-v1, spilman-v2, duplex, got 'duplex-x'");
  });

  it('write one help line per kind, from the specs, the default marked', () => {
    const lines = channelKindHelp(4).split('\n');
    expect(lines).toHaveLength(VARIANT_NAMES.length + 1);
    VARIANT_NAMES.forEach((name, i) => {
      expect(lines[i]!.startsWith(`    ${name}`)).toBe(true);
      expect(lines[i]).toContain(variantOf(name).summary);
    });
    expect(lines[0]).toContain('(default)');
    expect(lines.at(-1)).toMatch(/^ {4}duplex/);
  });
});
