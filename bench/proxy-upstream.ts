/**
 * The bare upstream of the proxy benchmark: a node:http server answering every request with a
 * small fixed body (keep-alive, content-length), so what bench/proxy.ts measures is the proxy
 * and the paywall, not the upstream. Prints {"event":"ready","url":…}.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { emit, onStdinLines } from './lib/lines.js';

const body = Buffer.from('{"hello":"world"}');
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => emit({ event: 'ready', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }));
onStdinLines((line) => {
  if (line === 'cpu') {
    const u = process.cpuUsage();
    emit({ event: 'cpu', us: u.user + u.system });
  }
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
