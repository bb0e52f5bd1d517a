/** esploraChain's funding lookup: Electrum script hashes, and which transaction it picks from Esplora's answer. */
import { describe, expect, it } from 'vitest';
import { fromHex } from '../../src/protocol/bytes.js';
import { electrumScriptHash, esploraChain } from '../../src/web/esplora-chain.js';

const SCRIPT = fromHex(`0020${'11'.repeat(32)}`);
const SCRIPT_HEX = `0020${'11'.repeat(32)}`;
const TXID_A = 'aa'.repeat(32);
const TXID_B = 'bb'.repeat(32);
const TXID_C = 'cc'.repeat(32);

/** A fetch answering `/scripthash/<SCRIPT's hash>/txs/chain` with `list` and `/tx/<txid>/hex` from `hexes`. */
function fakeEsplora(list: unknown, hexes: Record<string, string>, asked: string[] = []): typeof fetch {
  return (async (input: string | URL | Request) => {
    const url = String(input);
    asked.push(url);
    if (url === `http://esplora.test/api/scripthash/${electrumScriptHash(SCRIPT)}/txs/chain`) return new Response(typeof list === 'string' ? list : JSON.stringify(list));
    const m = /^http:\/\/esplora\.test\/api\/tx\/([0-9a-f]{64})\/hex$/.exec(url);
    if (m && hexes[m[1]!] !== undefined) return new Response(hexes[m[1]!]);
    return new Response('not found', { status: 404 });
  }) as typeof fetch;
}

const tx = (txid: string, confirmed: boolean, scripts: string[], value = 1000) => ({ txid, status: { confirmed }, vout: scripts.map((scriptpubkey) => ({ scriptpubkey, value })) });
const TXID_D = 'dd'.repeat(32);

describe('electrumScriptHash', () => {
  it("is the output script's SHA-256, byte-reversed (Electrum's and Esplora's vector)", () => {
    expect(electrumScriptHash(fromHex('76a91436896b2798eeec0fc03c95b52a357448ed0dfd4688ac'))).toBe('719bcde52a3ef42b6f665d338eaed567ac66426dd3127595584abbd8e255dd58');
  });
});

describe('esploraChain.findFunding', () => {
  it('answers the newest confirmed transaction with an output paying exactly the script and the value', async () => {
    const asked: string[] = [];
    const list = [tx(TXID_A, false, [SCRIPT_HEX]), tx(TXID_D, true, [SCRIPT_HEX], 999), tx(TXID_B, true, [`0014${'11'.repeat(20)}`, `${SCRIPT_HEX}00`]), tx(TXID_C, true, ['0014' + '22'.repeat(20), SCRIPT_HEX])];
    const chain = esploraChain('http://esplora.test/api/', fakeEsplora(list, { [TXID_C]: '0200beef' }, asked));
    expect(await chain.findFunding(SCRIPT, 1000n)).toBe('0200beef');
    // The unconfirmed one, the one paying another amount and the one without the exact script were not fetched.
    expect(asked.filter((u) => u.includes('/tx/'))).toEqual([`http://esplora.test/api/tx/${TXID_C}/hex`]);
  });

  it('answers null when nothing confirmed pays the script', async () => {
    expect(await esploraChain('http://esplora.test/api', fakeEsplora([tx(TXID_A, false, [SCRIPT_HEX])], {})).findFunding(SCRIPT, 1000n)).toBeNull();
    expect(await esploraChain('http://esplora.test/api', fakeEsplora([], {})).findFunding(SCRIPT, 1000n)).toBeNull();
  });

  it('refuses a malformed answer instead of guessing', async () => {
    await expect(esploraChain('http://esplora.test/api', fakeEsplora('<html>', {})).findFunding(SCRIPT, 1000n)).rejects.toThrow(/not JSON/);
    await expect(esploraChain('http://esplora.test/api', fakeEsplora({ txs: [] }, {})).findFunding(SCRIPT, 1000n)).rejects.toThrow(/not an array/);
    await expect(esploraChain('http://esplora.test/api', fakeEsplora([tx(TXID_C, true, [SCRIPT_HEX])], { [TXID_C]: 'zz' })).findFunding(SCRIPT, 1000n)).rejects.toThrow(/bad transaction/);
    // Listed but its hex is missing: the HTTP error says so.
    await expect(esploraChain('http://esplora.test/api', fakeEsplora([tx(TXID_C, true, [SCRIPT_HEX])], {})).findFunding(SCRIPT, 1000n)).rejects.toThrow(/HTTP 404/);
  });
});
