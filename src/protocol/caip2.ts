/**
 * CAIP-2 chain ids of the Bitcoin networks paychan knows: `bip122:` and the first 32 hex digits
 * of the network's genesis block hash (as displayed, i.e. big-endian), the form x402 and
 * WalletConnect use. Regtest's genesis is the same on every regtest node (btcd and Bitcoin Core),
 * so its id is fixed too. Signet here is the default signet; a custom signet has another genesis
 * and is not in the table.
 */
import type { NetworkName } from './network.js';

export type Caip2Id = `bip122:${string}`;

/** Genesis block hashes, full, as block explorers show them. */
export const GENESIS_HASHES: Readonly<Record<NetworkName, string>> = Object.freeze({
  mainnet: '000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f',
  testnet: '000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943',
  signet: '00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6',
  regtest: '0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206',
});

/** The one table: network name → CAIP-2 id. */
export const CAIP2_IDS: Readonly<Record<NetworkName, Caip2Id>> = Object.freeze({
  mainnet: 'bip122:000000000019d6689c085ae165831e93',
  testnet: 'bip122:000000000933ea01ad0ee984209779ba',
  signet: 'bip122:00000008819873e925422c1ff0f99f7c',
  regtest: 'bip122:0f9188f13cb7b2c71f2a335e3a4fc328',
});

const BY_ID: ReadonlyMap<string, NetworkName> = new Map(Object.entries(CAIP2_IDS).map(([name, id]) => [id, name as NetworkName]));

/** @returns the CAIP-2 id of `network`. */
export function caip2Of(network: NetworkName): Caip2Id {
  return CAIP2_IDS[network];
}

/** @returns the network a CAIP-2 id names, or undefined if paychan does not know it (case matters: ids are lowercase). */
export function networkOfCaip2(id: string): NetworkName | undefined {
  return BY_ID.get(id);
}

/** @returns the CAIP-2 id of the chain whose genesis block hash is `genesisHash` (64 hex digits). @throws RangeError otherwise. */
export function caip2OfGenesis(genesisHash: string): Caip2Id {
  if (!/^[0-9a-f]{64}$/.test(genesisHash)) throw new RangeError('a genesis hash is 64 lowercase hex digits');
  return `bip122:${genesisHash.slice(0, 32)}`;
}
