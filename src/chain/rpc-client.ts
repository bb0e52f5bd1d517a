/**
 * A minimal JSON-RPC 1.0 client over HTTP, the protocol both btcd and bitcoind speak.
 *
 * Deliberately small: one request per call (no batching), Basic auth, a keep-alive agent so the
 * tip poller and block scans reuse sockets, and a per-call timeout. Every failure becomes a
 * {@link ChainBackendError} naming the node's URL and the method, so a user reading the message
 * knows which node and which call to look at; errors the node itself reports are the subclass
 * {@link RpcError}, which keeps the node's numeric code for callers that branch on it.
 * HTTP, or HTTPS for a node behind a TLS-terminating proxy (checked against Node's trust store;
 * a self-signed certificate such as btcd's own `rpc.cert` needs NODE_EXTRA_CA_CERTS). btcd
 * allows `--notls` on 127.0.0.1 and bitcoind has no TLS at all, so a local node is plain HTTP.
 */
import http from 'node:http';
import https from 'node:https';
import { ChainBackendError } from './backend.js';

/** Options for {@link RpcClient}. */
export interface RpcClientOptions {
  /** `http(s)://host:port[/path]`, e.g. `http://127.0.0.1:18443`; no credentials in it. */
  readonly url: string;
  readonly user: string;
  readonly pass: string;
  /** Per-call timeout; default 30 000 ms. */
  readonly timeoutMs?: number;
  /**
   * Where the node is now, asked when it cannot be reached or refuses the credentials: a node
   * that restarted on another port or with another password (e.g. the local regtest node, whose
   * node.json says) is followed there, and the call is tried once more.
   */
  readonly relocate?: () => { readonly url: string; readonly user: string; readonly pass: string } | null;
}

/** The node answered with a JSON-RPC error object. */
export class RpcError extends ChainBackendError {
  constructor(
    backend: string,
    method: string,
    /** The node's numeric error code (e.g. -5 not found, -26 rejected, -32601 no such method). */
    readonly rpcCode: number,
    /** The node's message, verbatim. */
    readonly rpcMessage: string,
  ) {
    super(backend, method, `${rpcMessage} (RPC error ${rpcCode})`);
    this.name = 'RpcError';
  }
}

function basicAuth(user: string, pass: string): string {
  return 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');
}

/** JSON-RPC error code for "no such method" (both btcd and bitcoind). */
export const RPC_METHOD_NOT_FOUND = -32601;

/** Bodies above this are refused: the largest legitimate answer is a 4 MB block as hex. */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

interface RpcResponse {
  readonly result?: unknown;
  readonly error?: { readonly code?: unknown; readonly message?: unknown } | null;
}

function isHttp(url: URL): boolean {
  return url.protocol === 'http:' || url.protocol === 'https:';
}

/**
 * Idle sockets are dropped after 10 s, before bitcoind's own 30 s idle timeout
 * (-rpcservertimeout) can close one just as we reuse it. btcd answers every request with
 * `Connection: close`, so against btcd each call opens a fresh connection anyway.
 */
function newAgent(url: URL): http.Agent {
  const options = { keepAlive: true, maxSockets: 4, timeout: 10_000 };
  return url.protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
}

/** Talks JSON-RPC 1.0 to one node. */
export class RpcClient {
  /** Names the node in error messages; the backend refines it once it knows the dialect. */
  label: string;
  url: string;
  private target: URL;
  private auth: string;
  private readonly relocate: RpcClientOptions['relocate'];
  private readonly timeoutMs: number;
  private agent: http.Agent;
  private nextId = 1;

  /** @throws TypeError if `url` is not an `http://` or `https://` URL. */
  constructor(options: RpcClientOptions) {
    let target: URL;
    try {
      target = new URL(options.url);
    } catch {
      throw new TypeError(`not a URL: ${options.url}`);
    }
    if (!isHttp(target)) {
      throw new TypeError(`only http:// and https:// RPC URLs are supported, got ${options.url}`);
    }
    this.target = target;
    this.agent = newAgent(target);
    this.url = options.url;
    this.label = `node at ${options.url}`;
    this.auth = basicAuth(options.user, options.pass);
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.relocate = options.relocate;
  }

