/**
 * The {@link ChainBackend} adapter for a full node's JSON-RPC, speaking both dialects paychan
 * meets: btcd (what the tests and the demo run) and Bitcoin Core (what users run).
 *
 * The two agree on most calls; where they differ, the difference is spelled out next to the call
 * (`getrawtransaction`'s verbose flag, fee estimation, how the tip is read). Anything both can
 * do the same way is done that way, even if one dialect has a shortcut: blocks are fetched raw
 * (`getblock hash 0`) and parsed here with bitcoinjs-lib instead of trusting either node's verbose
 * JSON, so the two dialects share one code path where correctness matters most (finding spends).
 *
 * Requirements on the node, checked when connecting so they fail early and loudly: a transaction
 * index (btcd `--txindex`, bitcoind `-txindex=1`), since without one a confirmed transaction
 * looks "unknown" and a watcher would draw the wrong conclusion; and for bitcoind version 24 or
 * later (`gettxspendingprevout`, used to find spends in the mempool).
 */
import { Block, Transaction } from 'bitcoinjs-lib';
import {
  BroadcastRejectedError,
  ChainBackendError,
  type Block as ChainBlock,
  type BlockTip,
  type ChainBackend,
  type Outpoint,
  type OutpointStatus,
  type RegtestMining,
  type TxStatus,
} from './backend.js';
import { btcPerKvbToSatPerVb, btcToSat } from './btc-amount.js';
import { RpcClient, RpcError, type RpcClientOptions } from './rpc-client.js';
import type { NetworkName } from '../protocol/network.js';

/** Options for {@link connectRpcBackend}. */
export interface RpcBackendOptions {
  /** `http(s)://host:port`, e.g. `http://127.0.0.1:18443`, without credentials. */
  readonly url: string;
  readonly user: string;
  readonly pass: string;
  /** When given, connecting fails unless the node runs this chain. */
  readonly network?: NetworkName;
  /** How often `subscribeTips` asks for the best block hash; default 200 ms. */
  readonly pollIntervalMs?: number;
  /** Per-call RPC timeout; default 30 000 ms. */
  readonly timeoutMs?: number;
  /** See {@link RpcClientOptions.relocate}. */
  readonly relocate?: RpcClientOptions['relocate'];
  /**
   * Told about failed tip polls (the poller keeps trying). Default: ignored, because the next
   * successful poll catches up and callers already handle a silent node by re-reading.
   */
  readonly onPollError?: (err: unknown) => void;
}

/**
 * Which node software answers: the two disagree on a few calls, and this adapter is the only
 * place that knows it (the port's callers see {@link ChainBackend.name} and capabilities).
 */
type RpcDialect = 'btcd' | 'bitcoind';

/** What `testmempoolaccept` says about a transaction. */
export type TestAcceptResult =
  | { readonly allowed: true; readonly txid: string; readonly vsize?: number; readonly feeSat?: bigint }
  | { readonly allowed: false; readonly txid: string; readonly reason: string };

/**
 * The JSON-RPC adapter's own face: the port, plus what only a full node's RPC offers. Only code
 * that built this adapter itself sees it (regtest tooling, tests, benchmarks); everything in
 * src that merely uses a chain holds a {@link ChainBackend}.
 */
export interface RpcChainBackend extends ChainBackend {
  /**
   * Asks the mempool whether it would accept `txHex`, without broadcasting it.
   * @throws TypeError if `txHex` is not a serialized transaction. @throws ChainBackendError
   */
  testAccept(txHex: string): Promise<TestAcceptResult>;
}

/** Mining many blocks takes longer than an ordinary call's timeout. */
const MINING_TIMEOUT_MS = 300_000;
/** btcd's estimator looks at most this many blocks ahead (`estimateFeeDepth` in its source). */
const BTCD_MAX_FEE_TARGET = 25;
/** Bitcoin Core 24.0 added `gettxspendingprevout`. */
const MIN_BITCOIND_VERSION = 240000;
/**
 * `testmempoolaccept`'s fee-rate ceiling: Bitcoin Core's default, passed explicitly because
 * btcd v0.26 requires the argument (it answers "wrong number of params" without it).
 */
