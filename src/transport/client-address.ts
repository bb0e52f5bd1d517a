/**
 * Who a request comes from, for the per-address limits. Normally the socket's remote address.
 * Behind a reverse proxy on this machine (a TLS terminator: nginx, Caddy) every socket comes from
 * loopback, so every client would share one address's budget (16 WebSockets, 128 sockets); with
 * `trustProxy` a loopback socket's client is the last address in `X-Forwarded-For` — the one
 * the local proxy appended (earlier entries are whatever the client claimed). A socket from
 * anywhere else keeps its own address, so a client reaching the payee directly cannot claim one.
 *
 * Only for a proxy that speaks HTTP and appends (or overwrites) the header, e.g. nginx's
 * `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;`, Caddy's `reverse_proxy`. A
 * terminator in TCP mode (stunnel, hitch, HAProxy `mode tcp`), an ssh or socat forward, or a Tor
 * onion service passes the client's own header through: each connection could then claim a new
 * address and escape the per-address limits. Do not use it with those.
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
  const last = withoutPort((Array.isArray(header) ? header.join(',') : (header ?? '')).split(',').pop()?.trim() ?? '');
  return isIP(last) ? last : own;
}

/** `1.2.3.4:5678` → `1.2.3.4`, `[2001:db8::1]:443` and `[2001:db8::1]` → `2001:db8::1`; else as is. */
function withoutPort(entry: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(entry);
  if (bracketed) return bracketed[1]!;
  const v4 = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(entry);
  return v4 ? v4[1]! : entry;
}
