/**
 * The payer in a page, in one object: a spilman-v2 channel to one payee, its state in IndexedDB,
 * the browser's WebSocket link, noble's secp256k1, and funding from any wallet.
 *
 * - **Funding**: {@link BrowserPayer.requestFunding} proposes the channel and answers what the
 *   user's wallet must pay: the amount and channel address as a BIP21 URI and its QR code, and an
 *   unsigned output-only PSBT (BIP174). The signed PSBT (or transaction) comes back through
 *   {@link BrowserPayer.fundWithSigned}. spilman-v2 because its refund needs no payee signature:
 *   whatever wallet pays, whenever, the payer can take its coins back alone after expiry.
 * - **Keys**: one fresh random key per channel, saved (with the channel's id) before the proposal
 *   leaves the page; {@link BrowserPayer.refundKit} exports it with the script and expiry, which
 *   is all anyone needs to refund after expiry, even without paychan.
 * - **Resume**: on every page load, {@link openBrowserPayer} restores the channel from IndexedDB
 *   and resumes it on each (re)connection: the payee re-acknowledges, an unacknowledged payment
 *   is resent. A payment is sent only after its state is durable (the store's contract).
 */
import { address as baddress } from 'bitcoinjs-lib';
import qrcode from 'qrcode-generator';
import type { Secp256k1 } from '../crypto/secp256k1.js';
import { nobleSecp256k1 } from '../crypto/noble.js';
import { PayerClient, type ExternalFunding, type PayerClientOptions } from '../payer/payer-client.js';
import { createPayingFetch, PaymentRefusedError } from '../payer/paying-fetch.js';
import { fromHex, toHex } from '../protocol/bytes.js';
import { fundingScriptOf, type Channel } from '../protocol/channel.js';
import { bitcoinjsNetwork, type NetworkName } from '../protocol/network.js';
import { tempIdFrom, type PayerState } from '../protocol/payer-machine.js';
import { payerPolicy, type PayerPolicy } from '../protocol/policy.js';
import type { SignedRefund } from '../protocol/refund.js';
import { openIndexedDbStore, type IndexedDbStore } from '../store/indexeddb-store.js';
import { connectPayeeFromBrowser, type BrowserPeerLink, type WebSocketConstructor } from '../transport/browser-link.js';
import type { PageChain } from './esplora-chain.js';
import { holdTabLock } from './tab-lock.js';

/** How often fundFromAddress asks the chain's funding lookup (an Esplora endpoint's rate limits): every 12th poll. */
const LOOKUP_EVERY = 12;

/** Meta keys: the page's current channel, and each channel's private key. */
const CURRENT_KEY = 'browser-channel';
const keyMetaKey = (tempId: string): string => `channel-key:${tempId}`;

export interface BrowserPayerOptions {
  /** The payee's channel WebSocket, `ws(s)://host:port/v1/ws`. */
  readonly wsUrl: string;
  readonly network: NetworkName;
  /**
   * The tip (for a new channel's expiry), a broadcast (for the refund) and, optionally, a funding
   * lookup (for a funding older than the payee's index): see payeeChain and esploraChain.
   */
  readonly chain: PageChain;
  /**
   * Where a new channel's change and refund go (an output script of `network`); or give it to
   * {@link BrowserPayer.requestFunding}. A restored channel keeps its own.
   */
  readonly payoutScript?: Uint8Array;
  /** The IndexedDB database (default `paychan`). */
  readonly storeName?: string;
  /** Default {@link nobleSecp256k1}. */
  readonly secp?: Secp256k1;
  readonly policy?: Partial<PayerPolicy>;
  readonly WebSocket?: WebSocketConstructor;
  readonly log?: (line: string) => void;
}

/** What the user's wallet must pay to fund the channel. */
export interface FundingRequest {
  readonly amountSat: bigint;
  readonly address: string;
  /** `bitcoin:<address>?amount=<btc>`, for wallets that pay a URI or scan a QR code. */
  readonly bip21: string;
  /** The BIP21 URI as an SVG QR code (markup). */
  readonly qrSvg: string;
  /** Unsigned output-only PSBT, base64: a wallet adds its inputs and change, signs, gives it back. */
  readonly psbt: string;
  readonly expiryHeight: number;
}

