/**
 * A payer on disk: its data dir (locked, see data-dir.ts) with the one wallet (seed file + state
 * in the store, shared with duplex side A), its channels in SQLite, and the WebSocket link to a
 * payee. What the `paychan payer ...` commands and the demo's payer process
 * run. One channel is "current" (the last opened); commands act on it.
 */
import { randomBytes } from 'node:crypto';
import { address as baddress } from 'bitcoinjs-lib';
import type { ChainBackend } from '../chain/backend.js';
import { secp256k1 } from '../crypto/index.js';
import { bitcoinjsNetwork, type NetworkName } from '../protocol/network.js';
import { CannotPayError, checkPayments, type PayerState } from '../protocol/payer-machine.js';
import { isExpiring, payerPolicy, type PayerPolicy } from '../protocol/policy.js';
import { PayerClient, type ExternalFunding, type OpenOptions } from '../payer/payer-client.js';
import type { Store } from '../store/store.js';
import { WireIds } from '../protocol/wire-bytes.js';
import { connectPayee, type WsPeerLink } from '../transport/ws-client.js';
import { WalletKeys } from '../wallet/keys.js';
import { Wallet } from '../wallet/wallet.js';
import { loadWalletState, openDataDir, saveWalletState, type DataDir } from './data-dir.js';
import { openDuplexSide, type DuplexSide } from './duplex-side.js';

const META_CURRENT = 'current-channel';
/** The tempId of a channel proposed for an external wallet's funding and not funded yet ('' when none). */
const META_PENDING_EXTERNAL = 'pending-external-funding';
const metaUrl = (tempId: string) => `channel-url:${tempId}`;

export interface PayerAppOptions {
  readonly network: NetworkName;
  readonly backend: ChainBackend;
  readonly dataDir: string;
  readonly fundingFeeRateSatPerVb: number;
  /**
   * How long the first connection to a payee may take, ms; then opening or resuming fails with
   * a PayeeUnreachableError saying why. Drops after it connected are retried without a deadline.
   * Default: no deadline.
   */
  readonly connectTimeoutMs?: number;
  /**
   * How long reusing a stored channel whose funding has not confirmed yet (AwaitingOpen: a run
   * opened it and stopped) may wait for it, ms; then the reuse fails with a
   * ChannelNotReadyError saying what it waits for. Default 60,000.
   */
  readonly awaitOpenTimeoutMs?: number;
  readonly log: (line: string) => void;
}

/** A stored channel to reuse still waits for its funding to confirm, past the wait's bound. */
export class ChannelNotReadyError extends Error {
  readonly code = 'CHANNEL_NOT_READY';
  constructor(
    readonly channelId: string,
    readonly url: string,
    waitedMs: number,
  ) {
    super(`the channel ${channelId} to ${url} still waits for its funding to confirm after ${waitedMs / 1000} s (on regtest: paychan regtest mine 1); try again once it has confirmed`);
    this.name = 'ChannelNotReadyError';
  }
}

/** A channel client with its live link to the payee. */
export interface ConnectedChannel {
  readonly client: PayerClient;
  readonly link: WsPeerLink;
  readonly url: string;
}

export class PayerApp {
  private constructor(
    private readonly options: PayerAppOptions,
    readonly wallet: Wallet,
    private readonly dir: DataDir,
    private readonly keys: WalletKeys,
  ) {}

  /** The node this payer talks to. */
  get backend(): ChainBackend {
    return this.options.backend;
  }

  /** The data dir's one store (channels, the wallet's state). */
  get store(): Store {
    return this.dir.store;
  }

  /**
   * Opens the payer's data dir (see openDataDir) and its wallet, and syncs the wallet.
   * @throws DataDirInUseError if another process uses the data dir.
   */
  static async open(options: PayerAppOptions): Promise<PayerApp> {
    const dir = await openDataDir(options.dataDir, { defaultDb: 'payer.db', log: options.log });
    try {
      const wallet = await Wallet.open({
        seed: dir.seed,
        network: options.network,
        backend: options.backend,
        secp: secp256k1(),
        state: await loadWalletState(dir.store),
      });
      const app = new PayerApp(options, wallet, dir, WalletKeys.fromSeed(dir.seed, options.network));
      await app.syncWallet();
      return app;
    } catch (err) {
      await dir.close().catch(() => undefined);
      throw err;
    }
  }

  /** Syncs the wallet with the chain and saves its state. */
  async syncWallet(): Promise<void> {
    await this.wallet.sync();
    await this.saveWallet();
  }

  async saveWallet(): Promise<void> {
    await saveWalletState(this.store, this.wallet);
  }

  /** Id of the channel commands act on, if any. */
  async currentChannelId(): Promise<string | undefined> {
    return this.store.getMeta(META_CURRENT);
  }

