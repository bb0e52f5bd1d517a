/** payeeChain's tip: the payee's alone, or checked against an Esplora endpoint's. */
import { describe, expect, it } from 'vitest';
import { payeeChain, TIP_DISAGREEMENT_BLOCKS } from '../../src/web/payee-chain.js';

const HASH_P = 'aa'.repeat(32);
const HASH_E = 'bb'.repeat(32);

/** A fetch answering the payee's `/v1/chain/tip` and an Esplora's `/blocks/tip/*` from fixed heights. */
function fakeFetch(payeeHeight: number, esploraHeight: number): typeof fetch {
  return (async (input: string | URL | Request) => {
    const url = String(input);
    if (url === 'http://payee.test/v1/chain/tip') return new Response(JSON.stringify({ height: payeeHeight, hash: HASH_P }));
    if (url === 'http://esplora.test/api/blocks/tip/height') return new Response(String(esploraHeight));
    if (url === 'http://esplora.test/api/blocks/tip/hash') return new Response(HASH_E);
    return new Response('not found', { status: 404 });
  }) as typeof fetch;
}

describe('payeeChain tip', () => {
  it("takes the payee's tip when there is no Esplora endpoint", async () => {
    expect(await payeeChain('http://payee.test/', undefined, fakeFetch(900, 0)).getTip()).toEqual({ height: 900, hash: HASH_P });
  });

  it('takes the higher tip while the two agree within the margin', async () => {
    const chain = (p: number, e: number) => payeeChain('http://payee.test', 'http://esplora.test/api', fakeFetch(p, e));
    expect(await chain(100, 100).getTip()).toEqual({ height: 100, hash: HASH_E });
    expect(await chain(100 + TIP_DISAGREEMENT_BLOCKS, 100).getTip()).toEqual({ height: 100 + TIP_DISAGREEMENT_BLOCKS, hash: HASH_P });
    // A payee behind the Esplora endpoint costs the payer nothing: the higher tip counts.
    expect(await chain(90, 100).getTip()).toEqual({ height: 100, hash: HASH_E });
  });

  it("refuses a payee's tip further ahead than the margin", async () => {
    const chain = payeeChain('http://payee.test', 'http://esplora.test/api', fakeFetch(100 + TIP_DISAGREEMENT_BLOCKS + 1, 100));
    await expect(chain.getTip()).rejects.toThrow(/payee reports the chain at height 104, the Esplora endpoint at 100/);
  });

  it('refuses a malformed tip from the payee', async () => {
    await expect(payeeChain('http://payee.test', undefined, fakeFetch(-1, 0)).getTip()).rejects.toThrow(/bad tip/);
  });
});

describe('payeeChain funding lookup', () => {
  it('is there only with an Esplora endpoint', () => {
    expect(payeeChain('http://payee.test', undefined, fakeFetch(1, 1)).findFunding).toBeUndefined();
    expect(typeof payeeChain('http://payee.test', 'http://esplora.test/api', fakeFetch(1, 1)).findFunding).toBe('function');
  });
});
