/**
 * The duplex demo: a payee (`paychan payee serve`) and a payer (`paychan payer ...`) as separate
 * processes on a private regtest node. Both put coins into one channel (one funding transaction
 * with inputs from each), the payer pays, the payee pays back (`paychan payee pay-back`, queued
 * while the payer is away and taken by `paychan payer sync`), the payer pays again, and they
 * close cooperatively. Amounts, fee and confirmations are read back from the node, and checked
 * against both sides' books.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Transaction } from 'bitcoinjs-lib';
import { loadOrCreateSeed } from '../app/files.js';
import { secp256k1 } from '../crypto/index.js';
import { WalletKeys } from '../wallet/keys.js';
import { Wallet } from '../wallet/wallet.js';
import { startDemoChain } from './demo-chain.js';
import { runPaychan, startPaychan, stopChild } from './processes.js';

export interface DuplexDemoOptions {
  /** What the payer puts in, and what it asks the payee to put in. */
  readonly contributionASat: bigint;
  readonly contributionBSat: bigint;
  /** Payer → payee updates before and after the pay-backs, and their amount. */
  readonly payments: number;
  readonly amountSat: bigint;
  /** Payee → payer pay-backs, and their amount. */
  readonly payBacks: number;
  readonly payBackSat: bigint;
  readonly rpc?: { url: string; user: string; pass: string };
  readonly log: (line: string) => void;
}

export interface DuplexDemoResult {
  readonly variant: 'duplex';
  readonly network: 'regtest';
  readonly node: string;
  readonly processes: number;
  readonly capacitySat: number;
  readonly contributionASat: number;
  readonly contributionBSat: number;
  readonly fundingTxid: string;
  readonly fundingInputs: number;
  readonly channelId: string;
  readonly updates: number;
  readonly paidAtoBSat: number;
  readonly paidBtoASat: number;
  readonly closeTxid: string;
  readonly closeConfirmations: number;
  readonly closeKind: string;
  readonly payerReceivedSat: number;
  readonly payeeReceivedSat: number;
  readonly closeFeeSat: number;
  readonly closeVsize: number;
}

