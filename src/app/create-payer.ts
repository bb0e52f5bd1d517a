/**
 * `createPayer`: a paying client in one call. It opens the payer's data dir (the CLI's
 * `$PAYCHAN_HOME/payer` by default, so `paychan payer address` funds the same wallet), its one
 * wallet and store, and hands out a `fetch` that pays 402s and `channelFor(url)`.
 *
 * Why channels are looked up in the store first: a client that runs, stops and runs again must
 * pay on the channel it already funded, not put another funding on chain each run. A channel is
 * opened only when the data dir holds no channel to that payee that is still Open.
 */
import path from 'node:path';
import type { NetworkName } from '../protocol/network.js';
import type { VariantName } from '../protocol/variants/index.js';
import type { ExternalFunding, PayerClient } from '../payer/payer-client.js';
import { createPayingFetch } from '../payer/paying-fetch.js';
import type { PaymentRequiredBody } from '../transport/paywall.js';
import type { Wallet } from '../wallet/wallet.js';
import { PaychanClientScheme } from '../x402/index.js';
import { paychanHome } from './files.js';
import { resolveNode, type NodeOption } from './node-option.js';
import { openDuplexChannel, type DuplexChannel } from './duplex-channel.js';
import type { DuplexSide } from './duplex-side.js';
import { PayerApp, type ConnectedChannel } from './payer-app.js';

export interface CreatePayerOptions {
  /** Seed, wallet and channels; default `$PAYCHAN_HOME/payer` (`~/.paychan/payer`), as the CLI. */
  readonly dataDir?: string;
  /** A node URL with credentials, a connected backend, or (default) the local regtest node. */
  readonly node?: NodeOption;
  /** Default `regtest`. */
  readonly network?: NetworkName;
  /** Capacity of a channel this payer opens, satoshis; default 100,000. */
  readonly capacitySat?: bigint | number;
  /** Blocks until an opened channel expires; default 144. */
  readonly expiryBlocks?: number;
  /** Default `spilman-v1`. */
  readonly variant?: VariantName;
  /** The paying fetch never pays more than this for one request; default 1,000 sat. */
  readonly maxPriceSat?: bigint | number;
  /** Default 2 sat/vB. */
  readonly fundingFeeRateSatPerVb?: number;
  /** How long reaching a payee may take before opening or resuming fails; default 30 s. */
  readonly connectTimeoutMs?: number;
  /** How long `channelFor` waits for a stored channel whose funding has not confirmed; default 60 s. */
  readonly awaitOpenTimeoutMs?: number;
  /** Progress lines (funding waits, reconnections); default silent. */
  readonly log?: (line: string) => void;
}