/** Everything needed to take the channel's coins back after expiry, with or without paychan. */
export interface RefundKit {
  readonly network: NetworkName;
  readonly variant: 'spilman-v2';
  /** The payer's channel key (hex): keep it secret; it can spend the refund path only. */
  readonly privateKey: string;
  /** The funding output's witness script (hex): `OP_IF <K2> … OP_ELSE <expiry> OP_CLTV …`. */
  readonly witnessScript: string;
  /** From this height on, the payer alone can spend the funding (nLockTime ≥ it). */
  readonly expiryHeight: number;
  /** The funding outpoint `txid:vout`, once known. */
  readonly fundingOutpoint: string | null;
  readonly capacitySat: string;
}

/**
 * Takes the store's tab lock, opens the store and, if the page had a channel, restores it and
 * reconnects.
 * @throws StoreInUseError (rejects) if another tab of this site holds the same store.
 * @throws StoreError (rejects) if IndexedDB cannot be opened.
 */
export async function openBrowserPayer(options: BrowserPayerOptions): Promise<BrowserPayer> {
  const storeName = options.storeName ?? 'paychan';
  const releaseLock = await holdTabLock(storeName);
  let store: IndexedDbStore;
  try {
    store = await openIndexedDbStore({ name: storeName });
  } catch (err) {
    releaseLock();
    throw err;
  }
  const payer = new BrowserPayer(options, store, releaseLock);
  try {
    const tempId = await store.getMeta(CURRENT_KEY);
    // '' (or a proposal the payee never took, so never stored): no channel. No address was shown
    // for it (the state is stored before the proposal leaves), so no coins can wait on it; its
    // key stays in the store all the same.
    if (tempId && (await store.loadPayerChannels()).some((c) => c.tempId === tempId)) {
      const key = await store.getMeta(keyMetaKey(tempId));
      if (key === undefined) throw new Error(`the store has channel ${tempId} but not its key`);
      await payer.restore(tempId, fromHex(key));
    } else if (tempId) {
      await store.putMeta(CURRENT_KEY, '');
    }
  } catch (err) {
    // A payer that cannot open gives back what it took: the link, the store and the tab lock (a
    // retry in this page would otherwise wait and be told another tab holds the store).
    await payer.close().catch(() => undefined);
    throw err;
  }
  return payer;
}

const noWallet: PayerClientOptions['wallet'] = {
  fund: () => Promise.reject(new Error('a page has no wallet: fund through requestFunding (BIP21 or PSBT)')),
  release: () => Promise.resolve(),
};

function random(bytes: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(bytes));
}

export class BrowserPayer {
  private client: PayerClient | null = null;
  private link: BrowserPeerLink | null = null;
  private privateKey: Uint8Array | null = null;
  private readonly secp: Secp256k1;
  private readonly policy: PayerPolicy;

  /** Prefer {@link openBrowserPayer}. */
  constructor(
    private readonly options: BrowserPayerOptions,
    readonly store: IndexedDbStore,
    private readonly releaseLock: () => void = () => undefined,
  ) {
    this.secp = options.secp ?? nobleSecp256k1;
    this.policy = payerPolicy({ network: options.network, ...options.policy });
  }

  /** The channel's state (null before {@link requestFunding}). */
  get state(): PayerState | null {
    return this.client?.state ?? null;
  }

  /** The newest total the payee acknowledged as stored, satoshis. */
  get paidSat(): bigint {
    const s = this.state;
    return s?.type === 'Open' || s?.type === 'Closed' ? s.ackedTotalSat : 0n;
  }

  /**
   * Proposes a spilman-v2 channel of `capacitySat` expiring `expiryBlocks` after the tip, and
   * returns what the wallet must pay. The channel and its key are saved first. Change and refund
   * go to `refundAddress` (or `payoutScript`, or the option's).
   * @throws RangeError if this page already has a channel.
   * @throws TypeError for a refund address not of the network, or none given.
   * @throws PeerError if the payee refuses the proposal.
   */
  async requestFunding(opts: { capacitySat: bigint; expiryBlocks: number; payoutScript?: Uint8Array; refundAddress?: string }): Promise<FundingRequest> {
    if (this.client) throw new RangeError('this page already has a channel');
    const payoutScript = opts.refundAddress !== undefined ? scriptOf(opts.refundAddress, this.options.network) : (opts.payoutScript ?? this.options.payoutScript);
    if (!payoutScript || payoutScript.length === 0) throw new TypeError('requestFunding: no payoutScript (where change and refund go)');
    let key = random(32);
    while (!this.secp.isPrivateKey(key)) key = random(32);
    const idBytes = random(16);
    const tempId = tempIdFrom(idBytes);
    // The key is durable before anything signed with it, or paid to it, can exist.
    await this.store.putMeta(keyMetaKey(tempId), toHex(key));
    await this.store.putMeta(CURRENT_KEY, tempId);
    const client = this.connect(key, () => idBytes, payoutScript);
    try {
      const funding = await client.proposeForExternalFunding({ variant: 'spilman-v2', capacitySat: opts.capacitySat, expiryBlocks: opts.expiryBlocks });
      return fundingRequestOf(funding);
    } catch (err) {
      // Refused or cut off before anything was shown to pay: the page may propose again.
      if (client.state === null || client.state.type === 'Aborted') {
        this.link?.close();
        this.link = null;
        this.client = null;
        this.privateKey = null;
        await this.store.putMeta(CURRENT_KEY, '');
      }
      throw err;
    }
  }