const MAX_FEE_RATE_BTC_PER_KVB = 0.1;
/** Node reject reasons that mean "I already have it": broadcast then succeeds. */
const ALREADY_KNOWN =
  /already have transaction|txn-already-in-mempool|txn-already-known|already in block ?chain|already exists in blockchain|outputs already in utxo set/i;
/** RPC codes under which nodes report a refused transaction (decode, verify, reject, in chain). */
const TX_REFUSED_CODES = new Set([-22, -25, -26, -27]);

/**
 * Connects to a btcd or bitcoind node, finds out which it is and checks it can serve paychan.
 * @returns a connected backend; call `close()` when done.
 * @throws TypeError if `url` is not an `http://` or `https://` URL.
 * @throws ChainBackendError if the node cannot be reached, refuses the credentials, is neither
 *   btcd nor bitcoind, runs another chain than `network`, lacks a transaction index, or is a
 *   bitcoind older than 24.0.
 */
export async function connectRpcBackend(options: RpcBackendOptions): Promise<RpcChainBackend> {
  const client = new RpcClient({ url: options.url, user: options.user, pass: options.pass, timeoutMs: options.timeoutMs, relocate: options.relocate });
  try {
    const dialect = await detectDialect(client);
    client.label = `${dialect} at ${options.url}`;
    const info = record(await client.call('getblockchaininfo'), client, 'getblockchaininfo');
    const network = networkOf(str(info, 'chain', client, 'getblockchaininfo'), client);
    if (options.network !== undefined && options.network !== network) {
      throw new ChainBackendError(client.label, 'connect', `the node runs ${network}, but ${options.network} was asked for`);
    }
    await requireTxIndex(dialect, client);
    const backend = new RpcBackend(client, dialect, network, options);
    await backend.getTip(); // seeds the tip subscribers start from
    return backend;
  } catch (err) {
    client.close();
    throw err;
  }
}

/** btcd answers `version` with a `btcdjsonrpcapi` entry; Bitcoin Core has `getnetworkinfo`. */
async function detectDialect(client: RpcClient): Promise<RpcDialect> {
  try {
    const net = record(await client.call('getnetworkinfo'), client, 'getnetworkinfo');
    const version = num(net, 'version', client, 'getnetworkinfo');
    const subversion = typeof net.subversion === 'string' ? net.subversion : '?';
    if (version < MIN_BITCOIND_VERSION) {
      throw new ChainBackendError(client.label, 'connect', `bitcoind ${subversion} is too old: paychan needs Bitcoin Core 24.0 or later`);
    }
    return 'bitcoind';
  } catch (err) {
    // btcd answers getnetworkinfo with "Command unimplemented" (-1); anything else is fatal.
    if (!(err instanceof RpcError)) throw err;
  }
  try {
    const version = record(await client.call('version'), client, 'version');
    if ('btcdjsonrpcapi' in version) return 'btcd';
  } catch (err) {
    if (!(err instanceof RpcError)) throw err;
  }
  throw new ChainBackendError(client.label, 'connect', 'the node is neither btcd nor bitcoind (it answers neither `version` nor `getnetworkinfo`)');
}

async function requireTxIndex(dialect: RpcDialect, client: RpcClient): Promise<void> {
  const missing = (flag: string): ChainBackendError =>
    new ChainBackendError(client.label, 'connect', `the node has no transaction index; restart it with ${flag} (paychan looks up confirmed transactions by txid)`);
  if (dialect === 'bitcoind') {
    const indexes = record(await client.call('getindexinfo'), client, 'getindexinfo');
    if (!('txindex' in indexes)) throw missing('-txindex=1');
    return;
  }
  // btcd has no call that lists its indexes; looking up a txid that cannot exist tells them apart:
  // "The transaction index must be enabled ... (specify --txindex)" vs "No information available".
  try {
    await client.call('getrawtransaction', ['00'.repeat(32), 0]);
  } catch (err) {
    if (err instanceof RpcError && /--txindex/.test(err.rpcMessage)) throw missing('--txindex');
    if (!(err instanceof RpcError)) throw err;
  }
}

