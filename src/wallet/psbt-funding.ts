/**
 * Funding a channel from an external wallet (a hardware or desktop wallet) through a PSBT
 * (BIP174), instead of the payer's own wallet.
 *
 * The payer knows only what the channel needs: one output, its script and its amount. So the
 * PSBT it hands out has that output and no input; the external wallet "funds" it the way wallets
 * fund any PSBT: it adds its own inputs and change, signs, and hands it back. Taking it back
 * checks exactly what the payer cares about (the channel output is there, once, with the
 * agreed amount; every input is signed) and finalizes what the signer left unfinalized; the
 * rest of the transaction (inputs, change, fee) is the wallet's business and its owner's money.
 *
 * The funding must not change its txid once signed (a v1 refund is signed against it), so a
 * legacy input is refused later by the protocol's own funding check (FUNDING_NOT_SEGWIT).
 */
import { address as baddress, Psbt, Transaction } from 'bitcoinjs-lib';
import { equalBytes, fromHex, toHex } from '../protocol/bytes.js';
import { bitcoinjsNetwork, type NetworkName } from '../protocol/network.js';
import { readPsbt, writePsbt } from './psbt-codec.js';

/** What the channel asks of its funding: one output of `valueSat` to `script` (P2WSH of `witnessScript`). */
export interface FundingOutputRequest {
  readonly network: NetworkName;
  /** The channel output's scriptPubKey (P2WSH). */
  readonly script: Uint8Array;
  /** The channel's funding script, whose hash `script` commits to. */
  readonly witnessScript: Uint8Array;
  readonly valueSat: bigint;
}

/** An unsigned, output-only funding PSBT and the same request in the forms wallets read. */
export interface FundingPsbt {
  /** BIP174 PSBT, base64 (the form wallets import and paste). */
  readonly psbt: string;
  /** The channel output's address (bech32 P2WSH). */
  readonly channelAddress: string;
  readonly amountSat: bigint;
  /** A BIP21 URI for wallets that pay an address and amount (they broadcast at once: see docs/psbt.md). */
  readonly bip21: string;
}

export const PSBT_FUNDING_ERROR_CODES = {
  PSBT_MALFORMED: 'not a PSBT (base64, hex or binary) nor a raw transaction in hex',
  PSBT_WRONG_OUTPUT: 'no output (or more than one) pays the channel script',
  PSBT_WRONG_AMOUNT: 'the output to the channel script pays another amount than the capacity',
  PSBT_NOT_SIGNED: 'an input is not signed (or the PSBT has no input: the wallet did not fund it)',
  PSBT_ALREADY_SIGNED: 'a PSBT given to be signed later already has signatures',
  PSBT_NOT_SEGWIT: 'an input is not native segwit, so signing it would change the txid the refund was signed for',
} as const;
export type PsbtFundingErrorCode = keyof typeof PSBT_FUNDING_ERROR_CODES;

/** A signed funding PSBT (or transaction) refused; nothing was changed by the refusal. */
export class PsbtFundingError extends Error {
  constructor(
    readonly code: PsbtFundingErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'PsbtFundingError';
  }
}

/**
 * Builds the funding PSBT: version 2, no input, one output paying `valueSat` to the channel's
 * P2WSH, with the output's witness script (PSBT_OUT_WITNESS_SCRIPT) so a wallet can show and check
 * what the output is.
 */
export function fundingPsbtOf(request: FundingOutputRequest): FundingPsbt {
  const network = bitcoinjsNetwork(request.network);
  const psbt = new Psbt({ network });
  psbt.setVersion(2);
  psbt.addOutput({ script: request.script, value: request.valueSat });
  psbt.updateOutput(0, { witnessScript: request.witnessScript });
  const channelAddress = baddress.fromOutputScript(request.script, network);
  return { psbt: base64Of(writePsbt(psbt)), channelAddress, amountSat: request.valueSat, bip21: bip21Uri(channelAddress, request.valueSat, 'paychan channel') };
}

/** `bitcoin:ADDRESS?amount=BTC&label=…` (BIP21: the amount in BTC, as a decimal). */
export function bip21Uri(address: string, amountSat: bigint, label: string): string {
  return `bitcoin:${address}?amount=${satToBtcDecimal(amountSat)}&label=${encodeURIComponent(label)}`;
}

/** 123456789n → "1.23456789", 100000n → "0.001" (no float on the way). */
export function satToBtcDecimal(sat: bigint): string {
  if (sat < 0n) throw new RangeError('amount must not be negative');
  const whole = sat / 100_000_000n;
  const frac = (sat % 100_000_000n).toString().padStart(8, '0').replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : `${whole}`;
}

