/**
 * A JSON-RPC proxy between the payee process and the node that can hold chosen calls: while a
 * method is held, its requests get no answer (and never reach the node) until released or
 * dropped. With it the harness can SIGKILL the payee at an exact point, e.g. after the payee
 * stored its close but before the node received it (`hold('sendrawtransaction')`).
 *
 * Everything else is forwarded unchanged, credentials included (the node checks them). Hop-by-hop
 * headers stay on their hop: btcd closes every connection after its answer, the proxy keeps its
 * client's connection alive, as bitcoind does.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RpcCall {
  readonly method: string;
  readonly params: unknown;
  /** True if the call was held (not forwarded when it arrived). */
  readonly held: boolean;
}

export interface RpcProxy {
  /** `http://127.0.0.1:<port>`: give this to the payee as its --rpc-url. */
  readonly url: string;
  /** Requests of `method` get no answer from now on (until {@link release} or {@link drop}). */
  hold(method: string): void;
  /** Forwards the held requests of `method` (their answers go to clients still waiting) and stops holding it. */
  release(method: string): void;
  /** Discards the held requests of `method` unforwarded (the node never sees them) and stops holding it. */
  drop(method: string): void;
  /** Resolves with the next call of `method` that arrives (held or forwarded). */
  nextCall(method: string): Promise<RpcCall>;
  close(): Promise<void>;
}

interface Pending {
  readonly method: string;
  readonly forward: () => void;
}

function hopHeaders<T extends http.IncomingHttpHeaders>(headers: T): Omit<T, 'connection' | 'keep-alive'> {
  const { connection: _c, 'keep-alive': _k, ...rest } = headers;
  return rest;
}

export async function startRpcProxy(target: string): Promise<RpcProxy> {
  const upstream = new URL(target);
  const holding = new Set<string>();
  const pending: Pending[] = [];
  let waiters: { method: string; resolve: (c: RpcCall) => void }[] = [];
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const forward = () => {
        const up = http.request(
          { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: hopHeaders(req.headers), agent },
          (upRes) => {
            res.writeHead(upRes.statusCode ?? 502, hopHeaders(upRes.headers));
            upRes.pipe(res);
          },
        );
        up.on('error', (err) => {
          if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
          res.end(`proxy: ${err.message}`);
        });
        up.end(body);
      };
      let method = '';
      let params: unknown;
      try {
        const parsed = JSON.parse(body.toString('utf8')) as { method?: unknown; params?: unknown };
        method = typeof parsed.method === 'string' ? parsed.method : '';
        params = parsed.params;
      } catch {
        // Not JSON-RPC: forwarded as it is; the node answers.
      }
      const held = holding.has(method);
      if (held) pending.push({ method, forward });
      else forward();
      const call: RpcCall = { method, params, held };
      const due = waiters.filter((w) => w.method === method);
      waiters = waiters.filter((w) => w.method !== method);
      for (const w of due) w.resolve(call);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const take = (method: string): Pending[] => {
    holding.delete(method);
    const mine = pending.filter((p) => p.method === method);
    const rest = pending.filter((p) => p.method !== method);
    pending.length = 0;
    pending.push(...rest);
    return mine;
  };

  return {
    url: `http://127.0.0.1:${port}`,
    hold(method) {
      holding.add(method);
    },
    release(method) {
      for (const p of take(method)) p.forward();
    },
    drop(method) {
      take(method);
    },
    nextCall(method) {
      return new Promise((resolve) => waiters.push({ method, resolve }));
    },
    async close() {
      pending.length = 0;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