function networkOf(chain: string, client: RpcClient): NetworkName {
  switch (chain) {
    case 'main':
    case 'mainnet':
      return 'mainnet';
    case 'test':
    case 'testnet3':
    case 'testnet4':
      return 'testnet';
    case 'signet':
      return 'signet';
    case 'regtest':
      return 'regtest';
    default:
      throw new ChainBackendError(client.label, 'connect', `the node runs chain "${chain}", which paychan does not support`);
  }
}

class RpcBackend implements RpcChainBackend {
  readonly name: string;
  readonly mining: RegtestMining | undefined;
  /** For mining only, with its long timeout; opened on first use. */
  private miningClient: RpcClient | undefined;
  /**
   * For broadcasts only (sockets of their own): a burst of fundings, each a broadcast, must not
   * queue the tip poll, the funding watcher or the closer's checks behind it (found from outside:
   * every node call shared one client of 4 sockets with an unbounded queue). Opened on first use.
   */
  private broadcastClient: RpcClient | undefined;
  private readonly pollIntervalMs: number;
  private readonly onPollError: (err: unknown) => void;
  private readonly listeners = new Set<(tip: BlockTip) => void>();
  /** The newest tip any call has seen. */
  private lastTip: BlockTip | undefined;
  /** The tip subscribers were last told about (at first, the newest seen when they subscribed). */
  private polledHash: string | undefined;
  /** Pending poll; undefined while a poll runs or when nobody listens. */
  private pollTimer: NodeJS.Timeout | undefined;
  private polling = false;
  private closed = false;

  constructor(
    private readonly client: RpcClient,
    private readonly dialect: RpcDialect,
    readonly network: NetworkName,
    options: RpcBackendOptions,
  ) {
    this.name = dialect;
    // bitcoind mines to any address; btcd has no generatetoaddress, only its --miningaddr.
    if (network === 'regtest') this.mining = { paysAnyAddress: dialect === 'bitcoind', mine: (blocks, address) => this.mine(blocks, address, options) };
    this.pollIntervalMs = options.pollIntervalMs ?? 200;
    this.onPollError = options.onPollError ?? (() => {});
  }

  async getTip(): Promise<BlockTip> {
    let tip: BlockTip;
    if (this.dialect === 'btcd') {
      // btcd's getbestblock gives hash and height from one snapshot.
      const best = record(await this.rpc('getbestblock'), this.client, 'getbestblock');
      tip = { height: num(best, 'height', this.client, 'getbestblock'), hash: str(best, 'hash', this.client, 'getbestblock') };
    } else {
      const info = record(await this.rpc('getblockchaininfo'), this.client, 'getblockchaininfo');
      tip = { height: num(info, 'blocks', this.client, 'getblockchaininfo'), hash: str(info, 'bestblockhash', this.client, 'getblockchaininfo') };
    }
    this.lastTip = tip;
    return tip;
  }

  async getTransaction(txid: string): Promise<TxStatus | null> {
    checkTxid(txid);
    let raw: unknown;
    try {
      // btcd's verbose flag is an int; bitcoind takes a bool (or an int verbosity since v25).
      raw = await this.rpc('getrawtransaction', [txid, this.dialect === 'btcd' ? 1 : true]);
    } catch (err) {
      if (err instanceof RpcError && err.rpcCode === -5) return null; // "No such transaction"
      throw err;
    }
    const tx = record(raw, this.client, 'getrawtransaction');
    const hex = str(tx, 'hex', this.client, 'getrawtransaction');
    const confirmations = typeof tx.confirmations === 'number' ? tx.confirmations : 0;
    if (typeof tx.blockhash !== 'string') return { hex, confirmations: 0 }; // found in the mempool
    // bitcoind's txindex still finds a transaction whose block was reorganized away, with
    // confirmations 0; it is neither in the mempool (that is searched first) nor on the chain.
    if (confirmations <= 0) return null;
    const header = record(await this.rpc('getblockheader', [tx.blockhash, true]), this.client, 'getblockheader');
    return { hex, confirmations, blockHeight: num(header, 'height', this.client, 'getblockheader') };
  }

