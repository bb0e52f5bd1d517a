/**
 * The Bitcoin networks paychan knows, with what differs between them (address prefixes).
 * Signet shares testnet's address format.
 */
import { networks, type Network } from 'bitcoinjs-lib';

export const NETWORK_NAMES = ['regtest', 'signet', 'testnet', 'mainnet'] as const;
export type NetworkName = (typeof NETWORK_NAMES)[number];

const BY_NAME: Readonly<Record<NetworkName, Network>> = {
  regtest: networks.regtest,
  signet: networks.testnet,
  testnet: networks.testnet,
  mainnet: networks.bitcoin,
};

/** @returns bitcoinjs-lib's parameters for `name`. */
export function bitcoinjsNetwork(name: NetworkName): Network {
  return BY_NAME[name];
}

/** @returns true if `value` names a network paychan supports. */
export function isNetworkName(value: unknown): value is NetworkName {
  return typeof value === 'string' && (NETWORK_NAMES as readonly string[]).includes(value);
}
