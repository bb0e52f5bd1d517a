/** clientAddress: whose per-address budget a request counts against, with and without a trusted local proxy. */
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { clientAddress, isLoopback } from '../../src/transport/client-address.js';

const request = (remoteAddress: string, forwardedFor?: string | string[]) => ({ socket: { remoteAddress }, headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor } }) as unknown as IncomingMessage;

describe('isLoopback', () => {
  it('is 127.0.0.0/8 and ::1, IPv4-mapped too', () => {
    for (const a of ['127.0.0.1', '127.10.0.3', '::1', '::ffff:127.0.0.1', '::FFFF:127.0.0.2']) expect(isLoopback(a)).toBe(true);
    for (const a of ['10.0.0.1', '128.0.0.1', '::2', '::ffff:10.0.0.1', '2001:db8::1', 'unknown', undefined]) expect(isLoopback(a)).toBe(false);
  });
});

describe('clientAddress', () => {
  it('is the socket address without trustProxy, whatever the header says', () => {
    expect(clientAddress(request('127.0.0.1', '203.0.113.9'), false)).toBe('127.0.0.1');
    expect(clientAddress(request('::ffff:198.51.100.7'), false)).toBe('198.51.100.7');
  });

  it('with trustProxy, a loopback socket counts as the last X-Forwarded-For entry (what the local proxy appended)', () => {
    expect(clientAddress(request('127.0.0.1', '203.0.113.9'), true)).toBe('203.0.113.9');
    expect(clientAddress(request('::1', '10.9.9.9, 203.0.113.9'), true)).toBe('203.0.113.9'); // the first was the client's own claim
    expect(clientAddress(request('127.0.0.1', ['10.9.9.9', '2001:db8::5']), true)).toBe('2001:db8::5');
  });

  it('with trustProxy, reads an entry written with a port or brackets', () => {
    expect(clientAddress(request('127.0.0.1', '203.0.113.9:5678'), true)).toBe('203.0.113.9');
    expect(clientAddress(request('127.0.0.1', '[2001:db8::5]:443'), true)).toBe('2001:db8::5');
    expect(clientAddress(request('127.0.0.1', '[2001:db8::5]'), true)).toBe('2001:db8::5');
  });

  it('with trustProxy, keeps the socket address when the header is missing or not an address, and for sockets from elsewhere', () => {
    expect(clientAddress(request('127.0.0.1'), true)).toBe('127.0.0.1');
    expect(clientAddress(request('127.0.0.1', '203.0.113.9, not-an-ip'), true)).toBe('127.0.0.1');
    // A client reaching the payee directly cannot choose its budget.
    expect(clientAddress(request('198.51.100.7', '203.0.113.9'), true)).toBe('198.51.100.7');
  });
});