  async broadcast(txHex: string): Promise<string> {
    const txid = txidOf(txHex);
    try {
      if (this.closed) throw new ChainBackendError(this.client.label, 'sendrawtransaction', 'backend is closed');
      this.broadcastClient ??= this.client.sibling();
      await this.broadcastClient.call('sendrawtransaction', [txHex]);
      return txid;
    } catch (err) {
      if (!(err instanceof RpcError) || !TX_REFUSED_CODES.has(err.rpcCode)) throw err;
      if (err.rpcCode === -27 || ALREADY_KNOWN.test(err.rpcMessage)) return txid;
      // A confirmed transaction whose outputs are all spent looks like a double spend to the
      // mempool ("missing inputs"); the contract counts it as accepted, so ask the index.
      if ((await this.getTransaction(txid)) !== null) return txid;
      throw new BroadcastRejectedError(txid, err.rpcMessage);
    }
  }

  async testAccept(txHex: string): Promise<TestAcceptResult> {
    const txid = txidOf(txHex);
    let raw: unknown;
    try {
      raw = await this.rpc('testmempoolaccept', [[txHex], MAX_FEE_RATE_BTC_PER_KVB]);
    } catch (err) {
      if (err instanceof RpcError && TX_REFUSED_CODES.has(err.rpcCode)) return { allowed: false, txid, reason: err.rpcMessage };
      throw err;
    }
    const first: unknown = Array.isArray(raw) ? raw[0] : undefined;
    const result = record(first, this.client, 'testmempoolaccept');
    // btcd omits `allowed` when false (Go omitempty), bitcoind always sends it.
    if (result.allowed !== true) {
      const reason = typeof result['reject-reason'] === 'string' ? result['reject-reason'] : 'rejected (the node gave no reason)';
      return { allowed: false, txid, reason };
    }
    const fees = result.fees;
    const base = typeof fees === 'object' && fees !== null && 'base' in fees && typeof fees.base === 'number' ? fees.base : undefined;
    return {
      allowed: true,
      txid,
      ...(typeof result.vsize === 'number' ? { vsize: result.vsize } : {}),
      ...(base !== undefined ? { feeSat: btcToSat(base) } : {}),
    };
  }

  async getOutpointStatus(outpoint: Outpoint, searchFromHeight: number): Promise<OutpointStatus> {
    checkTxid(outpoint.txid);
    if (!Number.isInteger(outpoint.vout) || outpoint.vout < 0) throw new RangeError(`bad vout: ${outpoint.vout}`);
    if (!Number.isInteger(searchFromHeight) || searchFromHeight < 0) throw new RangeError(`bad height: ${searchFromHeight}`);

    const mempoolSpender = await this.mempoolSpender(outpoint);
    if (mempoolSpender !== null) return { state: 'spent', spendingTxid: mempoolSpender, confirmations: 0 };

    // Both dialects include mempool transactions' outputs with `true`; btcd (unlike bitcoind)
    // still lists an output spent by the mempool, which is why the mempool is asked first.
    let out: unknown;
    try {
      out = await this.rpc('gettxout', [outpoint.txid, outpoint.vout, true]);
    } catch (err) {
      // btcd answers -5 for a vout past the end of a mempool transaction; bitcoind answers null.
      if (!(err instanceof RpcError && err.rpcCode === -5)) throw err;
      out = null;
    }
    if (out !== null) {
      const utxo = record(out, this.client, 'gettxout');
      const spk = record(utxo.scriptPubKey, this.client, 'gettxout');
      return {
        state: 'unspent',
        valueSat: btcToSat(num(utxo, 'value', this.client, 'gettxout')),
        scriptHex: str(spk, 'hex', this.client, 'gettxout'),
        confirmations: num(utxo, 'confirmations', this.client, 'gettxout'),
      };
    }

    const funding = await this.getTransaction(outpoint.txid);
    if (funding === null || outpoint.vout >= Transaction.fromHex(funding.hex).outs.length) return { state: 'unknown' };

    const lowest = Math.max(searchFromHeight, funding.blockHeight ?? Number.MAX_SAFE_INTEGER);
    const found = await this.findConfirmedSpender(outpoint, lowest);
    if (found !== null) return { state: 'spent', ...found };
    // The spend may have entered the mempool after we looked there.
    const lateSpender = await this.mempoolSpender(outpoint);
    if (lateSpender !== null) return { state: 'spent', spendingTxid: lateSpender, confirmations: 0 };
    throw new ChainBackendError(
      this.client.label,
      'getOutpointStatus',
      `${outpoint.txid}:${outpoint.vout} is not in the UTXO set, yet no transaction at height ≥ ${lowest} or in the mempool spends it (searchFromHeight too high, or the output is unspendable)`,
    );
  }

