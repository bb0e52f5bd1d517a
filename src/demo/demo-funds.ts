/**
 * Coins for the demo's payer on a node the demo does not own (`--rpc-url`).
 *
 * bitcoind mines to any address, so the demo mines 101 blocks to the payer (the first coinbase
 * matures). btcd mines only to its own `--miningaddr`, so the coins must come from the wallet
 * of that address: for the node of `paychan regtest start` that is paychan's faucet (its seed is
 * in $PAYCHAN_HOME/regtest), which pays the payer as `paychan regtest fund` would. For any other
 * btcd the demo says, in one line, what it needs.
 */
import fs from 'node:fs';
import { address as baddress } from 'bitcoinjs-lib';
import { loadOrCreateSeed } from '../app/files.js';
import { localFaucetSeedPath } from '../app/node-connection.js';
import type { ExternalRegtestNode } from '../chain/external-node.js';
import { secp256k1 } from '../crypto/index.js';
import { bitcoinjsNetwork } from '../protocol/network.js';
import { WalletKeys } from '../wallet/keys.js';
import { Wallet } from '../wallet/wallet.js';

/** Fee rate of the faucet's payment to the payer. */
const FUNDING_FEE_RATE_SAT_PER_VB = 2;

/**
 * Gives `payerAddress` at least `amountSat` of confirmed coins on `node`.
 * @throws Error (one line) if the node is a btcd mining to an address whose key paychan lacks.
 */
export async function fundPayerOnExternalNode(node: ExternalRegtestNode, url: string, payerAddress: string, amountSat: bigint, log: (line: string) => void): Promise<void> {
  if (node.minesToAnyAddress) {
    log('mining 101 blocks so the payer has a mature coinbase');
    await node.mine(101, payerAddress);
    return;
  }
  // Which address does this btcd mine to? Mine one block and look.
  const coinbaseScript = await node.mine(1, payerAddress);
  const seedPath = localFaucetSeedPath();
  const seed = fs.existsSync(seedPath) ? loadOrCreateSeed(seedPath) : null;
  const faucetScript = seed && Buffer.from(WalletKeys.fromSeed(seed, 'regtest').address('receive', 0).script).toString('hex');
  if (!seed || faucetScript !== coinbaseScript) {
    throw new Error(
      `the btcd at ${url} mines to ${describeScript(coinbaseScript)} (its --miningaddr), whose key paychan does not hold, so the demo cannot fund its payer there; ` +
        `the demo needs a regtest node with a transaction index that pays it coins: the node of 'paychan regtest start' (same PAYCHAN_HOME), or a bitcoind -regtest -txindex=1 (it mines to any address)`,
    );
  }
  log('funding the payer from the faucet of paychan regtest start');
  const faucet = await Wallet.open({ seed, network: 'regtest', backend: node.backend, secp: secp256k1() });
  await faucet.sync();
  if (faucet.balance().confirmedSat < amountSat + 100_000n) {
    log('the faucet is low; mining 101 blocks');
    await node.mine(101, payerAddress);
    await faucet.sync();
  }
  const sent = await faucet.send(payerAddress, amountSat, FUNDING_FEE_RATE_SAT_PER_VB);
  await node.mine(1, payerAddress);
  log(`the faucet sent ${amountSat} sat to the payer in ${sent.txid}`);
}

function describeScript(scriptHex: string): string {
  try {
    return baddress.fromOutputScript(Buffer.from(scriptHex, 'hex'), bitcoinjsNetwork('regtest'));
  } catch {
    return `script ${scriptHex}`;
  }
}
