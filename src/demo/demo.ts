/**
 * The demo: a payee and a payer as separate OS processes (the `paychan payee serve` and
 * `paychan payer ...` commands), over WebSocket and HTTP 402, on a private regtest node.
 *
 * This process owns the node and plays the miner: whenever the mempool holds a transaction it
 * mines a block, like a fast chain. Everything reported about money is read back from the node
 * (funding, close, amounts, fee, vsize, confirmations), never from the processes' books.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Transaction, address as baddress } from 'bitcoinjs-lib';
import { loadOrCreateSeed } from '../app/files.js';
import { PAID_ROUTE_PREFIX } from '../app/payee-app.js';
import { bitcoinjsNetwork } from '../protocol/network.js';
import type { VariantName } from '../protocol/variants/index.js';
import { WalletKeys } from '../wallet/keys.js';
import { startDemoChain } from './demo-chain.js';
import { runPaychan, startPaychan, stopChild } from './processes.js';

export interface DemoOptions {
  readonly variant: VariantName;
  readonly payments: number;
  readonly amountSat: bigint;
  readonly capacitySat: bigint;
  readonly paidRequests: number;
  readonly priceSat: bigint;
  /** Use this node instead of starting one. */
  readonly rpc?: { url: string; user: string; pass: string };
  /** Progress lines for a human. */
  readonly log: (line: string) => void;
}

export interface DemoResult {
  readonly variant: VariantName;
  readonly network: 'regtest';
  readonly node: string;
  readonly processes: number;
  readonly capacitySat: number;
  readonly payments: number;
  readonly paidSat: number;
  readonly paidRequests: number;
  readonly requestsSat: number;
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

/**
 * Runs the demo.
 * @throws RangeError if the payments do not fit the capacity; Error from the node or a process.
 */
export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const { log } = opts;
  const totalSat = opts.amountSat * BigInt(opts.payments) + opts.priceSat * BigInt(opts.paidRequests);
  if (totalSat >= opts.capacitySat) throw new RangeError(`${opts.payments} × ${opts.amountSat} sat plus ${opts.paidRequests} requests × ${opts.priceSat} sat do not fit a ${opts.capacitySat} sat channel`);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-demo-'));
  const payerDir = path.join(home, 'payer');
  const payeeDir = path.join(home, 'payee');
  // The payer's first address, known before its process exists, receives the coins.
  const payerAddress = WalletKeys.fromSeed(loadOrCreateSeed(path.join(payerDir, 'seed')), 'regtest').address('receive', 0).address;

  const chain = await startDemoChain({ rpc: opts.rpc, payerAddress, log });
  const { backend, rpcArgs } = chain;
  const pids = new Set<number>([process.pid]);
  let payee: Awaited<ReturnType<typeof startPaychan>> | undefined;
  try {
    // The channel, its funding fee, and room to spare.
    await chain.fundPayer(opts.capacitySat + 1_000_000n);

    log('starting the payee process (paychan payee serve)');
    payee = await startPaychan(['payee', 'serve', ...rpcArgs, '--data-dir', payeeDir, '--listen', '127.0.0.1:0', '--price-sat', opts.priceSat.toString()], log);
    pids.add(payee.child.pid!);
    const wsUrl = String(payee.ready.wsUrl);
    const httpUrl = String(payee.ready.url);
    const payoutScript = baddress.toOutputScript(String(payee.ready.payoutAddress), bitcoinjsNetwork('regtest'));

    const payer = (args: string[]) => runPaychan(['payer', ...args, ...rpcArgs, '--data-dir', payerDir], log).then((r) => (pids.add(r.pid), r.result));
    log(`payer process: opening a ${opts.variant} channel of ${opts.capacitySat} sat`);
    const opened = await payer(['open', wsUrl, '--capacity', opts.capacitySat.toString(), '--variant', opts.variant, '--expiry-blocks', '144']);
    const channelId = String(opened.channelId);

    log(`payer process: ${opts.payments} payments of ${opts.amountSat} sat over WebSocket`);
    const paid = await payer(['pay', opts.amountSat.toString(), '--count', String(opts.payments)]);

    log(`payer process: ${opts.paidRequests} paid HTTP requests to ${httpUrl}${PAID_ROUTE_PREFIX}demo (402 → pay → 200)`);
    const fetched = await payer(['fetch', `${httpUrl}${PAID_ROUTE_PREFIX}demo`, '--count', String(opts.paidRequests), '--max-price', opts.priceSat.toString()]);

    log('payer process: asking the payee to close; the payee broadcasts the newest payment');
    const closed = await payer(['close']);
    const closeTxid = String(closed.closeTxid);
    const ackedSat = BigInt(String(closed.ackedSat));

    // Everything below is read back from the node.
    const onChain = await backend.getTransaction(closeTxid);
    if (!onChain) throw new Error(`the node does not know close ${closeTxid}`);
    const fundingTxid = channelId.split(':')[0]!;
    const fundingOnChain = await backend.getTransaction(fundingTxid);
    if (!fundingOnChain) throw new Error(`the node does not know funding ${fundingTxid}`);
    const fundingOut = Transaction.fromHex(fundingOnChain.hex).outs[Number(channelId.split(':')[1])]!;
    const closeTx = Transaction.fromHex(onChain.hex);
    const payeeReceived = closeTx.outs.filter((o) => Buffer.from(o.script).equals(payoutScript)).reduce((s, o) => s + o.value, 0n);
    const outputs = closeTx.outs.reduce((s, o) => s + o.value, 0n);
    const fee = fundingOut.value - outputs;
    const result: DemoResult = {
      variant: opts.variant,
      network: 'regtest',
      node: backend.name,
      processes: pids.size,
      capacitySat: Number(fundingOut.value),
      payments: opts.payments,
      paidSat: Number(ackedSat),
      paidRequests: Number(fetched.paidRequests),
      requestsSat: Number(BigInt(String(fetched.ackedSat)) - BigInt(String(paid.ackedSat))),
      fundingTxid,
      channelId,
      closeTxid,
      closeConfirmations: onChain.confirmations,
      payeeReceivedSat: Number(payeeReceived),
      payerReceivedSat: Number(outputs - payeeReceived),
      closeFeeSat: Number(fee),
      closeVsize: closeTx.virtualSize(),
      paymentsPerSec: Number(paid.paymentsPerSec),
    };
    log(`on chain: payee ${result.payeeReceivedSat} + payer ${result.payerReceivedSat} + fee ${result.closeFeeSat} = ${result.payeeReceivedSat + result.payerReceivedSat + result.closeFeeSat} sat (capacity ${result.capacitySat})`);
    return result;
  } finally {
    if (payee) await stopChild(payee.child);
    await chain.stop();
    fs.rmSync(home, { recursive: true, force: true });
  }
}
