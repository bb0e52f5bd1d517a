/**
 * The payee's check of the funding transaction T1 (seed step 6) before it broadcasts it.
 */
import { Transaction } from 'bitcoinjs-lib';
import { equalBytes } from './bytes.js';
import type { ChannelTerms, FundingOutpoint } from './channel.js';
import { fundingScriptOf } from './channel.js';
import { ProtocolError } from './errors.js';

/**
 * Checks that `fundingTxHex` pays exactly `capacitySat` to the channel's P2WSH script at
 * `expected.vout` (or, when `expected` is null, at some output, which is then the channel's), and
 * that its txid cannot change: every input is signed with a witness and an empty scriptSig
 * (a legacy scriptSig could be malleated by a third party, changing the txid under T2).
 * @returns the funding outpoint.
 * @throws ProtocolError FUNDING_MALFORMED, FUNDING_NOT_SEGWIT or FUNDING_MISMATCH.
 */
export function checkFundingTx(terms: ChannelTerms, fundingTxHex: string, expected: FundingOutpoint | null): FundingOutpoint {
  let tx: Transaction;
  try {
    tx = Transaction.fromHex(fundingTxHex);
  } catch (err) {
    throw new ProtocolError('FUNDING_MALFORMED', (err as Error).message);
  }
  if (tx.ins.length === 0) throw new ProtocolError('FUNDING_MALFORMED', 'no inputs');
  for (const [i, input] of tx.ins.entries()) {
    if (input.script.length > 0 || input.witness.length === 0) throw new ProtocolError('FUNDING_NOT_SEGWIT', `input ${i} is not a signed native segwit input`);
  }
  return channelOutput(terms, tx, expected);
}

/**
 * Checks an unsigned funding (an external wallet chose its inputs, not yet signed) as
 * {@link checkFundingTx} checks a signed one, but wants every input still empty: signing native
 * segwit inputs adds only witnesses, so the txid the refund is signed for stays the funding's
 * (the signed funding is checked against it again).
 * @returns the funding outpoint.
 * @throws ProtocolError FUNDING_MALFORMED, FUNDING_NOT_SEGWIT or FUNDING_MISMATCH.
 */
export function checkUnsignedFundingTx(terms: ChannelTerms, unsignedTxHex: string): FundingOutpoint {
  let tx: Transaction;
  try {
    tx = Transaction.fromHex(unsignedTxHex);
  } catch (err) {
    throw new ProtocolError('FUNDING_MALFORMED', (err as Error).message);
  }
  if (tx.ins.length === 0) throw new ProtocolError('FUNDING_MALFORMED', 'no inputs');
  for (const [i, input] of tx.ins.entries()) {
    if (input.script.length > 0 || input.witness.length > 0) throw new ProtocolError('FUNDING_NOT_SEGWIT', `input ${i} is not an unsigned native segwit input`);
  }
  return channelOutput(terms, tx, null);
}

function channelOutput(terms: ChannelTerms, tx: Transaction, expected: FundingOutpoint | null): FundingOutpoint {
  const txid = tx.getId();
  const { fundingScript } = fundingScriptOf(terms);
  const pays = (vout: number) => {
    const out = tx.outs[vout];
    return out !== undefined && out.value === terms.capacitySat && equalBytes(out.script, fundingScript);
  };
  if (expected) {
    if (expected.txid !== txid) throw new ProtocolError('FUNDING_MISMATCH', `txid ${txid}, announced ${expected.txid}`);
    if (!pays(expected.vout)) throw new ProtocolError('FUNDING_MISMATCH', `output ${expected.vout} does not pay ${terms.capacitySat} sat to the channel script`);
    return expected;
  }
  const vouts = tx.outs.map((_, vout) => vout).filter(pays);
  if (vouts.length !== 1) throw new ProtocolError('FUNDING_MISMATCH', `${vouts.length} outputs pay ${terms.capacitySat} sat to the channel script; exactly one expected`);
  return { txid, vout: vouts[0]! };
}
