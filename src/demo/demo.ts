/**
 * The demo: one channel on a local regtest node, end to end, and what the node says about it.
 *
 * Payer and payee run in this process, wired through the real wire codec; everything on chain
 * is read back from the node (amounts, fee, vsize, confirmations), never from our own books.
 */
import { randomBytes } from 'node:crypto';
import { Transaction, address as baddress } from 'bitcoinjs-lib';
import type { ChainBackend } from '../chain/backend.js';
import { connectExternalRegtest } from '../chain/external-node.js';
import { startRegtestNode } from '../chain/regtest/index.js';
import { secp256k1 } from '../crypto/index.js';
import { equalBytes } from '../protocol/bytes.js';
import { dustThresholdSat } from '../protocol/dust.js';
import { bitcoinjsNetwork } from '../protocol/network.js';
import type { Variant } from '../protocol/scripts.js';
import { localPair, waitUntil, type LocalPair } from './local-pair.js';
import { WalletKeys } from '../wallet/keys.js';
import { Wallet } from '../wallet/wallet.js';

export interface DemoOptions {
  readonly variant: Variant;
  readonly payments: number;
  readonly amountSat: bigint;
  readonly capacitySat: bigint;
  /** Use this node instead of starting one. */
  readonly rpc?: { url: string; user: string; pass: string };
  /** Progress lines for a human. */
  readonly log: (line: string) => void;
}

export interface DemoResult {
  readonly variant: Variant;
  readonly network: 'regtest';
  readonly node: string;
  readonly capacitySat: number;
  readonly payments: number;
  readonly paidSat: number;
  readonly ackedSat: number;
  readonly fundingTxid: string;
  readonly channelId: string;
  readonly closeTxid: string;
  readonly closeConfirmations: number;
  readonly payeeReceivedSat: number;
  readonly payerReceivedSat: number;
  readonly closeFeeSat: number;
  readonly closeVsize: number;
  readonly paymentsPerSec: number;
}

const FEE_RATE_SAT_PER_VB = 2;
const EXPIRY_BLOCKS = 30;

/**
 * Runs the demo.
 * @throws RangeError if the payments do not fit the capacity; Error from the node or protocol.
 */
export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const { log } = opts;
  const total = opts.amountSat * BigInt(opts.payments);
  if (opts.payments < 1 || opts.amountSat < 1n) throw new RangeError('--payments and --amount must be at least 1');
  const secp = secp256k1();
  const network = 'regtest';
  const payerSeed = randomBytes(32);
  // btcd pays a fixed address chosen at start, before the wallet (which needs the node) exists.
  const miningAddress = WalletKeys.fromSeed(payerSeed, network).address('receive', 0).address;

  log(opts.rpc ? `connecting to ${opts.rpc.url}` : 'starting a private regtest node (btcd)');
  const node = opts.rpc ? await connectExternalRegtest(opts.rpc) : await startRegtestNode({ miningAddress, log });
  const backend: ChainBackend = node.backend;
  const mine = (n: number) => ('mine' in node ? node.mine(n).then(() => undefined) : node.mineTo(miningAddress, n));
  let pair: LocalPair | undefined;
  try {
    log('mining 101 blocks so the payer has a mature coinbase');
    await mine(101);
    const payerWallet = await Wallet.open({ seed: payerSeed, network, backend, secp });
    await payerWallet.sync();
    const balance = payerWallet.balance();
    log(`payer wallet: ${balance.confirmedSat} sat spendable`);
    if (balance.confirmedSat < opts.capacitySat + 10_000n) throw new RangeError(`the payer wallet has ${balance.confirmedSat} sat, not enough for a ${opts.capacitySat} sat channel`);

    pair = await localPair({ secp, backend, payerWallet, feeRateSatPerVb: FEE_RATE_SAT_PER_VB, log });
    const { payee, payer, payeeScript: payoutScript, payerScript } = pair;
    const maxPartial = opts.capacitySat - dustThresholdSat(payerScript);
    if (total > maxPartial && total !== opts.capacitySat) throw new RangeError(`${opts.payments} × ${opts.amountSat} sat = ${total} sat does not fit a ${opts.capacitySat} sat channel`);

    log(`opening a ${opts.variant} channel of ${opts.capacitySat} sat (expiry in ${EXPIRY_BLOCKS} blocks)`);
    const opening = payer.open({ variant: opts.variant, capacitySat: opts.capacitySat, expiryBlocks: EXPIRY_BLOCKS });
    await Promise.race([payer.waitFor((s) => s.type === 'AwaitingOpen'), opening]);
    const fundingTxid = payer.channel.funding.txid;
    await waitUntil(async () => (await backend.getTransaction(fundingTxid)) !== null, 'the payee to broadcast the funding');
    log(`funding ${fundingTxid} is in the mempool; mining 1 block`);
    await mine(1);
    const channel = await opening;
    log(`channel ${channel.id} is open`);

    log(`making ${opts.payments} payments of ${opts.amountSat} sat`);
    const started = performance.now();
    let acked = 0n;
    for (let i = 1; i <= opts.payments; i++) {
      acked = await payer.pay(opts.amountSat);
      if (i % Math.max(1, Math.floor(opts.payments / 5)) === 0) log(`  ${i}/${opts.payments} paid, total ${acked} sat acknowledged`);
    }
    const seconds = (performance.now() - started) / 1000;

    log('payee closes the channel with the newest payment');
    const close = await payee.close(channel.id, FEE_RATE_SAT_PER_VB);
    log(`close ${close.txid} broadcast (${close.vsize} vB, fee ${close.feeSat} sat); mining 1 block`);
    await mine(1);
    await waitUntil(async () => payee.channel(channel.id)?.type === 'Closed', 'the payee to see its close confirmed');

    // Everything below is read back from the node.
    const onChain = await backend.getTransaction(close.txid);
    if (!onChain) throw new Error(`the node does not know close ${close.txid}`);
    const fundingOnChain = await backend.getTransaction(fundingTxid);
    if (!fundingOnChain) throw new Error(`the node does not know funding ${fundingTxid}`);
    const fundingOut = Transaction.fromHex(fundingOnChain.hex).outs[channel.funding.vout]!;
    const closeTx = Transaction.fromHex(onChain.hex);
    const sumTo = (script: Uint8Array) => closeTx.outs.filter((o) => equalBytes(o.script, script)).reduce((s, o) => s + o.value, 0n);
    const outputs = closeTx.outs.reduce((s, o) => s + o.value, 0n);
    const result: DemoResult = {
      variant: opts.variant,
      network,
      node: backend.dialect,
      capacitySat: Number(fundingOut.value),
      payments: opts.payments,
      paidSat: Number(total),
      ackedSat: Number(acked),
      fundingTxid,
      channelId: channel.id,
      closeTxid: closeTx.getId(),
      closeConfirmations: onChain.confirmations,
      payeeReceivedSat: Number(sumTo(payoutScript)),
      payerReceivedSat: Number(sumTo(payerScript)),
      closeFeeSat: Number(fundingOut.value - outputs),
      closeVsize: closeTx.virtualSize(),
      paymentsPerSec: Math.round(opts.payments / seconds),
    };
    log(`payee received ${result.payeeReceivedSat} sat at ${baddress.fromOutputScript(payoutScript, bitcoinjsNetwork(network))}`);
    log(`payer got back ${result.payerReceivedSat} sat; fee ${result.closeFeeSat} sat; ${result.closeConfirmations} confirmation(s)`);
    return result;
  } finally {
    pair?.stop();
    await node.stop();
  }
}