  /**
   * Calls `method`; if the node cannot be reached or refuses the credentials and
   * `relocate` names another place, moves there and calls once more.
   * @returns the `result` member of the answer, unchecked: callers validate its shape.
   * @throws RpcError when the node answers with an error object.
   * @throws ChainBackendError when the node cannot be reached, times out, refuses the
   *   credentials or answers with something that is not JSON-RPC.
   */
  async call(method: string, params: readonly unknown[] = []): Promise<unknown> {
    try {
      return await this.callOnce(method, params);
    } catch (err) {
      if (!this.relocate || err instanceof RpcError || !(err instanceof ChainBackendError) || !this.moved()) throw err;
      return this.callOnce(method, params);
    }
  }

  /** Follows `relocate` if it names another URL or credentials. @returns whether it moved. */
  private moved(): boolean {
    const next = this.relocate?.();
    if (!next) return false;
    const auth = basicAuth(next.user, next.pass);
    if (next.url === this.url && auth === this.auth) return false;
    let target: URL;
    try {
      target = new URL(next.url);
    } catch {
      return false;
    }
    if (!isHttp(target)) return false;
    this.label = this.label.replace(this.url, next.url);
    this.url = next.url;
    this.target = target;
    this.auth = auth;
    this.agent.destroy(); // idle sockets to the old place
    this.agent = newAgent(target);
    return true;
  }

  private async callOnce(method: string, params: readonly unknown[]): Promise<unknown> {
    const body = JSON.stringify({ jsonrpc: '1.0', id: this.nextId++, method, params });
    const { status, text } = await this.post(method, body);
    if (status === 401 || status === 403) {
      throw new ChainBackendError(this.label, method, `authentication failed (HTTP ${status}): check the RPC user and password`);
    }
    let parsed: RpcResponse;
    try {
      parsed = JSON.parse(text) as RpcResponse;
    } catch {
      throw new ChainBackendError(this.label, method, `HTTP ${status}, not a JSON-RPC answer: ${text.slice(0, 200)}`);
    }
    if (parsed === null || typeof parsed !== 'object') {
      throw new ChainBackendError(this.label, method, `HTTP ${status}, not a JSON-RPC answer: ${text.slice(0, 200)}`);
    }
    // bitcoind reports RPC errors with HTTP 500/404 and a JSON body, btcd with HTTP 200: the body decides.
    if (parsed.error !== null && parsed.error !== undefined) {
      const code = typeof parsed.error.code === 'number' ? parsed.error.code : 0;
      const message = typeof parsed.error.message === 'string' ? parsed.error.message : JSON.stringify(parsed.error);
      throw new RpcError(this.label, method, code, message);
    }
    if (status !== 200) {
      throw new ChainBackendError(this.label, method, `HTTP ${status}: ${text.slice(0, 200)}`);
    }
    return parsed.result;
  }

  /**
   * Another client to the same node (its current place, credentials, timeout and `relocate`)
   * with sockets of its own: calls on one never queue behind the other's.
   */
  sibling(): RpcClient {
    const other = new RpcClient({ url: this.url, user: '', pass: '', timeoutMs: this.timeoutMs, relocate: this.relocate });
    other.auth = this.auth;
    other.label = this.label;
    return other;
  }

  /** Closes idle keep-alive sockets. Calls made afterwards open new ones. */
  close(): void {
    this.agent.destroy();
  }

  private post(method: string, body: string): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const fail = (message: string, cause?: unknown): void =>
        reject(new ChainBackendError(this.label, method, message, { cause }));
      const req = (this.target.protocol === 'https:' ? https : http).request(
        this.target,
        {
          method: 'POST',
          agent: this.agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            authorization: this.auth,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_RESPONSE_BYTES) {
              res.destroy();
              fail(`answer larger than ${MAX_RESPONSE_BYTES} bytes`);
              return;
            }
            chunks.push(chunk);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', (err) => fail(`connection to ${this.url} broke while reading the answer: ${err.message}`, err));
        },
      );
      req.setTimeout(this.timeoutMs, () => {
        req.destroy();
        fail(`no answer from ${this.url} within ${this.timeoutMs} ms`);
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        const why = err.code ? `${err.code}` : err.message;
        fail(`cannot reach the node at ${this.url} (${why}): is it running, and is the RPC URL right?`, err);
      });
      req.end(body);
    });
  }
}
