/**
 * The bare upstream of the proxy benchmark: a node:http server answering every request with a
 * small fixed body (keep-alive, content-length), so what bench/proxy.ts measures is the proxy
 * and the paywall, not the upstream. Prints {"event":"ready","url":…}.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { emit, onStdinLines } from './lib/lines.js';
import { mono, Trace } from './lib/trace.js';

/** With PAYCHAN_BENCH_TRACE: each request's arrival and the upstream's GC (bench/proxy-trace-report.ts). */
const trace = new Trace('upstream');
const body = Buffer.from('{"hello":"world"}');
const server = createServer((_req, res) => {
  if (trace.on) trace.row('up', mono());
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => emit({ event: 'ready', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }));
onStdinLines((line) => {
  const [command, verb, phase] = line.split(' ');
  if (command === 'trace') {
    if (verb === 'begin') trace.begin(phase!);
    else trace.end(phase!);
    emit({ event: 'trace', verb });
    return;
  }
  if (line === 'cpu') {
    const u = process.cpuUsage();
    emit({ event: 'cpu', us: u.user + u.system });
  }
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
