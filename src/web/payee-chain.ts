/**
 * The chain as a page sees it through its payee (`paychan payee serve`): the tip from
 * `GET /v1/chain/tip`; broadcasts (the refund) through an Esplora endpoint when one is given,
 * never through the payee, whose interest is that the refund is late; and, with that endpoint, a
 * funding older than the payee's funding index (its newest 12 blocks).
 *
 * A new channel's expiry counts from the tip, so a payee that reports a tip far ahead makes the
 * payer's refund wait that much longer. With an Esplora endpoint the page has a second, independent
 * view: it takes the higher of the two tips while they agree within {@link TIP_DISAGREEMENT_BLOCKS}
 * (one may simply have seen a block first) and refuses the payee's when it runs further ahead.
 * Without one, the payee's tip is all the page has: the demo page shows the expiry height before
 * the channel is funded.
 */
import { esploraChain, type PageChain } from './esplora-chain.js';

/** How far ahead of the Esplora endpoint's tip the payee's may be, blocks. */
export const TIP_DISAGREEMENT_BLOCKS = 3;

/**
 * @param payeeUrl the payee's HTTP origin, e.g. `https://pay.example` or `http://127.0.0.1:8420`.
 * @param esploraUrl where to broadcast the refund and check the payee's tip (e.g.
 *   `https://mempool.space/api`); without it `broadcast` rejects, and the refund kit is the way out.
 */
export function payeeChain(payeeUrl: string, esploraUrl?: string, fetchImpl: typeof fetch = globalThis.fetch.bind(globalThis)): PageChain {
  const base = payeeUrl.replace(/\/+$/, '');
  const esplora = esploraUrl ? esploraChain(esploraUrl, fetchImpl) : null;
  const payeeTip = async (): Promise<{ height: number; hash: string }> => {
    const res = await fetchImpl(`${base}/v1/chain/tip`);
    if (!res.ok) throw new Error(`GET ${base}/v1/chain/tip: HTTP ${res.status}`);
    const tip = (await res.json()) as { height: number; hash: string };
    if (!Number.isSafeInteger(tip.height) || tip.height < 0 || !/^[0-9a-f]{64}$/.test(tip.hash)) throw new Error(`bad tip from ${base}`);
    return { height: tip.height, hash: tip.hash };
  };
  return {
    async getTip() {
      if (!esplora) return payeeTip();
      const [payee, independent] = await Promise.all([payeeTip(), esplora.getTip()]);
      if (payee.height - independent.height > TIP_DISAGREEMENT_BLOCKS) {
        throw new Error(`the payee reports the chain at height ${payee.height}, the Esplora endpoint at ${independent.height}: a channel's expiry counted from the payee's tip would delay its refund, so none is opened`);
      }
      return payee.height > independent.height ? payee : independent;
    },
    broadcast: (txHex) => (esplora ? esplora.broadcast(txHex) : Promise.reject(new Error('no broadcast endpoint: give payeeChain an Esplora URL, or use the refund kit'))),
    // The payee indexes only its newest blocks (funding-finder.ts): an older funding is found here.
    ...(esplora ? { findFunding: (outputScript: Uint8Array, valueSat: bigint) => esplora.findFunding(outputScript, valueSat) } : {}),
  };
}
