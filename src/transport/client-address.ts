/**
 * Who a request comes from, for the per-address limits. Normally the socket's remote address.
 * Behind a reverse proxy on this machine (a TLS terminator: nginx, Caddy) every socket comes from
 * loopback, so every client would share one address's budget (16 WebSockets, 128 sockets); with
 * `trustProxy` a loopback socket's client is the last address in `X-Forwarded-For` — the one
 * the local proxy appended (earlier entries are whatever the client claimed). A socket from
 * anywhere else keeps its own address, so a client reaching the payee directly cannot claim one.
 */
import type { IncomingMessage } from 'node:http';
import { isIP, isIPv4 } from 'node:net';

/** 127.0.0.0/8, ::1, and their IPv4-mapped spellings. */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.toLowerCase().startsWith('::ffff:') ? address.slice(7) : address;
  if (isIPv4(v4)) return v4.startsWith('127.');
  return address === '::1';
}

/** The socket's address, IPv4-mapped IPv6 written as IPv4. */
function socketAddress(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? 'unknown';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/**
 * The client's address: the socket's, or with `trustProxy` and a loopback socket the last valid
 * entry of `X-Forwarded-For` (the socket's if there is none).
 */
export function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  const own = socketAddress(req);
  if (!trustProxy || !isLoopback(own)) return own;
  const header = req.headers['x-forwarded-for'];
  const last = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',').pop()?.trim() ?? '';
  return isIP(last) ? last : own;
}
