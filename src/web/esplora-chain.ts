/**
 * The chain a page needs (the tip, to set a channel's expiry; a broadcast, for its refund; its
 * funding, when the payee no longer indexes it) over an Esplora-style REST endpoint
 * (`GET /blocks/tip/height`, `GET /blocks/tip/hash`, `POST /tx`, `GET /scripthash/:hash/txs/chain`,
 * `GET /tx/:txid/hex`), the API of mempool.space, blockstream.info and self-hosted electrs: the
 * "configured endpoint" through which a page broadcasts its refund without trusting the payee.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import type { PayerChain } from '../payer/payer-client.js';
import { toHex } from '../protocol/bytes.js';

/** Finds a channel's funding for a page whose user paid its address from a wallet. */
export interface FundingLookup {
  /**
   * A confirmed transaction paying exactly `valueSat` to `outputScript` (hex), the newest such, or
   * null if none. What it returns is not trusted: the page checks it pays the channel's output
   * exactly before use.
   */
  findFunding(outputScript: Uint8Array, valueSat: bigint): Promise<string | null>;
}

/** The chain a browser payer is given: a payer's chain, and a funding lookup where there is one. */
export type PageChain = PayerChain & Partial<FundingLookup>;

/** Electrum's script hash (Esplora's `/scripthash/:hash`): SHA-256 of the output script, byte-reversed, hex. */
export function electrumScriptHash(outputScript: Uint8Array): string {
  return toHex(sha256(outputScript).reverse());
}

/** A transaction's hex is at most this long here (a funding is small; 400 kB is a whole block's weight). */
const MAX_TX_HEX = 800_000;

/**
 * @param baseUrl e.g. `https://mempool.space/api` (no trailing slash needed).
 * @throws TypeError if `baseUrl` is not an http(s) URL.
 */
export function esploraChain(baseUrl: string, fetchImpl: typeof fetch = globalThis.fetch.bind(globalThis)): PayerChain & FundingLookup {
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
    async findFunding(outputScript, valueSat) {
      const script = toHex(outputScript);
      // Confirmed transactions touching the script, newest first (Esplora's first page: 25).
      let txs: unknown;
      try {
        txs = JSON.parse(await text(`/scripthash/${electrumScriptHash(outputScript)}/txs/chain`));
      } catch (err) {
        if (err instanceof SyntaxError) throw new Error(`bad transaction list from ${base}: not JSON`);
        throw err;
      }
      if (!Array.isArray(txs)) throw new Error(`bad transaction list from ${base}: not an array`);
      const pays = (o: { scriptpubkey?: unknown; value?: unknown } | null): boolean => o?.scriptpubkey === script && typeof o.value === 'number' && Number.isSafeInteger(o.value) && BigInt(o.value) === valueSat;
      for (const tx of txs as { txid?: unknown; status?: { confirmed?: unknown }; vout?: unknown }[]) {
        if (tx?.status?.confirmed !== true || typeof tx.txid !== 'string' || !/^[0-9a-f]{64}$/.test(tx.txid)) continue;
        if (!Array.isArray(tx.vout) || !tx.vout.some(pays)) continue;
        const hex = await text(`/tx/${tx.txid}/hex`);
        if (hex.length > MAX_TX_HEX || hex.length % 2 !== 0 || !/^[0-9a-f]+$/.test(hex)) throw new Error(`bad transaction ${tx.txid} from ${base}`);
        return hex;
      }
      return null;
    },
  };
}
