/**
 * The key the per-address limits count connections (and duplex openings) by. An IPv4 address
 * is one host's; an IPv6 host usually gets a whole /64 (SLAAC, privacy addresses, a cloud VM's
 * range), so counting exact IPv6 addresses would give one attacker 2^64 "addresses". IPv4-mapped
 * IPv6 (`::ffff:1.2.3.4`) counts as its IPv4 address. Anything else is its own group.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** `1.2.3.4` → `1.2.3.4`; `2001:db8:1:2::7` → `2001:db8:1:2::/64` (lower case, no leading zeros). */
export function addressGroup(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
  if (isIPv4(address)) return address;
  const bare = address.split('%')[0]!; // a link-local zone (`%eth0`) is not part of the address
  if (!isIPv6(bare)) return address;
  return `${hextets(bare).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address, as lower-case hex without leading zeros. */
function hextets(address: string): string[] {
  let text = address;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    // An embedded IPv4 tail is the last two groups.
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, -v4[1]!.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.map((g) => parseInt(g, 16).toString(16));
}