  /** A client with a fresh channel key (spent even if the opening fails), connected to `url`. */
  private async newClient(url: string): Promise<{ client: PayerClient; link: WsPeerLink }> {
    const channelKey = this.wallet.nextChannelKey();
    await this.saveWallet();
    const holder: { client?: PayerClient } = {};
    const link = this.connect(url, holder);
    const payoutScript = baddress.toOutputScript(this.wallet.changeAddress(), bitcoinjsNetwork(this.options.network));
    const client = new PayerClient(this.clientOptions(channelKey, link, payoutScript));
    holder.client = client;
    await link.ready();
    return { client, link };
  }

  /**
   * Opens a channel to the payee at `url` (ws://…/v1/ws) and waits until it is open.
   * `onWaiting` is told when the funding waits for confirmations.
   */
  async openChannel(url: string, open: OpenOptions, onWaiting?: (fundingTxid: string) => void): Promise<ConnectedChannel> {
    const { client, link } = await this.newClient(url);
    const opened = client.open(open);
    void client
      .waitFor((s) => s.type === 'AwaitingOpen')
      .then(async () => {
        await this.store.putMeta(metaUrl(client.id!), url);
        await this.store.putMeta(META_CURRENT, client.id!);
        await this.saveWallet();
        onWaiting?.(client.channel.funding.txid);
      })
      .catch(() => undefined);
    await opened;
    return { client, link, url };
  }

  /**
   * Reconnects to the payee of channel `channel` (a tempId; default the current channel) and
   * resumes (resends what was not acknowledged).
   * @throws Error if there is no such channel, or it was aborted.
   */
  async resumeChannel(channel?: string, options: { readonly untilStatus?: boolean } = {}): Promise<ConnectedChannel> {
    const tempId = channel ?? (await this.currentChannelId());
    if (!tempId) throw noChannel();
    const url = await this.store.getMeta(metaUrl(tempId));
    if (!url) throw new Error(`channel ${tempId} has no payee URL on record`);
    const saved = (await this.store.loadPayerChannels()).find((c) => c.tempId === tempId);
    if (!saved || saved.state.type === 'Aborted') throw new Error(`channel ${tempId} is not usable (${saved?.state.type ?? 'missing'})`);
    const index = saved.state.proposal.keyIndex;
    const key = this.keys.channelKey(index);
    const holder: { client?: PayerClient } = {};
    // Frames that arrive before the client is restored (the connection's challenge) wait for it.
    const early: Uint8Array[] = [];
    const status = options.untilStatus ? statusAnswer(this.options.connectTimeoutMs ?? 30_000) : undefined;
    const link = this.connect(url, holder, early, status?.seen);
    const client = await PayerClient.restore(this.clientOptions({ ...key, index }, link, saved.state.proposal.payerScript), tempId);
    holder.client = client;
    if (link.connected) client.resume(); // the connection opened while restoring: its onOpen found no client
    for (const bytes of early.splice(0)) client.receiveBytes(bytes);
    await link.ready();
    if (status && client.state?.type === 'Open') await status.answered;
    return { client, link, url };
  }

  /**
   * The newest stored channel to the payee at `url` that may still pay `nextPaymentSat` (funded,
   * not closed, not expiring, with room for that payment), if any: what a paying client reuses
   * across runs instead of opening another on chain. A channel nearly used up or within
   * PayerPolicy.expiryMarginBlocks of its expiry is passed over (see {@link isReusable}).
   */
  async usableChannelTo(url: string, nextPaymentSat = 1n): Promise<string | undefined> {
    const channels = await this.store.loadPayerChannels();
    const tipHeight = (await this.options.backend.getTip()).height;
    for (let i = channels.length - 1; i >= 0; i--) {
      const { tempId, state } = channels[i]!;
      if (!this.isReusable(state, tipHeight, nextPaymentSat)) continue;
      if ((await this.store.getMeta(metaUrl(tempId))) === url) return tempId;
    }
    return undefined;
  }

  /**
   * Whether a channel may take the next payment of `nextPaymentSat`: Open with room for it (the
   * payment rules themselves, checkPayments: capacity and dust change), or AwaitingOpen (its room
   * is checked once open); and in either case not within the expiry margin.
   */
  isReusable(state: PayerState, tipHeight: number, nextPaymentSat: bigint): boolean {
    if (state.type !== 'Open' && state.type !== 'AwaitingOpen') return false;
    if (isExpiring(state.channel.expiryHeight, tipHeight, this.policy.expiryMarginBlocks)) return false;
    if (state.type === 'AwaitingOpen') return true;
    try {
      checkPayments(state, nextPaymentSat, 1);
      return true;
    } catch (err) {
      if (err instanceof CannotPayError) return false;
      throw err;
    }
  }

