/**
 * `paychan demo --browser`: the payer in a page. Starts a private regtest node (with this
 * process as its miner and faucet) and the payee (`paychan payee serve`, whose /demo is the page),
 * prints the page's URL, then pays any address or bitcoin: URI pasted on stdin from the faucet, as
 * the user's wallet would, and mines it. Runs until Ctrl-C (or stdin ends).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { address as baddress } from 'bitcoinjs-lib';
import { loadOrCreateSeed } from '../app/files.js';
import { secp256k1 } from '../crypto/index.js';
import { bitcoinjsNetwork } from '../protocol/network.js';
import { WalletKeys } from '../wallet/keys.js';
import { Wallet } from '../wallet/wallet.js';
import { startDemoChain } from './demo-chain.js';
import { startPaychan, stopChild } from './processes.js';

/** After a payment: a block every 2 s, ten times (the page's channel expires 144 blocks out). */
const AFTER_FUNDING_BLOCKS = 10;
const BLOCK_INTERVAL_MS = 2_000;

export interface BrowserDemoOptions {
  readonly listen: string;
  readonly priceSat: bigint;
  readonly rpc?: { url: string; user: string; pass: string };
  readonly log: (line: string) => void;
  /** Where pasted addresses come from (default stdin). */
  readonly input?: NodeJS.ReadableStream;
}

/** `bitcoin:ADDR?amount=0.001` or a bare address → what to pay (default 100,000 sat). */
export function paymentOf(text: string): { address: string; valueSat: bigint } {
  const uri = /^bitcoin:([^?]+)(?:\?(.*))?$/i.exec(text.trim());
  if (!uri) return { address: text.trim(), valueSat: 100_000n };
  const amount = new URLSearchParams(uri[2] ?? '').get('amount');
  const [whole = '0', fraction = ''] = (amount ?? '0.001').split('.');
  return { address: uri[1]!, valueSat: BigInt(whole) * 100_000_000n + BigInt(fraction.padEnd(8, '0').slice(0, 8)) };
}

export async function runBrowserDemo(opts: BrowserDemoOptions): Promise<void> {
  const { log } = opts;
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-browser-demo-'));
  const seed = loadOrCreateSeed(path.join(home, 'faucet-seed'));
  const faucetAddress = WalletKeys.fromSeed(seed, 'regtest').address('receive', 0).address;
  const chain = await startDemoChain({ rpc: opts.rpc, payerAddress: faucetAddress, log });
  let payee: Awaited<ReturnType<typeof startPaychan>> | undefined;
  try {
    await chain.fundPayer(10_000_000n);
    const faucet = await Wallet.open({ seed, network: 'regtest', backend: chain.backend, secp: secp256k1() });
    await faucet.sync();
    payee = await startPaychan(['payee', 'serve', ...chain.rpcArgs, '--data-dir', path.join(home, 'payee'), '--listen', opts.listen, '--price-sat', opts.priceSat.toString()], log);
    log(`open ${String(payee.ready.url)}/demo in a browser`);
    log("paste the page's bitcoin: URI (or address) here to pay it from the demo's faucet; Ctrl-C to stop");
    const lines = readline.createInterface({ input: opts.input ?? process.stdin });
    const stopped = new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
      lines.once('close', resolve);
    });
    lines.on('line', (line) => {
      if (!line.trim()) return;
      void (async () => {
        const { address, valueSat } = paymentOf(line);
        const script = baddress.toOutputScript(address, bitcoinjsNetwork('regtest'));
        await faucet.sync();
        const { txHex, txid } = await faucet.fund([{ script, valueSat }], 2);
        await chain.backend.broadcast(txHex);
        await chain.mine(1);
        log(`paid ${valueSat} sat to ${address} in ${txid} (mined)`);
        // Blocks keep coming for a while, as on a real chain: the page learns the funding once
        // confirmed, and the payee counts confirmations at the blocks after it.
        for (let i = 0; i < AFTER_FUNDING_BLOCKS; i++) {
          await new Promise((resolve) => setTimeout(resolve, BLOCK_INTERVAL_MS));
          await chain.mine(1);
        }
      })().catch((err: unknown) => log(`cannot pay '${line.trim()}': ${err instanceof Error ? err.message : String(err)}`));
    });
    await stopped;
    lines.close();
  } finally {
    if (payee) await stopChild(payee.child);
    await chain.stop();
    fs.rmSync(home, { recursive: true, force: true });
  }
}
