/**
 * The chain a page needs (the tip, to set a channel's expiry; a broadcast, for its refund) over
 * an Esplora-style REST endpoint (`GET /blocks/tip/height`, `GET /blocks/tip/hash`, `POST /tx`),
 * the API of mempool.space, blockstream.info and self-hosted electrs: the "configured endpoint"
 * through which a page broadcasts its refund without trusting the payee to do it.
 */
import type { PayerChain } from '../payer/payer-client.js';

/**
 * @param baseUrl e.g. `https://mempool.space/api` (no trailing slash needed).
 * @throws TypeError if `baseUrl` is not an http(s) URL.
 */
export function esploraChain(baseUrl: string, fetchImpl: typeof fetch = globalThis.fetch.bind(globalThis)): PayerChain {
  if (!/^https?:\/\//i.test(baseUrl) || !URL.canParse(baseUrl)) throw new TypeError(`not an http(s) URL: ${baseUrl}`);
  const base = baseUrl.replace(/\/+$/, '');
  const text = async (path: string, init?: RequestInit): Promise<string> => {
    const res = await fetchImpl(`${base}${path}`, init);
    const body = await res.text();
    if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${base}${path}: HTTP ${res.status}: ${body.slice(0, 200)}`);
    return body.trim();
  };
  return {
    async getTip() {
      const [height, hash] = await Promise.all([text('/blocks/tip/height'), text('/blocks/tip/hash')]);
      const h = Number(height);
      if (!Number.isSafeInteger(h) || h < 0 || !/^[0-9a-f]{64}$/.test(hash)) throw new Error(`bad tip from ${base}: ${height} ${hash}`);
      return { height: h, hash };
    },
    async broadcast(txHex) {
      const txid = await text('/tx', { method: 'POST', body: txHex, headers: { 'content-type': 'text/plain' } });
      if (!/^[0-9a-f]{64}$/.test(txid)) throw new Error(`bad txid from ${base}: ${txid.slice(0, 100)}`);
      return txid;
    },
  };
}