export interface Payer {
  /** `fetch` that answers a paychan 402 by paying on a channel to its payee (see createPayingFetch). */
  readonly fetch: (input: string | URL, init?: RequestInit) => Promise<Response>;
  /**
   * The channel to the payee at `url` (`ws://…/v1/ws`, as a 402 names it) that can pay
   * `nextPaymentSat` (default 1): this process's, else the data dir's newest one to that payee
   * still Open, else a new one of `capacitySat`, which waits until its funding confirms. A
   * channel too used up for that payment, or within the payer's expiry margin
   * (PayerPolicy.expiryMarginBlocks: the payee closes by then), is passed over; a stored one
   * whose funding has not confirmed is waited for up to `awaitOpenTimeoutMs`.
   * @throws ChannelNotReadyError when that wait ends first.
   * @throws Error when the wallet cannot fund a new channel, or the payee cannot be reached.
   */
  channelFor(url: string, nextPaymentSat?: bigint | number): Promise<PayerClient>;
  /**
   * paychan's x402 client scheme on this payer's channels, for the official `@x402/fetch`:
   * `new x402Client().register('bip122:*', payer.x402Scheme())`. One per payer.
   */
  x402Scheme(): PaychanClientScheme;
  /**
   * Opens a duplex channel to the payee at `url` (payments both ways; the payee may put coins in
   * too) from this payer's wallet, and resolves once its funding confirmed.
   * @throws RangeError when the wallet cannot fund `capacitySat`; PayeeUnreachableError;
   *   ProtocolError when the payee refuses.
   */
  openDuplex(url: string, options: { readonly payerContributionSat: bigint | number; readonly payeeContributionSat?: bigint | number }): Promise<DuplexChannel>;
  /**
   * Funding from an external wallet (PSBT, BIP174), step 1 of 2 — `paychan payer open URL
   * --psbt`: proposes a channel to `url` and returns the unsigned PSBT (`psbt`, base64) with one
   * output, the channel's (`channelAddress`, `amountSat`, `witnessScript`), for a hardware or
   * desktop wallet to fund and sign without broadcasting. The pending opening is kept in the
   * data dir, so step 2 may run in a later process. docs/psbt.md.
   */
  proposeExternalFunding(url: string, options?: { readonly capacitySat?: bigint | number; readonly variant?: VariantName; readonly expiryBlocks?: number }): Promise<ExternalFunding>;
  /**
   * spilman-v1, optional, between the steps — `--funded-psbt`: the payee signs the refund for
   * the PSBT the wallet funded but has not signed yet; resolves with the funding's txid. Then
   * the wallet signs that same PSBT.
   * @throws PsbtFundingError or ProtocolError when the PSBT is refused (nothing changed).
   */
  refundBeforeSigning(fundedPsbt: Uint8Array | string): Promise<string>;
  /**
   * Step 2 — `--signed-psbt`: checks the signed PSBT (or raw transaction) pays exactly the
   * channel output and is fully signed, finishes the opening (v1: the payee's refund signature
   * first) and resolves with the channel once its funding confirmed; `channelFor(url)` and
   * `fetch` then pay on it.
   * @throws PsbtFundingError or ProtocolError when it is refused (the opening stays pending).
   */
  finishExternalFunding(signedPsbt: Uint8Array | string): Promise<PayerClient>;
  /** A fresh receive address of the payer's wallet (send coins here to fund channels). */
  address(): string;
  readonly wallet: Wallet;
  /** Disconnects from every payee, saves the wallet and closes the data dir (and a node it connected). */
  close(): Promise<void>;
}

/**
 * Opens a payer ready to pay.
 * @throws DataDirInUseError if another process uses the data dir.
 * @throws Error, TypeError, ChainBackendError from connecting to the node (see resolveNode).
 */
