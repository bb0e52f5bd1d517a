/**
 * A payee service and a payer client in one process, wired through the wire codec: what the
 * integration tests run on a regtest node.
 */
import { randomBytes } from 'node:crypto';
import { address as baddress } from 'bitcoinjs-lib';
import type { ChainBackend } from '../../src/chain/backend.js';
import type { Secp256k1 } from '../../src/crypto/secp256k1.js';
import { bitcoinjsNetwork } from '../../src/protocol/network.js';
import { payeePolicy, type PayeePolicy } from '../../src/protocol/policy.js';
import { PayeeService } from '../../src/payee/payee-service.js';
import type { PayerClient } from '../../src/payer/payer-client.js';
import { regtestPayer } from './regtest-peers.js';
import { encodeMessage, msg } from '../../src/protocol/messages.js';
import type { PeerLink } from '../../src/transport/link.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { Store } from '../../src/store/store.js';
import { WalletKeys } from '../../src/wallet/keys.js';
import type { Wallet } from '../../src/wallet/wallet.js';

export interface LocalPairOptions {
  readonly secp: Secp256k1;
  readonly backend: ChainBackend;
  /** The payer's funded wallet. */
  readonly payerWallet: Wallet;
  readonly feeRateSatPerVb: number;
  readonly payeePolicy?: Partial<PayeePolicy>;
  /** Default: in memory. */
  readonly payeeStore?: Store;
  /** Default: in memory. */
  readonly payerStore?: Store;
  readonly log?: (line: string) => void;
}

export interface LocalPair {
  readonly payee: PayeeService;
  readonly payer: PayerClient;
  /** Where the payee's share goes. */
  readonly payeeScript: Uint8Array;
  /** Where the payer's change and refund go. */
  readonly payerScript: Uint8Array;
  /** A new "connection" (new challenge), as after a drop: the payer resumes on it. */
  reconnect(): void;
  stop(): void;
}

export async function localPair(opts: LocalPairOptions): Promise<LocalPair> {
  const network = 'regtest';
  const log = opts.log;
  const payeeKeys = WalletKeys.fromSeed(randomBytes(32), network);
  const payeeScript = payeeKeys.address('receive', 0).script;
  const payee = await PayeeService.open({
    store: opts.payeeStore ?? new MemoryStore(),
    secp: opts.secp,
    policy: payeePolicy({ network, ...opts.payeePolicy }),
    backend: opts.backend,
    keys: payeeKeys,
    payoutScript: payeeScript,
    fallbackFeeRateSatPerVb: opts.feeRateSatPerVb,
    log: log && ((l) => log(`payee: ${l}`)),
  });
  payee.start();
  // The link needs the payer and the payer needs the link: the payer end is filled in below.
  // Like a WebSocket, each "connection" has its own reply link and challenge, sent first.
  const ends: { payer?: PayerClient } = {};
  const connect = (): PeerLink => {
    const challenge = new Uint8Array(randomBytes(32));
    const link: PeerLink = { send: (m) => queueMicrotask(() => ends.payer?.receive(encodeMessage(m))), challenge };
    link.send(msg('challenge', { challenge }));
    return link;
  };
  let connection: PeerLink | null = null;
  const toPayee: PeerLink = {
    send: (m) => {
      const text = encodeMessage(m);
      const reply = connection!;
      queueMicrotask(() => void payee.receive(text, reply));
    },
  };
  const payerScript = baddress.toOutputScript(opts.payerWallet.changeAddress(), bitcoinjsNetwork(network));
  const payer = regtestPayer({ secp: opts.secp, backend: opts.backend, wallet: opts.payerWallet }, toPayee, {
    payoutScript: payerScript,
    store: opts.payerStore ?? new MemoryStore(),
    fundingFeeRateSatPerVb: opts.feeRateSatPerVb,
    log: log && ((l) => log(`payer: ${l}`)),
  });
  ends.payer = payer;
  connection = connect();
  const reconnect = () => {
    connection = connect();
    payer.resume();
  };
  return { payee, payer, payeeScript, payerScript, reconnect, stop: () => payee.stop() };
}

/** Kept here too: many tests import it from this file. */
export { waitUntil } from './wait.js';
