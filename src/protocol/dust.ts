/**
 * Dust and standard output scripts, following Bitcoin Core's policy (GetDustThreshold,
 * IsStandard) at its default dust relay fee of 3 sat/vB, which btcd matches at its default
 * 1 sat/vB minimum relay fee (both give 294 for P2WPKH, 330 for P2WSH/P2TR, 546 for P2PKH).
 */

const DUST_RELAY_SAT_PER_KVB = 3000n;

export type OutputScriptType = 'p2pkh' | 'p2sh' | 'p2wpkh' | 'p2wsh' | 'p2tr' | 'p2a';

/** @returns the standard template `script` matches, or null if it is not one we pay to. */
export function outputScriptType(script: Uint8Array): OutputScriptType | null {
  const n = script.length;
  if (n === 25 && script[0] === 0x76 && script[1] === 0xa9 && script[2] === 0x14 && script[23] === 0x88 && script[24] === 0xac) return 'p2pkh';
  if (n === 23 && script[0] === 0xa9 && script[1] === 0x14 && script[22] === 0x87) return 'p2sh';
  if (n === 22 && script[0] === 0x00 && script[1] === 0x14) return 'p2wpkh';
  if (n === 34 && script[0] === 0x00 && script[1] === 0x20) return 'p2wsh';
  if (n === 34 && script[0] === 0x51 && script[1] === 0x20) return 'p2tr';
  if (n === 4 && script[0] === 0x51 && script[1] === 0x02 && script[2] === 0x4e && script[3] === 0x73) return 'p2a';
  return null;
}

function isWitnessProgram(script: Uint8Array): boolean {
  const n = script.length;
  if (n < 4 || n > 42) return false;
  const version = script[0]!;
  if (version !== 0x00 && (version < 0x51 || version > 0x60)) return false;
  return script[1] === n - 2;
}

/** Serialized size of an output: 8-byte value, CompactSize length, script. */
export function outputSize(script: Uint8Array): number {
  return 8 + (script.length < 0xfd ? 1 : 3) + script.length;
}

/**
 * Smallest value an output to `script` may carry and still be relayed.
 * @throws TypeError for an OP_RETURN script (unspendable: dust does not apply).
 */
export function dustThresholdSat(script: Uint8Array): bigint {
  if (script[0] === 0x6a) throw new TypeError('OP_RETURN outputs have no dust threshold');
  // The cost of spending the output later: outpoint 36 + script len 1 + sequence 4, plus either a
  // 107-byte scriptSig or the same witness at a quarter of the weight.
  const spendSize = isWitnessProgram(script) ? 32 + 4 + 1 + Math.floor(107 / 4) + 4 : 32 + 4 + 1 + 107 + 4;
  // Checked twice per payment on each side: one bigint per size, made once (a handful of sizes).
  const size = outputSize(script) + spendSize;
  let dust = DUST_BY_SIZE.get(size);
  if (dust === undefined) DUST_BY_SIZE.set(size, (dust = (BigInt(size) * DUST_RELAY_SAT_PER_KVB) / 1000n));
  return dust;
}

/** Dust thresholds by output + spend size (both bounded by the 10,000-byte script limit). */
const DUST_BY_SIZE = new Map<number, bigint>();