export async function createPayer(options: CreatePayerOptions = {}): Promise<Payer> {
  const network = options.network ?? 'regtest';
  const node = await resolveNode(options.node, network);
  let app: PayerApp;
  try {
    app = await PayerApp.open({
      network,
      backend: node.backend,
      dataDir: options.dataDir ?? path.join(paychanHome(), 'payer'),
      fundingFeeRateSatPerVb: options.fundingFeeRateSatPerVb ?? 2,
      connectTimeoutMs: options.connectTimeoutMs ?? 30_000,
      ...(options.awaitOpenTimeoutMs === undefined ? {} : { awaitOpenTimeoutMs: options.awaitOpenTimeoutMs }),
      log: options.log ?? (() => undefined),
    });
  } catch (err) {
    await node.release().catch(() => undefined);
    throw err;
  }
  const open = { variant: options.variant ?? 'spilman-v1', capacitySat: BigInt(options.capacitySat ?? 100_000n), expiryBlocks: options.expiryBlocks ?? 144 } as const;
  const channels = new Map<string, Promise<ConnectedChannel>>();
  const connected = new Set<ConnectedChannel>();

  const track = (url: string, opening: Promise<ConnectedChannel>): Promise<PayerClient> => {
    channels.set(url, opening);
    opening.then((c) => connected.add(c), () => channels.get(url) === opening && channels.delete(url));
    return opening.then((c) => c.client);
  };
  const channelFor = async (url: string, nextPaymentSat: bigint | number = 1n): Promise<PayerClient> => {
    const need = BigInt(nextPaymentSat);
    const held = channels.get(url);
    if (held) {
      const c = await held.catch(() => undefined);
      const state = c?.client.state;
      if (state && app.isReusable(state, (await app.backend.getTip()).height, need)) return c.client;
    }
    return track(url, app.reuseChannelTo(url, need).then((reused) => reused ?? app.openChannel(url, open)));
  };
  // The paying fetch and the x402 scheme ask again for a payee only when the channel they had
  // cannot pay any more (closed, or used up): then a new one, not the stored one they gave up on.
  const askedFor = (): ((url: string, nextPaymentSat: bigint) => Promise<PayerClient>) => {
    const asked = new Set<string>();
    return (url, nextPaymentSat) => {
      if (asked.has(url)) return track(url, app.openChannel(url, open));
      asked.add(url);
      const first = channelFor(url, nextPaymentSat);
      first.catch(() => asked.delete(url)); // nothing was given up on: the next ask reuses again
      return first;
    };
  };
  const fetchChannel = askedFor();
  // Side A of duplex channels, opened on first use: it shares the data dir and the wallet.
  let duplexSide: Promise<DuplexSide> | undefined;
  const duplexChannels = new Set<DuplexChannel>();
  const duplexOf = (): Promise<DuplexSide> =>
    (duplexSide ??= app.openDuplexSide().then(
      (side) => {
        side.start();
        return side;
      },
      (err: unknown) => {
        duplexSide = undefined; // the next call tries again
        throw err;
      },
    ));
  const maxPriceSat = BigInt(options.maxPriceSat ?? 1_000n);
  let scheme: PaychanClientScheme | undefined;

  return {
    fetch: createPayingFetch({ maxPriceSat, channelFor: (offer: PaymentRequiredBody) => fetchChannel(offer.channelUrl, BigInt(offer.dueSat)) }),
    channelFor,
    x402Scheme() {
      if (!scheme) {
        const x402Channel = askedFor();
        scheme = new PaychanClientScheme({ maxPriceSat, channelFor: (offer) => x402Channel(offer.channelUrl, offer.priceSat) });
      }
      return scheme;
    },
    async openDuplex(url, duplex) {
      const channel = await openDuplexChannel(await duplexOf(), url, {
        ...duplex,
        fundingFeeRateSatPerVb: options.fundingFeeRateSatPerVb ?? 2,
        connectTimeoutMs: options.connectTimeoutMs ?? 30_000,
        log: options.log ?? (() => undefined),
      });
      duplexChannels.add(channel);
      return channel;
    },
    async proposeExternalFunding(url, external = {}) {
      const { connected: proposed, funding } = await app.proposeExternalFunding(url, {
        variant: external.variant ?? open.variant,
        capacitySat: external.capacitySat === undefined ? open.capacitySat : BigInt(external.capacitySat),
        expiryBlocks: external.expiryBlocks ?? open.expiryBlocks,
      });
      // Step 2 reconnects (it may be another process): this connection has done its part.
      proposed.link.close();
      await proposed.client.drain();
      return funding;
    },
    refundBeforeSigning: (funded) => app.refundBeforeSigning(funded),
    async finishExternalFunding(signed) {
      const finished = await app.finishExternalFunding(signed);
      // Held as this process's channel to that payee, as one channelFor opened.
      return track(finished.url, Promise.resolve(finished));
    },
    address: () => app.wallet.receiveAddress(),
    wallet: app.wallet,
    async close() {
      try {
        for (const c of connected) c.link.close();
        for (const c of connected) await c.client.drain();
        for (const c of duplexChannels) c.disconnect();
        await (await duplexSide?.catch(() => undefined))?.close();
        await app.close();
      } finally {
        await node.release();
      }
    },
  };
}
