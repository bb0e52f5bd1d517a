/**
 * Deterministic channels for unit tests: fixed keys, a synthetic funding transaction (a real,
 * parseable segwit transaction whose single input spends a made-up outpoint), no chain.
 */
import { Transaction } from 'bitcoinjs-lib';
import { loadNativeSecp256k1 } from '../../src/crypto/native.js';
import { fromHex, toHex } from '../../src/protocol/bytes.js';
import { fundingScriptOf, makeChannel, type Channel, type ChannelTerms } from '../../src/protocol/channel.js';
import type { Variant } from '../../src/protocol/scripts.js';
import { signBatchClose } from '../../src/protocol/batch-close.js';
import type { CloseRecord, PayeeState } from '../../src/protocol/payee-machine.js';
import { ProtocolError } from '../../src/protocol/errors.js';

export const secp = loadNativeSecp256k1();
export const PAYER_KEY = fromHex('0101010101010101010101010101010101010101010101010101010101010101');
export const PAYEE_KEY = fromHex('0202020202020202020202020202020202020202020202020202020202020202');
export const PAYER_PUB = secp.publicKeyCreate(PAYER_KEY);
export const PAYEE_PUB = secp.publicKeyCreate(PAYEE_KEY);
/** Standard P2WPKH scripts (any 20-byte hash makes one). */
export const PAYER_SCRIPT = fromHex('0014' + '11'.repeat(20));
export const PAYEE_SCRIPT = fromHex('0014' + '22'.repeat(20));

export function terms(variant: Variant, overrides: Partial<ChannelTerms> = {}): ChannelTerms {
  return {
    variant,
    network: 'regtest',
    payerPubkey: PAYER_PUB,
    payeePubkey: PAYEE_PUB,
    capacitySat: 1_000_000n,
    expiryHeight: 500,
    payerScript: PAYER_SCRIPT,
    ...overrides,
  };
}

/** A signed-looking segwit funding tx paying the channel at output `vout` (earlier outputs: change). */
export function fundingTx(t: ChannelTerms, opts: { vout?: number; valueSat?: bigint; script?: Uint8Array; legacyInput?: boolean } = {}): Transaction {
  const tx = new Transaction();
  tx.version = 2;
  tx.addInput(fromHex('aa'.repeat(32)), 1, 0xfffffffd, opts.legacyInput ? Uint8Array.of(0x51) : undefined);
  if (!opts.legacyInput) tx.setWitness(0, [new Uint8Array(71), new Uint8Array(33)]);
  const vout = opts.vout ?? 0;
  for (let i = 0; i <= vout; i++) {
    if (i === vout) tx.addOutput(opts.script ?? fundingScriptOf(t).fundingScript, opts.valueSat ?? t.capacitySat);
    else tx.addOutput(PAYER_SCRIPT, 50_000n);
  }
  return tx;
}

export function channel(variant: Variant, overrides: Partial<ChannelTerms> = {}): Channel {
  const t = terms(variant, overrides);
  return makeChannel(t, { txid: fundingTx(t).getId(), vout: 0 });
}

/** The close record the payee's closer would make for an Open payee state (key PAYEE_KEY). */
export function closeRecordFor(state: PayeeState, feeRateSatPerVb: number): CloseRecord {
  if ((state.type !== 'Open' && state.type !== 'Expiring') || state.signature === null) throw new Error(`cannot close in state ${state.type}`);
  const b = signBatchClose(secp, [{ channel: state.channel, totalSat: state.paidSat, signature: state.signature, payeePrivateKey: PAYEE_KEY }], PAYEE_SCRIPT, feeRateSatPerVb);
  return { txid: b.txid, txHex: b.txHex, feeSat: b.feeSat, vsize: b.vsize, feeRateSatPerVb, broadcastHeight: 0, channels: 1 };
}

/** The ProtocolError code `fn` throws, or 'NO_ERROR'; any other error is rethrown (a bug, not a refusal). */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err.code;
    throw err;
  }
  return 'NO_ERROR';
}

/**
 * A message as JSON the wire's way (amounts as decimal strings, bytes as lowercase hex), written
 * without the project's encoder, so tests can hold that encoder and the decoder to it.
 */
export function wireJson(m: object): string {
  return JSON.stringify(m, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? toHex(v) : v));
}
