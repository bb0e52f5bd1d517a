/**
 * The chain as a page sees it through its payee (`paychan payee serve`): the tip from
 * `GET /v1/chain/tip`; broadcasts (the refund) through an Esplora endpoint when one is given,
 * never through the payee, whose interest is that the refund is late.
 */
import type { PayerChain } from '../payer/payer-client.js';
import { esploraChain } from './esplora-chain.js';

/**
 * @param payeeUrl the payee's HTTP origin, e.g. `https://pay.example` or `http://127.0.0.1:8420`.
 * @param esploraUrl where to broadcast the refund (e.g. `https://mempool.space/api`); without it
 *   `broadcast` rejects, and the refund kit is the way out.
 */
export function payeeChain(payeeUrl: string, esploraUrl?: string): PayerChain {
  const base = payeeUrl.replace(/\/+$/, '');
  const esplora = esploraUrl ? esploraChain(esploraUrl) : null;
  return {
    async getTip() {
      const res = await fetch(`${base}/v1/chain/tip`);
      if (!res.ok) throw new Error(`GET ${base}/v1/chain/tip: HTTP ${res.status}`);
      const tip = (await res.json()) as { height: number; hash: string };
      if (!Number.isSafeInteger(tip.height) || !/^[0-9a-f]{64}$/.test(tip.hash)) throw new Error(`bad tip from ${base}`);
      return tip;
    },
    broadcast: (txHex) => (esplora ? esplora.broadcast(txHex) : Promise.reject(new Error('no broadcast endpoint: give payeeChain an Esplora URL, or use the refund kit'))),
  };
}