  /**
   * Reconnects to the newest stored channel to `url` that can pay `nextPaymentSat` once resumed
   * (see {@link usableChannelTo}), or resolves undefined (a channel that turned out closed, or
   * used up by payments the payee had and this data dir had not, is let go). One whose funding
   * has not confirmed is waited for, up to `awaitOpenTimeoutMs`.
   * What `paychan payer fetch` and {@link createPayer}'s `channelFor` do before opening another.
   * @throws ChannelNotReadyError when that wait ends first (opening another would fund a second
   *   channel while the first may still confirm).
   */
  async reuseChannelTo(url: string, nextPaymentSat = 1n): Promise<ConnectedChannel | undefined> {
    const stored = await this.usableChannelTo(url, nextPaymentSat);
    if (stored === undefined) return undefined;
    // Until the payee answered the resume's status request, a payment signed now could be sent
    // twice: in an HTTP header, and again as the proof the payer sends when the status shows the
    // payee behind (which it is, by that payment): the header then counts as a replay and the
    // paying fetch pays the request again. So the channel is handed out once the status is in.
    const connected = await this.resumeChannel(stored, { untilStatus: true });
    const client = connected.client;
    const letGo = async () => {
      connected.link.close();
      await client.drain().catch(() => undefined);
    };
    const waitMs = this.options.awaitOpenTimeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    const opened = client.waitFor((s) => s.type === 'Open' || s.type === 'Closed' || s.type === 'Aborted').then(() => true);
    opened.catch(() => undefined); // rejected by the drain below when the bound came first
    const settled = await Promise.race([
      opened,
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), waitMs))),
    ]).finally(() => clearTimeout(timer));
    if (!settled) {
      await letGo();
      throw new ChannelNotReadyError(client.channel.id, url, waitMs);
    }
    const tipHeight = (await this.options.backend.getTip()).height;
    if (client.state && this.isReusable(client.state, tipHeight, nextPaymentSat) && client.state.type === 'Open') return connected;
    await letGo();
    return undefined;
  }

  /** Loads the current channel's client without connecting (for status and refunds). */
  async currentClientOffline(): Promise<PayerClient> {
    const tempId = await this.currentChannelId();
    if (!tempId) throw noChannel();
    const saved = (await this.store.loadPayerChannels()).find((c) => c.tempId === tempId);
    if (!saved) throw new Error(`channel ${tempId} is missing from the store`);
    const index = saved.state.proposal.keyIndex;
    return PayerClient.restore(this.clientOptions({ ...this.keys.channelKey(index), index }, { send: () => undefined }, saved.state.proposal.payerScript), tempId);
  }

  /**
   * Opens a channel funded by an external wallet, step 1 of 2: proposes it to the payee at `url`
   * and returns the output-only PSBT for the wallet to fund and sign (see
   * {@link PayerClient.proposeForExternalFunding}). The pending opening is saved (the data dir
   * remembers it), so {@link finishExternalFunding} may run in another process.
   */
  async proposeExternalFunding(url: string, open: OpenOptions): Promise<{ connected: ConnectedChannel; funding: ExternalFunding }> {
    const { client, link } = await this.newClient(url);
    const funding = await client.proposeForExternalFunding(open);
    await this.store.putMeta(metaUrl(funding.tempId), url);
    await this.store.putMeta(META_PENDING_EXTERNAL, funding.tempId);
    return { connected: { client, link, url }, funding };
  }

  /** The pending external funding (step 1 done, step 2 not), if any: its PSBT again. */
  async pendingExternalFunding(): Promise<ExternalFunding | undefined> {
    const tempId = await this.store.getMeta(META_PENDING_EXTERNAL);
    if (!tempId) return undefined;
    const saved = (await this.store.loadPayerChannels()).find((c) => c.tempId === tempId);
    const waiting = saved?.state.type === 'Funding' || saved?.state.type === 'RefundBeforeSigning' || saved?.state.type === 'AwaitingFundingSignature';
    if (!saved || !waiting) return undefined;
    const index = saved.state.proposal.keyIndex;
    const client = await PayerClient.restore(this.clientOptions({ ...this.keys.channelKey(index), index }, { send: () => undefined }, saved.state.proposal.payerScript), tempId);
    return client.externalFunding();
  }

  /**
   * v1, optional step between the two: reconnects to the payee of the pending external funding
   * and gets its refund signature for the funding the wallet funded but has not signed yet (see
   * {@link PayerClient.refundBeforeSigning}). Resolves with the funding's txid once the refund is
   * held and saved; the wallet then signs the same PSBT for {@link finishExternalFunding}.
   * @throws Error if no external funding is pending; PsbtFundingError or ProtocolError when the
   *   PSBT is refused (nothing changed).
   */
  async refundBeforeSigning(funded: Uint8Array | string): Promise<string> {
    const pending = await this.pendingExternalFunding();
    if (!pending) throw new Error('no channel waits for an external funding: start one with paychan payer open URL --capacity SAT --psbt');
    const connected = await this.resumeChannel(pending.tempId);
    try {
      await connected.client.refundBeforeSigning(funded);
      return connected.client.channel.funding.txid;
    } finally {
      connected.link.close();
      await connected.client.drain().catch(() => undefined);
    }
  }

  /**
   * Step 2 of 2: reconnects to the payee of the pending external funding and finishes it with
   * the wallet's signed PSBT or transaction (see {@link PayerClient.fundWithSigned}); the channel
   * becomes the current one once its funding is out, and this resolves once it is open.
   * `onWaiting` is told when the funding waits for confirmations.
   * @throws Error if no external funding is pending; PsbtFundingError or ProtocolError when the
   *   signed PSBT is refused (the opening stays pending: fix it and try again).
   */
  async finishExternalFunding(signed: Uint8Array | string, onWaiting?: (fundingTxid: string) => void): Promise<ConnectedChannel> {
    const pending = await this.pendingExternalFunding();
    if (!pending) throw new Error('no channel waits for an external funding: start one with paychan payer open URL --capacity SAT --psbt');
    const connected = await this.resumeChannel(pending.tempId);
    const client = connected.client;
    try {
      const opened = client.fundWithSigned(signed);
      void client
        .waitFor((s) => s.type === 'AwaitingOpen')
        .then(async () => {
          await this.store.putMeta(META_PENDING_EXTERNAL, '');
          await this.store.putMeta(META_CURRENT, pending.tempId);
          onWaiting?.(client.channel.funding.txid);
        })
        .catch(() => undefined);
      await opened;
    } catch (err) {
      connected.link.close();
      throw err;
    }
    return connected;
  }

  /**
   * Side A of duplex channels on this data dir, sharing its store and its one wallet (see
   * DuplexSideOptions.wallet). Close it before this app.
   */
  openDuplexSide(log: (line: string) => void = this.options.log): Promise<DuplexSide> {
    return openDuplexSide({
      role: 'A',
      network: this.options.network,
      backend: this.options.backend,
      dataDir: this.options.dataDir,
      opened: this.dir,
      wallet: this.wallet,
      fallbackFeeRateSatPerVb: this.options.fundingFeeRateSatPerVb,
      log,
    });
  }

  /** Saves the wallet, closes the store and releases the data dir. */
  async close(): Promise<void> {
    try {
      await this.saveWallet();
    } finally {
      await this.dir.close();
    }
  }

  /** Connects to the payee; frames that arrive before `holder.client` is set go to `early`. */
  private connect(url: string, holder: { client?: PayerClient }, early?: Uint8Array[], statusSeen?: () => void): WsPeerLink {
    let waiting = statusSeen;
    // The connection's channel ids, interned: an ack does not allocate its channel's id again.
    const ids = new WireIds();
    return connectPayee(url, {
      onMessage: (t) => holder.client?.receive(t), // not called: onFrame takes every frame
      onFrame: (bytes) => {
        if (!holder.client) {
          early?.push(Uint8Array.from(bytes)); // a copy: the bytes are ws's only during the call
          return;
        }
        holder.client.receiveBytes(bytes, ids);
        // One branch per frame until the first status answer; nothing more on the payment path.
        if (waiting && bytes.includes('"type":"channel-status"')) {
          waiting();
          waiting = undefined;
        }
      },
      onOpen: () => holder.client?.resume(),
      log: this.options.log,
      ...(this.options.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: this.options.connectTimeoutMs }),
    });
  }

  private get policy(): PayerPolicy {
    return payerPolicy({ network: this.options.network });
  }

  private clientOptions(channelKey: ReturnType<Wallet['nextChannelKey']>, link: { send: WsPeerLink['send'] }, payoutScript: Uint8Array) {
    return {
      secp: secp256k1(),
      policy: this.policy,
      network: this.options.network,
      backend: this.options.backend,
      wallet: this.wallet,
      channelKey,
      payoutScript,
      link,
      store: this.store,
      fundingFeeRateSatPerVb: this.options.fundingFeeRateSatPerVb,
      random16: () => randomBytes(16),
      log: this.options.log,
    };
  }
}

/** The error of a command that acts on the current channel when there is none (code NO_CHANNEL). */
function noChannel(): Error {
  return Object.assign(new Error('no channel yet: open one with paychan payer open URL --capacity SAT'), { code: 'NO_CHANNEL' });
}

/**
 * The payee's first `channel-status` answer on a resumed connection, or the end of `timeoutMs`
 * (then the caller goes on: the worst left is the one double payment the wait prevents).
 */
function statusAnswer(timeoutMs: number): { seen: () => void; answered: Promise<void> } {
  let seen!: () => void;
  const answered = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    timer.unref();
    seen = () => {
      clearTimeout(timer);
      resolve();
    };
  });
  return { seen, answered };
}
