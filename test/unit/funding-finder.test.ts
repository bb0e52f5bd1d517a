/**
 * FundingFinder (src/payee/funding-finder.ts) over a scripted chain: it finds a P2WSH output in the
 * newest `depth` blocks only, ignores other outputs, indexes a block once (a second lookup asks
 * the node for the tip, not the blocks again), and re-indexes a height whose block changed (a
 * reorg), dropping what the replaced block held.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../src/protocol/bytes.js';
import { fundingScriptOf } from '../../src/protocol/channel.js';
import { FundingFinder } from '../../src/payee/funding-finder.js';
import { fundingTx, terms } from '../helpers/protocol.js';

const t = terms('spilman-v2');
const script = fundingScriptOf(t).fundingScript;
const funding = fundingTx(t, { vout: 1 });
const other = fundingTx(t, { script: Uint8Array.from([0x00, 0x14, ...new Array<number>(20).fill(7)]) });

/** A chain of `blocks` (hex txs per height); `calls` counts getBlock calls. */
function chain(blocks: string[][]) {
  const hashes = blocks.map((_, h) => h.toString(16).padStart(64, '0'));
  const calls = { getBlock: 0 };
  return {
    calls,
    blocks,
    hashes,
    backend: {
      getTip: async () => ({ height: blocks.length - 1, hash: hashes[blocks.length - 1]! }),
      getBlock: async (height: number) => {
        calls.getBlock++;
        return { height, hash: hashes[height]!, txs: blocks[height]! };
      },
    },
  };
}

describe('FundingFinder', () => {
  it('finds the channel output in a recent block, not other outputs, not older than depth', async () => {
    const c = chain([[funding.toHex()], [], [other.toHex()], []]);
    let now = 0;
    const deep = new FundingFinder(c.backend, 4, () => (now += 5_000));
    expect(await deep.find(toHex(script))).toEqual({ txid: funding.getId(), vout: 1, valueSat: t.capacitySat, height: 0, txHex: funding.toHex() });
    expect(await deep.find(toHex(other.outs[0]!.script))).toBeNull(); // P2WPKH: not a channel
    const shallow = new FundingFinder(chain([[funding.toHex()], [], [other.toHex()], []]).backend, 3, () => (now += 5_000));
    expect(await shallow.find(toHex(script))).toBeNull();
  });

  it('keeps the first payment to a channel address: a later one to the same address does not replace it', async () => {
    const later = fundingTx(t, { valueSat: 1_234n }); // anyone can pay a public address again
    let now = 0;
    const finder = new FundingFinder(chain([[funding.toHex()], [later.toHex()], []]).backend, 10, () => (now += 5_000));
    expect(await finder.find(toHex(script))).toMatchObject({ txid: funding.getId(), height: 0, valueSat: t.capacitySat });
  });

  it('indexes each block once, and a height again when its block changed', async () => {
    const c = chain([[], [funding.toHex()], []]);
    let now = 0;
    const finder = new FundingFinder(c.backend, 10, () => (now += 5_000));
    expect((await finder.find(toHex(script)))?.height).toBe(1);
    const after = c.calls.getBlock;
    expect((await finder.find(toHex(script)))?.height).toBe(1);
    expect(c.calls.getBlock - after).toBe(1); // the tip block only: unchanged, so it stops there
    // A reorg replaces blocks 1 and 2 with ones without the funding.
    c.blocks[1] = [];
    c.hashes[1] = 'ab'.repeat(32);
    c.hashes[2] = 'cd'.repeat(32);
    expect(await finder.find(toHex(script))).toBeNull();
  });

  it('asks for the tip at most once a second, whatever strangers ask', async () => {
    const c = chain([[funding.toHex()]]);
    let tips = 0;
    const backend = { ...c.backend, getTip: async () => (tips++, c.backend.getTip()) };
    const finder = new FundingFinder(backend, 10, () => 0);
    for (let i = 0; i < 20; i++) await finder.find('00'.repeat(34));
    expect(tips).toBe(1);
  });
});