  /** The funding request again (after a reload, before the wallet paid). @throws RangeError when not waiting for funding. */
  fundingRequest(): FundingRequest {
    return fundingRequestOf(this.requireClient().externalFunding());
  }

  /**
   * Takes the wallet's signed PSBT (base64/hex) or signed transaction (hex), checks it pays the
   * channel output exactly, and resolves once the payee says the channel is open.
   * @throws PsbtFundingError or ProtocolError when refused (nothing changed: try again).
   */
  fundWithSigned(signed: string | Uint8Array): Promise<Channel> {
    return this.requireClient().fundWithSigned(signed);
  }

  /**
   * For a wallet that paid the BIP21 address (and broadcast by itself): asks the payee for the
   * funding every `pollMs` until its node has it confirmed, then proceeds as
   * {@link fundWithSigned} with that transaction (which is checked the same way: the payee cannot
   * slip in another one). The payee indexes only its newest blocks; a page back after longer (its
   * funding deeper) finds it through the chain's `findFunding` (payeeChain with an Esplora URL),
   * asked on the first miss and every {@link LOOKUP_EVERY} polls after. Resolves once the channel
   * is open.
   * @throws AbortError (rejects) when `signal` aborts; what fundWithSigned throws.
   */
  async fundFromAddress(opts: { pollMs?: number; signal?: AbortSignal } = {}): Promise<Channel> {
    const s = this.state;
    if (s?.type !== 'Funding') throw new RangeError(`no funding to wait for in state ${s?.type ?? 'none'}`);
    const script = fundingScriptOf(s.terms).fundingScript;
    const url = `${httpOriginOf(this.options.wsUrl)}/v1/funding/${toHex(script)}`;
    for (let miss = 0; ; miss++) {
      opts.signal?.throwIfAborted();
      const res = await fetch(url, opts.signal ? { signal: opts.signal } : {});
      if (res.ok) return this.fundWithSigned(((await res.json()) as { txHex: string }).txHex);
      await res.body?.cancel();
      if (res.status !== 404) throw new Error(`GET ${url}: HTTP ${res.status}`);
      // The lookup is a second chance, not a reason to stop: an endpoint's error (a rate limit,
      // CORS, an outage) is logged and the polling goes on.
      const found = miss % LOOKUP_EVERY === 0 ? await this.options.chain.findFunding?.(script, s.terms.capacitySat).catch((err: unknown) => (this.options.log?.(`funding lookup: ${String(err)}`), null)) : null;
      if (found) return this.fundWithSigned(found);
      await new Promise((resolve) => setTimeout(resolve, opts.pollMs ?? 5_000));
    }
  }

  /** Resolves once the channel is open (after the funding's confirmations). */
  waitUntilOpen(): Promise<void> {
    return this.requireClient().waitFor((s) => s.type === 'Open');
  }

  /**
   * Pays `amountSat` more; resolves with the new total once the payee acknowledged it as stored.
   * Calls may overlap (pipelining). @throws CannotPayError (rejects) beyond the capacity.
   */
  pay(amountSat: bigint): Promise<bigint> {
    if (!this.client) return Promise.reject(new RangeError('no channel yet'));
    return this.client.pay(amountSat);
  }

  /**
   * A `fetch` that pays this channel's payee's paywall (HTTP 402): the price is signed into the
   * Paychan-Payment header (src/payer/paying-fetch.ts), never more than `maxPriceSat` a request.
   * A paywall of another payee is refused (PaymentRefusedError OTHER_PAYEE): this page has one
   * channel. Cross-origin, the payee must allow the page's origin (`--cors-origin`).
   */
  payingFetch(maxPriceSat: bigint): (input: string | URL, init?: RequestInit) => Promise<Response> {
    return createPayingFetch({
      maxPriceSat,
      channelFor: (offer) => {
        if (offer.channelUrl !== this.options.wsUrl) return Promise.reject(new PaymentRefusedError('OTHER_PAYEE', `the paywall's payee is ${offer.channelUrl}, this page's channel is with ${this.options.wsUrl}`, offer));
        return Promise.resolve(this.requireClient());
      },
    });
  }