  async getBlock(height: number): Promise<ChainBlock> {
    if (!Number.isInteger(height) || height < 0) throw new RangeError(`bad block height: ${height}`);
    const hash = await this.rpc('getblockhash', [height]);
    if (typeof hash !== 'string') throw unexpected(this.client, 'getblockhash', hash);
    const block = await this.rawBlock(hash);
    return { height, hash, txs: (block.transactions ?? []).map((tx) => tx.toHex()) };
  }

  async estimateFeeRate(targetBlocks: number): Promise<number | null> {
    if (!Number.isInteger(targetBlocks) || targetBlocks < 1) throw new RangeError(`bad confirmation target: ${targetBlocks}`);
    if (this.dialect === 'bitcoind') {
      const est = record(await this.rpc('estimatesmartfee', [targetBlocks]), this.client, 'estimatesmartfee');
      return typeof est.feerate === 'number' && est.feerate > 0 ? btcPerKvbToSatPerVb(est.feerate) : null;
    }
    // btcd: `estimatefee` (BTC/kB) errors until it has seen enough blocks, and answers 0 or -1
    // when it has no data; all of those mean "no estimate".
    let rate: unknown;
    try {
      rate = await this.rpc('estimatefee', [Math.min(targetBlocks, BTCD_MAX_FEE_TARGET)]);
    } catch (err) {
      if (err instanceof RpcError) return null;
      throw err;
    }
    return typeof rate === 'number' && rate > 0 ? btcPerKvbToSatPerVb(rate) : null;
  }

  /**
   * Polls `getbestblockhash`. Reports every tip that differs from the newest one this backend
   * had seen when `onTip` subscribed, so if the chain moved since this backend last looked, the
   * first report can be the tip that was already current at subscription: a harmless repeat,
   * where waiting to learn the current tip first could miss a block mined meanwhile.
   */
  subscribeTips(onTip: (tip: BlockTip) => void): () => void {
    const listener = (tip: BlockTip): void => onTip(tip);
    this.listeners.add(listener);
    if (this.pollTimer === undefined && !this.polling && !this.closed) {
      // New subscribers hear about tips after the newest one this backend has seen.
      this.polledHash = this.lastTip?.hash;
      this.schedulePoll();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0 && this.pollTimer !== undefined) {
        clearTimeout(this.pollTimer);
        this.pollTimer = undefined;
      }
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    if (this.pollTimer !== undefined) clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    this.client.close();
    this.miningClient?.close();
    this.broadcastClient?.close();
  }

