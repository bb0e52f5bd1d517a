/** The key per-address limits count by: an IPv4 address itself, an IPv6 address's /64. */
import { describe, expect, it } from 'vitest';
import { addressGroup } from '../../src/transport/address-group.js';

describe('addressGroup', () => {
  const cases: [string, string][] = [
    ['198.51.100.7', '198.51.100.7'],
    ['::ffff:198.51.100.7', '198.51.100.7'], // IPv4-mapped: the IPv4 address
    ['::FFFF:198.51.100.7', '198.51.100.7'],
    ['2001:db8:1:2::1', '2001:db8:1:2::/64'],
    ['2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:db8:1:2::/64'],
    ['2001:0DB8:0001:0002:0:0:0:9', '2001:db8:1:2::/64'], // spelled differently, same /64
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'], // the zone is not part of the address
    ['64:ff9b::198.51.100.7', '64:ff9b:0:0::/64'],
    ['unknown', 'unknown'],
  ];
  for (const [address, group] of cases) {
    it(`${address} → ${group}`, () => expect(addressGroup(address)).toBe(group));
  }

  it('puts every address of one /64 in one group, and neighbouring /64s in others', () => {
    expect(addressGroup('2001:db8:1:2:a::1')).toBe(addressGroup('2001:db8:1:2:b::2'));
    expect(addressGroup('2001:db8:1:2::1')).not.toBe(addressGroup('2001:db8:1:3::1'));
    expect(addressGroup('198.51.100.7')).not.toBe(addressGroup('198.51.100.8'));
  });
});
