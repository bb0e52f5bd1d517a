/**
 * Fee rates we are willing to use: the node's estimate, clamped, or a fallback when the node has
 * none (a fresh regtest chain never does). Wrapping the estimate keeps a broken or manipulated
 * estimator from making us pay absurd fees or relay below the minimum.
 */
import type { ChainBackend } from './backend.js';

/** Bitcoin Core's and btcd's default minimum relay fee. */
export const MIN_RELAY_FEE_RATE_SAT_PER_VB = 1;
/** A ceiling no estimate may exceed (sat/vB). */
export const MAX_FEE_RATE_SAT_PER_VB = 1_000;

/** @returns the fee rate for confirmation within `targetBlocks`, in sat/vB. */
export async function resolveFeeRate(backend: ChainBackend, targetBlocks: number, fallbackSatPerVb: number): Promise<number> {
  const estimate = await backend.estimateFeeRate(targetBlocks);
  const rate = estimate ?? fallbackSatPerVb;
  return Math.min(MAX_FEE_RATE_SAT_PER_VB, Math.max(MIN_RELAY_FEE_RATE_SAT_PER_VB, rate));
}

/** The next fee rate of a replacement: +25%, and at least +1 sat/vB (BIP125's incremental relay fee). */
export function bumpedFeeRate(current: number, ceiling: number): number {
  return Math.min(ceiling, Math.max(current + 1, Math.ceil(current * 1.25)));
}