  /**
   * One shared poller for all subscribers. Chained timeouts rather than an interval, so a slow
   * node never has two polls in flight; `unref()` so a subscription alone does not keep the
   * process alive. When several blocks arrive between two polls, only the newest tip is
   * reported: a tip is a position, and subscribers catch up on the heights in between with
   * `getBlock`.
   */
  private schedulePoll(): void {
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined;
      void this.poll();
    }, this.pollIntervalMs);
    this.pollTimer.unref();
  }

  private async poll(): Promise<void> {
    this.polling = true;
    try {
      const hash = await this.rpc('getbestblockhash');
      if (typeof hash !== 'string') throw unexpected(this.client, 'getbestblockhash', hash);
      if (hash !== this.polledHash) {
        const tip = await this.getTip();
        this.polledHash = tip.hash;
        for (const listener of [...this.listeners]) {
          try {
            listener(tip);
          } catch (err) {
            this.onPollError(err);
          }
        }
      }
    } catch (err) {
      this.onPollError(err);
    } finally {
      this.polling = false;
      if (this.listeners.size > 0 && !this.closed) this.schedulePoll();
    }
  }

  private async mine(blocks: number, address: string, options: RpcBackendOptions): Promise<string[]> {
    if (!Number.isInteger(blocks) || blocks < 1) throw new RangeError(`cannot mine ${blocks} blocks`);
    const [method, params] = this.dialect === 'bitcoind' ? ['generatetoaddress', [blocks, address]] : ['generate', [blocks]];
    if (this.closed) throw new ChainBackendError(this.client.label, method, 'backend is closed');
    this.miningClient ??= new RpcClient({ url: this.client.url, user: options.user, pass: options.pass, timeoutMs: MINING_TIMEOUT_MS, relocate: options.relocate });
    this.miningClient.label = this.client.label;
    const hashes = await this.miningClient.call(method, params);
    if (!Array.isArray(hashes) || hashes.length !== blocks || !hashes.every((h) => typeof h === 'string')) throw unexpected(this.client, method, hashes);
    return hashes as string[];
  }

  private async mempoolSpender(outpoint: Outpoint): Promise<string | null> {
    const raw = await this.rpc('gettxspendingprevout', [[{ txid: outpoint.txid, vout: outpoint.vout }]]);
    const first: unknown = Array.isArray(raw) ? raw[0] : undefined;
    const entry = record(first, this.client, 'gettxspendingprevout');
    return typeof entry.spendingtxid === 'string' ? entry.spendingtxid : null;
  }

  /**
   * Walks back from the tip by each block's parent hash (one call per block, and every block
   * read is on the same chain even if the tip moves meanwhile) down to `lowestHeight`. Backwards
   * because the spend a watcher asks about is usually recent.
   */
  private async findConfirmedSpender(
    outpoint: Outpoint,
    lowestHeight: number,
  ): Promise<{ spendingTxid: string; confirmations: number } | null> {
    const tip = await this.getTip();
    const wantHash = Buffer.from(outpoint.txid, 'hex').reverse();
    let hash = tip.hash;
    for (let height = tip.height; height >= lowestHeight; height--) {
      const block = await this.rawBlock(hash);
      for (const tx of (block.transactions ?? []).slice(1)) {
        for (const input of tx.ins) {
          if (input.index === outpoint.vout && wantHash.equals(input.hash)) {
            return { spendingTxid: tx.getId(), confirmations: tip.height - height + 1 };
          }
        }
      }
      hash = Buffer.from(block.prevHash ?? new Uint8Array(32)).reverse().toString('hex');
    }
    return null;
  }

  private async rawBlock(hash: string): Promise<Block> {
    const hex = await this.rpc('getblock', [hash, 0]);
    if (typeof hex !== 'string') throw unexpected(this.client, 'getblock', hex);
    const block = Block.fromHex(hex);
    if (block.getId() !== hash) throw unexpected(this.client, 'getblock', `block ${block.getId()} instead of ${hash}`);
    return block;
  }

  private rpc(method: string, params: readonly unknown[] = []): Promise<unknown> {
    if (this.closed) return Promise.reject(new ChainBackendError(this.client.label, method, 'backend is closed'));
    return this.client.call(method, params);
  }
}

function checkTxid(txid: string): void {
  if (!/^[0-9a-f]{64}$/.test(txid)) throw new TypeError(`not a txid (64 lowercase hex digits): ${txid}`);
}

/** @throws TypeError if `txHex` is not a serialized transaction. */
function txidOf(txHex: string): string {
  try {
    return Transaction.fromHex(txHex).getId();
  } catch (err) {
    throw new TypeError(`not a raw transaction: ${(err as Error).message}`);
  }
}

function unexpected(client: RpcClient, method: string, got: unknown): ChainBackendError {
  const shown = typeof got === 'string' ? got : JSON.stringify(got);
  return new ChainBackendError(client.label, method, `unexpected answer: ${String(shown).slice(0, 200)}`);
}

function record(value: unknown, client: RpcClient, method: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw unexpected(client, method, value);
  return value as Record<string, unknown>;
}

function str(obj: Record<string, unknown>, key: string, client: RpcClient, method: string): string {
  const value = obj[key];
  if (typeof value !== 'string') throw unexpected(client, method, obj);
  return value;
}

function num(obj: Record<string, unknown>, key: string, client: RpcClient, method: string): number {
  const value = obj[key];
  if (typeof value !== 'number') throw unexpected(client, method, obj);
  return value;
}