  /** Asks the payee to close now with the newest payment. @throws RangeError unless open. */
  requestClose(): void {
    this.requireClient().requestClose();
  }

  /** @throws RangeError before the channel was proposed. */
  refundKit(): RefundKit {
    const s = this.state;
    if (!s || !('terms' in s) || !this.privateKey) throw new RangeError('no channel yet');
    return {
      network: s.terms.network,
      variant: 'spilman-v2',
      privateKey: toHex(this.privateKey),
      witnessScript: toHex(fundingScriptOf(s.terms).witnessScript),
      expiryHeight: s.terms.expiryHeight,
      fundingOutpoint: 'channel' in s ? s.channel.id : null,
      capacitySat: s.terms.capacitySat.toString(),
    };
  }

  /**
   * Builds, signs and broadcasts the refund through the configured chain endpoint (after expiry;
   * the network refuses it before).
   * @throws Error with the endpoint's answer when it refuses.
   */
  refund(feeRateSatPerVb: number): Promise<SignedRefund> {
    return this.requireClient().refund(feeRateSatPerVb);
  }

  /** Saves the newest state and closes the link and the store. The channel stays for the next load. */
  async close(): Promise<void> {
    try {
      await this.client?.drain().catch(() => undefined);
      this.link?.close();
      await this.store.close();
    } finally {
      this.releaseLock();
    }
  }

  /** @internal by openBrowserPayer: the saved channel, reconnected and resumed. */
  async restore(tempId: string, key: Uint8Array): Promise<void> {
    // A restored channel pays its own payer script (in its state): no new one is needed.
    const options = this.clientOptions(key, () => random(16), this.openLink(), this.options.payoutScript ?? new Uint8Array(0));
    this.client = await PayerClient.restore(options, tempId);
    this.privateKey = key;
  }

  private connect(key: Uint8Array, random16: () => Uint8Array, payoutScript: Uint8Array): PayerClient {
    this.privateKey = key;
    this.client = new PayerClient(this.clientOptions(key, random16, this.openLink(), payoutScript));
    return this.client;
  }

  private openLink(): BrowserPeerLink {
    this.link = connectPayeeFromBrowser(this.options.wsUrl, {
      onMessage: (text) => this.client?.receive(text),
      onOpen: () => this.client?.resume(),
      ...(this.options.WebSocket ? { WebSocket: this.options.WebSocket } : {}),
      ...(this.options.log ? { log: this.options.log } : {}),
    });
    return this.link;
  }

  private clientOptions(key: Uint8Array, random16: () => Uint8Array, link: BrowserPeerLink, payoutScript: Uint8Array): PayerClientOptions {
    return {
      secp: this.secp,
      policy: this.policy,
      network: this.options.network,
      backend: this.options.chain,
      wallet: noWallet,
      channelKey: { privateKey: key, publicKey: this.secp.publicKeyCreate(key), index: 0 },
      payoutScript,
      link,
      store: this.store,
      fundingFeeRateSatPerVb: 1,
      random16,
      ...(this.options.log ? { log: this.options.log } : {}),
    };
  }

  private requireClient(): PayerClient {
    if (!this.client) throw new RangeError('no channel yet');
    return this.client;
  }
}

/** @throws TypeError if `address` is not an address of `network`. */
function scriptOf(address: string, network: NetworkName): Uint8Array {
  try {
    return baddress.toOutputScript(address, bitcoinjsNetwork(network));
  } catch (err) {
    throw new TypeError(`refund address ${address} is not a ${network} address (${(err as Error).message})`);
  }
}

/** `ws://host:port/v1/ws` → `http://host:port`. */
function httpOriginOf(wsUrl: string): string {
  const url = new URL(wsUrl);
  return `${url.protocol === 'wss:' ? 'https:' : 'http:'}//${url.host}`;
}

function fundingRequestOf(funding: ExternalFunding): FundingRequest {
  if (!funding.bip21) throw new Error('unreachable: spilman-v2 is funded directly');
  const qr = qrcode(0, 'M');
  qr.addData(funding.bip21);
  qr.make();
  return {
    amountSat: funding.amountSat,
    address: funding.channelAddress,
    bip21: funding.bip21,
    qrSvg: qr.createSvgTag({ cellSize: 4, margin: 4, scalable: true }),
    psbt: funding.psbt,
    expiryHeight: funding.expiryHeight,
  };
}