const PSBT_MAGIC = Uint8Array.of(0x70, 0x73, 0x62, 0x74, 0xff);

/**
 * Reads what an external wallet gave back: a PSBT (base64, hex, or the binary file) or a raw
 * transaction in hex; checks it pays exactly `request`'s output once, with every input signed
 * (finalizing inputs that hold their signatures but were not finalized), and extracts it.
 * The fee is not checked here: it is the wallet's choice and the node's policy.
 * @returns the signed funding transaction, hex.
 * @throws PsbtFundingError PSBT_MALFORMED, PSBT_WRONG_OUTPUT, PSBT_WRONG_AMOUNT or PSBT_NOT_SIGNED.
 */
export function fundingTxFromSigned(signed: Uint8Array | string, request: Pick<FundingOutputRequest, 'network' | 'script' | 'valueSat'>): string {
  const parsed = parseSigned(signed, request.network);
  const outputs = parsed.type === 'psbt' ? parsed.psbt.txOutputs : parsed.tx.outs;
  checkChannelOutput(outputs, request);
  if (parsed.type === 'tx') {
    if (parsed.tx.ins.length === 0) throw new PsbtFundingError('PSBT_NOT_SIGNED', 'the transaction has no input: fund it in your wallet');
    for (const [i, input] of parsed.tx.ins.entries()) {
      if (input.witness.length === 0 && input.script.length === 0) throw new PsbtFundingError('PSBT_NOT_SIGNED', `input ${i} of the transaction is not signed`);
    }
    return parsed.tx.toHex();
  }
  const psbt = parsed.psbt;
  if (psbt.inputCount === 0) {
    throw new PsbtFundingError('PSBT_NOT_SIGNED', 'the PSBT has no input: fund it in your wallet (it adds its inputs and change), sign it, then pass the signed PSBT');
  }
  for (const [i, input] of psbt.data.inputs.entries()) {
    if (input.finalScriptWitness !== undefined || input.finalScriptSig !== undefined) continue;
    if (!input.partialSig?.length && !input.tapKeySig && !input.tapScriptSig?.length) throw new PsbtFundingError('PSBT_NOT_SIGNED', `input ${i} of the PSBT is not signed: sign it in your wallet`);
    try {
      psbt.finalizeInput(i);
    } catch (err) {
      throw new PsbtFundingError('PSBT_NOT_SIGNED', `input ${i} of the PSBT cannot be finalized (missing signatures?): ${(err as Error).message}`);
    }
  }
  try {
    // The fee check needs every input's previous output; the node checks the fee anyway.
    return psbt.extractTransaction(true).toHex();
  } catch (err) {
    throw new PsbtFundingError('PSBT_MALFORMED', `cannot extract the transaction: ${(err as Error).message}`);
  }
}

/**
 * Reads a PSBT an external wallet funded (inputs and change added) but has not signed, for the
 * v1 refund to be signed before the wallet signs: checks the channel output as
 * {@link fundingTxFromSigned} does, that no input is signed yet, and that every input is native
 * segwit (signing adds only witnesses, so the txid stays the one the refund is signed for).
 * @returns the unsigned funding transaction, hex.
 * @throws PsbtFundingError PSBT_MALFORMED, PSBT_WRONG_OUTPUT, PSBT_WRONG_AMOUNT, PSBT_NOT_SIGNED
 *   (no input), PSBT_ALREADY_SIGNED or PSBT_NOT_SEGWIT.
 */
export function unsignedFundingTxFromFunded(funded: Uint8Array | string, request: Pick<FundingOutputRequest, 'network' | 'script' | 'valueSat'>): string {
  const parsed = parseSigned(funded, request.network);
  if (parsed.type !== 'psbt') throw new PsbtFundingError('PSBT_MALFORMED', 'a raw transaction, not a funded PSBT');
  const psbt = parsed.psbt;
  checkChannelOutput(psbt.txOutputs, request);
  if (psbt.inputCount === 0) throw new PsbtFundingError('PSBT_NOT_SIGNED', 'the PSBT has no input: fund it in your wallet (it adds its inputs and change) first');
  for (const [i, input] of psbt.data.inputs.entries()) {
    if (input.finalScriptWitness || input.finalScriptSig || input.partialSig?.length || input.tapKeySig) {
      throw new PsbtFundingError('PSBT_ALREADY_SIGNED', `input ${i} is already signed: give the signed PSBT with --signed-psbt instead`);
    }
    // The coin's script must be known and a witness program: an input whose script is not
    // given (or a legacy one given only as a whole previous transaction) could be signed with
    // a scriptSig, which changes the txid the refund is signed for.
    const prevout = spentScript(psbt, i);
    if (prevout === undefined) throw new PsbtFundingError('PSBT_NOT_SEGWIT', `input ${i} does not say what it spends (no witnessUtxo, or a nonWitnessUtxo that is not its previous transaction): the refund cannot be bound to the txid`);
    if (input.redeemScript || !isNativeSegwit(prevout)) {
      throw new PsbtFundingError('PSBT_NOT_SEGWIT', `input ${i} is not native segwit: its signature would change the txid the refund is signed for`);
    }
  }
  return toHex(psbt.data.globalMap.unsignedTx.toBuffer());
}

