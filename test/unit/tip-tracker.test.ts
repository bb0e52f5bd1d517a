import { describe, expect, it } from 'vitest';
import type { Block, BlockTip } from '../../src/chain/backend.js';
import { TipTracker } from '../../src/payee/tip-tracker.js';

const tip = (height: number, hash = `h${height}`): BlockTip => ({ height, hash });

/** A node whose best chain is `chain` (hash by height), counting tip reads. */
function node(chain: Map<number, string>, best: () => BlockTip) {
  const calls = { getTip: 0 };
  const backend = {
    getTip: async () => {
      calls.getTip++;
      return best();
    },
    getBlock: async (height: number): Promise<Block> => {
      const hash = chain.get(height);
      if (hash === undefined) throw new Error(`no block ${height}`);
      return { height, hash, txs: [] };
    },
  };
  return { backend, calls };
}

describe('tip tracker', () => {
  it('takes a notified tip at once, and tells a chain switch from an extension', async () => {
    const chain = new Map([[10, 'h10'], [11, 'h11']]);
    const { backend } = node(chain, () => tip(11));
    const log: string[] = [];
    const tips = new TipTracker(backend, tip(10), (l) => log.push(l));
    const extended = tips.advance(tip(11));
    expect(tips.tip).toEqual(tip(11)); // before the check resolves: payments see it now
    expect(await extended).toBe(false);
    expect(await tips.advance(tip(11))).toBe(false); // the same tip again
    chain.set(11, 'other'); // the block we knew at 11 is gone
    expect(await tips.advance(tip(12))).toBe(true);
    expect(await tips.advance(tip(12, 'x'))).toBe(true); // a tip no higher, another hash
    expect(log).toHaveLength(2);
  });

  it('reads the tip for a cookie once for every hello meanwhile, and never below the notified tip', async () => {
    let best = tip(20);
    const { backend, calls } = node(new Map(), () => best);
    const tips = new TipTracker(backend, tip(15), () => undefined);
    expect(await Promise.all([tips.cookieHeight(), tips.cookieHeight(), tips.cookieHeight()])).toEqual([20, 20, 20]);
    expect(calls.getTip).toBe(1);
    expect(tips.knownHeight()).toBe(20);
    best = tip(5); // a node that lags the notifications
    await tips.advance(tip(25));
    expect(tips.knownHeight()).toBe(25);
  });

  it('forgets the tip read for cookies when the chain switches', async () => {
    const { backend } = node(new Map(), () => tip(30));
    const tips = new TipTracker(backend, tip(10), () => undefined);
    await tips.cookieHeight();
    expect(tips.knownHeight()).toBe(30);
    expect(await tips.advance(tip(9))).toBe(true);
    expect(tips.knownHeight()).toBe(9);
  });
});
