/**
 * An external wallet for PSBT funding tests: one BIP32 key (m/84'/1'/0'/0/0 of a fixed seed,
 * through @scure/bip32) paid to as P2WPKH, signing with
 * tiny-secp256k1 and bitcoinjs-lib's `Psbt` directly. It shares no code or key with paychan's
 * wallet (paychan never sees its key), as a hardware or desktop wallet would.
 */
import { createHash } from 'node:crypto';
import { HDKey } from '@scure/bip32';
import { payments, type Psbt, type Signer } from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import { bitcoinjsNetwork } from '../../src/protocol/network.js';
import { readFundingPsbt } from '../../src/wallet/psbt-funding.js';

export interface Utxo {
  readonly txid: string;
  readonly vout: number;
  readonly valueSat: bigint;
}

export class ExternalSigner {
  readonly publicKey: Uint8Array;
  readonly script: Uint8Array;
  readonly address: string;
  private readonly privateKey: Uint8Array;
  private readonly network = bitcoinjsNetwork('regtest');

  constructor(seedLabel: string) {
    const key = HDKey.fromMasterSeed(new Uint8Array(createHash('sha256').update(seedLabel).digest())).derive("m/84'/1'/0'/0/0");
    if (!key.privateKey || !key.publicKey) throw new Error('bad key');
    this.privateKey = key.privateKey;
    this.publicKey = key.publicKey;
    const p2wpkh = payments.p2wpkh({ pubkey: this.publicKey, network: this.network });
    this.script = p2wpkh.output!;
    this.address = p2wpkh.address!;
  }

  get signer(): Signer {
    return { publicKey: this.publicKey, sign: (hash) => ecc.sign(hash, this.privateKey) };
  }

  /**
   * What a wallet does with an output-only PSBT: adds `utxo` as its input and its change (less
   * `feeSat`), then signs (and finalizes unless told not to).
   */
  fundAndSign(psbtBase64: string, utxo: Utxo, feeSat: bigint, opts: { finalize?: boolean; sign?: boolean } = {}): Psbt {
    // bitcoinjs-lib cannot read an input-less PSBT by itself (src/wallet/psbt-codec.ts).
    const psbt = readFundingPsbt(psbtBase64, 'regtest');
    const paid = psbt.txOutputs.reduce((s, o) => s + o.value, 0n);
    psbt.addInput({ hash: utxo.txid, index: utxo.vout, witnessUtxo: { script: this.script, value: utxo.valueSat } });
    psbt.addOutput({ script: this.script, value: utxo.valueSat - paid - feeSat });
    if (opts.sign === false) return psbt;
    psbt.signAllInputs(this.signer);
    const valid = psbt.validateSignaturesOfInput(0, (pubkey, hash, signature) => ecc.verify(hash, pubkey, signature));
    if (!valid) throw new Error('external signer: bad signature');
    if (opts.finalize !== false) psbt.finalizeAllInputs();
    return psbt;
  }
}