export async function runDuplexDemo(opts: DuplexDemoOptions): Promise<DuplexDemoResult> {
  const { log } = opts;
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-duplex-demo-'));
  const payerDir = path.join(home, 'payer');
  const payeeDir = path.join(home, 'payee');
  const payerSeed = loadOrCreateSeed(path.join(payerDir, 'seed'));
  const payerAddress = WalletKeys.fromSeed(payerSeed, 'regtest').address('receive', 0).address;
  const payeeAddress = WalletKeys.fromSeed(loadOrCreateSeed(path.join(payeeDir, 'seed')), 'regtest').address('receive', 0).address;
  const chain = await startDemoChain({ rpc: opts.rpc, payerAddress, log });
  const { backend, rpcArgs } = chain;
  const pids = new Set<number>([process.pid]);
  let payee: Awaited<ReturnType<typeof startPaychan>> | undefined;
  try {
    // The payer's share, the payee's coins (below), fees, and room to spare.
    await chain.fundPayer(opts.contributionASat + opts.contributionBSat + 1_000_000n);
    // The payee needs coins of its own to put into the channel: the payer's wallet sends some.
    const funder = await Wallet.open({ seed: payerSeed, network: 'regtest', backend, secp: secp256k1() });
    await funder.sync();
    const gift = await funder.send(payeeAddress, opts.contributionBSat + 100_000n, 2);
    log(`sent ${opts.contributionBSat + 100_000n} sat to the payee's wallet (${gift.txid}); waiting for a block`);
    while (((await backend.getTransaction(gift.txid))?.confirmations ?? 0) < 1) await new Promise((r) => setTimeout(r, 100));

    log('starting the payee process (paychan payee serve)');
    payee = await startPaychan(['payee', 'serve', ...rpcArgs, '--data-dir', payeeDir, '--listen', '127.0.0.1:0'], log);
    pids.add(payee.child.pid!);
    const wsUrl = String(payee.ready.wsUrl);
    const listen = new URL(String(payee.ready.url)).host;
    const payer = (args: string[]) => runPaychan(['payer', ...args, ...rpcArgs, '--data-dir', payerDir, '--fee-rate', '2'], log).then((r) => (pids.add(r.pid), r.result));
    const payeeCmd = (args: string[]) => runPaychan(['payee', ...args, '--data-dir', payeeDir, '--listen', listen], log).then((r) => (pids.add(r.pid), r.result));

    log(`payer process: opening a duplex channel, ${opts.contributionASat} sat from the payer and ${opts.contributionBSat} sat from the payee`);
    const opened = await payer(['open', wsUrl, '--variant', 'duplex', '--capacity', opts.contributionASat.toString(), '--payee-contribution', opts.contributionBSat.toString()]);
    const channelId = String(opened.channelId);

    log(`payer process: ${opts.payments} updates paying ${opts.amountSat} sat each to the payee`);
    await payer(['pay', opts.amountSat.toString(), '--count', String(opts.payments)]);

    log(`payee process: ${opts.payBacks} pay-backs of ${opts.payBackSat} sat (the payer is away: they queue)`);
    for (let i = 0; i < opts.payBacks; i++) await payeeCmd(['pay-back', channelId, opts.payBackSat.toString()]);
    log('payer process: sync (takes the queued pay-backs)');
    await payer(['sync']);

    log(`payer process: ${opts.payments} more updates`);
    await payer(['pay', opts.amountSat.toString(), '--count', String(opts.payments)]);

    log('payer process: cooperative close');
    const closed = await payer(['close']);
    const closeTxid = String(closed.closeTxid);
    const paidAtoBSat = BigInt(String(closed.paidAtoBSat));
    const paidBtoASat = BigInt(String(closed.paidBtoASat));
    const updates = Number(closed.updates);
    const payeeView = (await payeeCmd(['channels'])).channels as Record<string, unknown>[];
    const b = payeeView.find((c) => c.channelId === channelId);
    if (!b || String(b.paidAtoBSat) !== paidAtoBSat.toString() || String(b.paidBtoASat) !== paidBtoASat.toString()) {
      throw new Error(`the payee's books disagree with the payer's: ${JSON.stringify(b)}`);
    }

    // Everything below is read back from the node.
    const fundingTxid = channelId.split(':')[0]!;
    const funding = await backend.getTransaction(fundingTxid);
    const close = await backend.getTransaction(closeTxid);
    if (!funding || !close) throw new Error('the node does not know the funding or the close');
    const fundingTx = Transaction.fromHex(funding.hex);
    const capacity = fundingTx.outs[Number(channelId.split(':')[1])]!.value;
    const closeTx = Transaction.fromHex(close.hex);
    // Outputs are A's then B's (docs/duplex.md); both balances are far above dust here.
    const [toA, toB] = [closeTx.outs[0]!.value, closeTx.outs[1]!.value];
    const fee = capacity - toA - toB;
    const expectA = opts.contributionASat - paidAtoBSat + paidBtoASat - (fee + 1n) / 2n;
    const expectB = opts.contributionBSat + paidAtoBSat - paidBtoASat - fee / 2n;
    if (toA !== expectA || toB !== expectB) throw new Error(`on chain A ${toA} B ${toB}, the books say A ${expectA} B ${expectB}`);
    const result: DuplexDemoResult = {
      variant: 'duplex',
      network: 'regtest',
      node: backend.name,
      processes: pids.size,
      capacitySat: Number(capacity),
      contributionASat: Number(opts.contributionASat),
      contributionBSat: Number(opts.contributionBSat),
      fundingTxid,
      fundingInputs: fundingTx.ins.length,
      channelId,
      updates,
      paidAtoBSat: Number(paidAtoBSat),
      paidBtoASat: Number(paidBtoASat),
      closeTxid,
      closeConfirmations: close.confirmations,
      closeKind: closeTx.locktime === 0 ? 'cooperative' : 'unilateral',
      payerReceivedSat: Number(toA),
      payeeReceivedSat: Number(toB),
      closeFeeSat: Number(fee),
      closeVsize: closeTx.virtualSize(),
    };
    log(`on chain: payer ${result.payerReceivedSat} + payee ${result.payeeReceivedSat} + fee ${result.closeFeeSat} = ${result.payerReceivedSat + result.payeeReceivedSat + result.closeFeeSat} sat (capacity ${result.capacitySat})`);
    return result;
  } finally {
    if (payee) await stopChild(payee.child);
    await chain.stop();
    fs.rmSync(home, { recursive: true, force: true });
  }
}
