/**
 * Finds a channel's funding on chain by its output script, for payers that cannot see the chain:
 * a page whose user paid the channel's BIP21 address from any wallet learns the funding
 * transaction from the payee (GET /v1/funding/:script), then sends it as its funding message.
 * Trusting the payee here risks nothing: the page checks the transaction pays exactly the channel
 * output, and its payment signatures are valid only on that outpoint.
 *
 * Confirmed fundings only, in the newest `depth` blocks (a v2 channel opens at the payee's
 * confirmations anyway); the index keeps the P2WSH outputs of those blocks (what every channel
 * funds), so a lookup is a map access and a stranger's queries cost no node calls beyond one tip
 * check a second. A reorg is seen as a changed block hash and that height is indexed again.
 */
import type { ChainBackend } from '../chain/backend.js';
import { Transaction } from 'bitcoinjs-lib';
import { toHex } from '../protocol/bytes.js';

export interface FoundFunding {
  readonly txid: string;
  readonly vout: number;
  readonly valueSat: bigint;
  readonly height: number;
  readonly txHex: string;
}

interface IndexedBlock {
  readonly hash: string;
  /** Output script (hex) → the funding it is in. */
  readonly outputs: Map<string, FoundFunding>;
}

const TIP_CHECK_MS = 1_000;

export class FundingFinder {
  private readonly blocks = new Map<number, IndexedBlock>();
  private refreshing: Promise<void> | null = null;
  private checkedAtMs = -Infinity;

  /** @param depth how many of the newest blocks to index (default 12). */
  constructor(
    private readonly backend: Pick<ChainBackend, 'getTip' | 'getBlock'>,
    private readonly depth = 12,
    private readonly nowMs: () => number = () => performance.now(),
  ) {
    if (!Number.isSafeInteger(depth) || depth < 1 || depth > 1000) throw new RangeError('depth must be an integer in 1..1000');
  }

  /**
   * The oldest confirmed output paying `scriptHex` in the indexed blocks, or null.
   * @throws ChainBackendError when the node cannot be asked.
   */
  async find(scriptHex: string): Promise<FoundFunding | null> {
    await this.refresh();
    let best: FoundFunding | null = null;
    for (const block of this.blocks.values()) {
      const found = block.outputs.get(scriptHex.toLowerCase());
      // The first payment to a channel's address is its funding: a later one to the same address
      // (a wallet paying twice, anyone once the address is public) must not replace it.
      if (found && (!best || found.height < best.height)) best = found;
    }
    return best;
  }

  private refresh(): Promise<void> {
    if (this.nowMs() - this.checkedAtMs < TIP_CHECK_MS) return this.refreshing ?? Promise.resolve();
    this.checkedAtMs = this.nowMs();
    this.refreshing ??= this.index().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private async index(): Promise<void> {
    const tip = await this.backend.getTip();
    const lowest = Math.max(0, tip.height - this.depth + 1);
    for (const height of this.blocks.keys()) if (height < lowest || height > tip.height) this.blocks.delete(height);
    for (let height = tip.height; height >= lowest; height--) {
      const block = await this.backend.getBlock(height);
      if (this.blocks.get(height)?.hash === block.hash) break; // the rest is indexed and unchanged
      this.blocks.set(height, { hash: block.hash, outputs: indexOutputs(block.txs, height) });
    }
  }
}

/** The P2WSH outputs of a block's transactions (OP_0 <32 bytes>: every channel's funding). */
function indexOutputs(txs: readonly string[], height: number): Map<string, FoundFunding> {
  const outputs = new Map<string, FoundFunding>();
  for (const txHex of txs) {
    const tx = Transaction.fromHex(txHex);
    let txid: string | null = null;
    tx.outs.forEach((out, vout) => {
      if (out.script.length !== 34 || out.script[0] !== 0 || out.script[1] !== 32) return;
      txid ??= tx.getId();
      const script = toHex(out.script);
      if (!outputs.has(script)) outputs.set(script, { txid, vout, valueSat: out.value, height, txHex });
    });
  }
  return outputs;
}