/**
 * The script of the coin input `i` spends: its `witnessUtxo`, else the output of its
 * `nonWitnessUtxo` (checked to be the transaction the input names); undefined if neither says.
 */
function spentScript(psbt: Psbt, i: number): Uint8Array | undefined {
  const input = psbt.data.inputs[i]!;
  if (input.witnessUtxo) return input.witnessUtxo.script;
  if (!input.nonWitnessUtxo) return undefined;
  const txIn = psbt.txInputs[i]!;
  const previous = Transaction.fromBuffer(input.nonWitnessUtxo);
  if (!equalBytes(previous.getHash(), txIn.hash)) return undefined;
  return previous.outs[txIn.index]?.script;
}

/** A witness program: OP_0 or OP_1..OP_16, then one push of 2 to 40 bytes (BIP141). */
function isNativeSegwit(script: Uint8Array): boolean {
  const version = script[0];
  return script.length >= 4 && script.length <= 42 && (version === 0x00 || (version! >= 0x51 && version! <= 0x60)) && script[1] === script.length - 2;
}

type Parsed = { readonly type: 'psbt'; readonly psbt: Psbt } | { readonly type: 'tx'; readonly tx: Transaction };

function parseSigned(signed: Uint8Array | string, networkName: NetworkName): Parsed {
  const network = bitcoinjsNetwork(networkName);
  try {
    if (typeof signed !== 'string') {
      if (startsWith(signed, PSBT_MAGIC)) return { type: 'psbt', psbt: readPsbt(signed, network) };
      signed = new TextDecoder().decode(signed);
    }
    const text = signed.trim();
    if (/^[0-9a-fA-F]+$/.test(text)) {
      if (text.toLowerCase().startsWith(toHex(PSBT_MAGIC))) return { type: 'psbt', psbt: readPsbt(fromHex(text), network) };
      return { type: 'tx', tx: Transaction.fromHex(text) };
    }
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) throw new Error('neither hex nor base64');
    return { type: 'psbt', psbt: readPsbt(base64Bytes(text), network) };
  } catch (err) {
    throw new PsbtFundingError('PSBT_MALFORMED', `not a PSBT nor a raw transaction: ${(err as Error).message}`);
  }
}

function base64Of(bytes: Uint8Array): string {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

function base64Bytes(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * Reads a funding PSBT as printed (no input) or as funded, base64: what a wallet built on
 * bitcoinjs-lib needs to read the output-only PSBT (see psbt-codec.ts).
 * @throws PsbtFundingError PSBT_MALFORMED.
 */
export function readFundingPsbt(base64: string, networkName: NetworkName): Psbt {
  const parsed = parseSigned(base64.trim(), networkName);
  if (parsed.type !== 'psbt') throw new PsbtFundingError('PSBT_MALFORMED', 'a raw transaction, not a PSBT');
  return parsed.psbt;
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  return bytes.length >= prefix.length && equalBytes(bytes.subarray(0, prefix.length), prefix);
}

function checkChannelOutput(outputs: readonly { readonly script: Uint8Array; readonly value: bigint }[], request: Pick<FundingOutputRequest, 'network' | 'script' | 'valueSat'>): void {
  const address = baddress.fromOutputScript(request.script, bitcoinjsNetwork(request.network));
  const toChannel = outputs.filter((o) => equalBytes(o.script, request.script));
  if (toChannel.length === 0) throw new PsbtFundingError('PSBT_WRONG_OUTPUT', `no output pays the channel address ${address}: this is not the channel's funding`);
  if (toChannel.length > 1) throw new PsbtFundingError('PSBT_WRONG_OUTPUT', `${toChannel.length} outputs pay the channel address ${address}; exactly one expected`);
  const value = toChannel[0]!.value;
  if (value !== request.valueSat) throw new PsbtFundingError('PSBT_WRONG_AMOUNT', `the output to the channel address ${address} pays ${value} sat, the channel's capacity is ${request.valueSat} sat`);
}
