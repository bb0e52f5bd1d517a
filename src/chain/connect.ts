/**
 * `connectBackend(url)`: the one place that turns a chain source's URL into a connected
 * {@link ChainBackend}. The URL's scheme picks the adapter from {@link ADAPTERS}; nothing else in
 * paychan names an adapter, so the CLI, the demo, the benchmarks and the tests reach any backend
 * the same way.
 *
 * Credentials: given either in the URL's user-info (`http://user:pass@host:port`, percent-encoded
 * as URLs require) or as `options.user`/`options.pass`, never both (which one would win is a
 * guess we refuse to make). They are taken out of the URL before an adapter sees it, so error
 * messages and logs, which name the URL, never show a password.
 */
import type { ChainBackend } from './backend.js';
import { connectRpcBackend, type RpcBackendOptions } from './rpc-backend.js';
import type { NetworkName } from '../protocol/network.js';

/** Options for {@link connectBackend}; each adapter reads those that apply to it. */
export interface ConnectBackendOptions {
  /** When given, connecting fails unless the backend serves this chain. */
  readonly network?: NetworkName;
  /** User name, for backends that need one (JSON-RPC); or put it in the URL. */
  readonly user?: string;
  /** Password, for backends that need one (JSON-RPC); or put it in the URL. */
  readonly pass?: string;
  /** How often a polling backend asks for the best block; the adapter's default otherwise. */
  readonly pollIntervalMs?: number;
  /** Per-call timeout; the adapter's default otherwise. */
  readonly timeoutMs?: number;
  /** Told about failed tip polls (the backend keeps trying). */
  readonly onPollError?: (err: unknown) => void;
  /** Where the node is now, for a node that may move (see RpcClientOptions.relocate). */
  readonly relocate?: RpcBackendOptions['relocate'];
}

/** A user and password, taken from the URL or the options. */
export interface BackendCredentials {
  readonly user: string;
  readonly pass: string;
}

/**
 * What each adapter exports for the table: connects one kind of backend. `url` carries no
 * credentials (they come apart, when given; undefined when there were none).
 * @throws TypeError for credentials or options this adapter cannot use; whatever it throws
 *   connecting (ChainBackendError).
 */
export type BackendConnector = (url: string, credentials: BackendCredentials | undefined, options: ConnectBackendOptions) => Promise<ChainBackend>;

/** Full nodes (btcd, Bitcoin Core) over JSON-RPC: the RPC server needs a user and password. */
const jsonRpc: BackendConnector = (url, credentials, options) => {
  if (credentials === undefined) {
    throw new TypeError(`the JSON-RPC node at ${url} needs a user and password: put them in the URL (http://user:pass@host:port) or pass them as options`);
  }
  return connectRpcBackend({ ...options, url, user: credentials.user, pass: credentials.pass });
};

/**
 * URL scheme → adapter: the only table of chain backends. Adding one (an Esplora REST backend,
 * say) is one file (e.g. esplora-backend.ts, exporting a {@link BackendConnector}
 * `connectEsplora`) plus one line here: `'esplora+https:': connectEsplora`. It needs a scheme of
 * its own like that, though Esplora is served over https, because `http:`/`https:` mean a
 * node's JSON-RPC, as in Bitcoin Core's own tools.
 */
const ADAPTERS: Readonly<Record<string, BackendConnector>> = {
  'http:': jsonRpc,
  'https:': jsonRpc,
};

/** The URL schemes {@link connectBackend} knows, e.g. for a command's help text. */
export const BACKEND_SCHEMES: readonly string[] = Object.freeze(Object.keys(ADAPTERS));

/**
 * Connects to the chain source at `url` with the adapter its scheme names.
 * @returns a connected backend; call `close()` when done.
 * @throws TypeError if `url` is not a URL, its scheme is not in the table (the message lists
 *   the known ones), credentials are given both in the URL and as options, only one of user and
 *   password is given, or the adapter needs credentials that are missing.
 * @throws ChainBackendError from the adapter when the backend cannot be reached or cannot serve
 *   paychan (wrong network, missing index, ...).
 */
export async function connectBackend(url: string, options: ConnectBackendOptions = {}): Promise<ChainBackend> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`not a URL: ${redact(url)}`);
  }
  const adapter = Object.hasOwn(ADAPTERS, parsed.protocol) ? ADAPTERS[parsed.protocol] : undefined;
  if (adapter === undefined) {
    throw new TypeError(`no chain backend for ${parsed.protocol} URLs (${redact(url)}); known schemes: ${BACKEND_SCHEMES.join(', ')}`);
  }
  const inUrl = parsed.username !== '' || parsed.password !== '';
  if (inUrl && (options.user !== undefined || options.pass !== undefined)) {
    throw new TypeError(`credentials given twice, in the URL and as options (${redact(url)}): give them once`);
  }
  let credentials: BackendCredentials | undefined;
  if (inUrl) {
    credentials = { user: decodeURIComponent(parsed.username), pass: decodeURIComponent(parsed.password) };
    parsed.username = '';
    parsed.password = '';
  } else if (options.user !== undefined && options.pass !== undefined) {
    credentials = { user: options.user, pass: options.pass };
  } else if (options.user !== undefined || options.pass !== undefined) {
    throw new TypeError(`a user without a password, or a password without a user, for ${redact(url)}: give both`);
  }
  const { user: _user, pass: _pass, ...rest } = options;
  return adapter(inUrl ? withoutTrailingSlash(parsed, url) : url, credentials, rest);
}

/** `url` as given, minus the user-info; `new URL` would add a `/` path the caller never wrote. */
function withoutTrailingSlash(parsed: URL, original: string): string {
  const text = parsed.href;
  return text.endsWith('/') && !original.endsWith('/') ? text.slice(0, -1) : text;
}

/** `url` with any password replaced, for error messages. */
function redact(url: string): string {
  return url.replace(/\/\/([^/@]*):[^/@]*@/, '//$1:***@');
}
