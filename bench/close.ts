/**
 * Close sizes, from the real builders on synthetic channels (no chain; bench/e2e.ts offers the
 * same closes of real channels to a node): the payee's close of one channel per variant
 * (`signClose`: the payer's change, the payee's P2WPKH output, both signatures), and a batch
 * close of `--batch` channels in one transaction (`signBatchClose`). Signature lengths vary by
 * a byte (DER), so each size is the mean over `--samples` different payments.
 *
 * Prints one JSON line (last on stdout). Run through bench/run.ts.
 */
import { signBatchClose } from '../src/protocol/batch-close.js';
import { signClose } from '../src/protocol/close.js';
import { VARIANT_NAMES } from '../src/protocol/variants/index.js';
import { emitResult, intArg, parseArgs } from './lib/args.js';
import { PAYEE_KEY, PAYEE_SCRIPT, paymentSighasher, secp, signTotal, syntheticChannel, variantOf } from './lib/fixtures.js';
import { round } from './lib/stats.js';

const args = parseArgs(process.argv.slice(2));
const BATCH = intArg(args, 'batch', 100);
const SAMPLES = intArg(args, 'samples', 20);
const FEE_RATE = 2;

function paid(i: number, variant = variantOf(i)) {
  const channel = syntheticChannel(i, variant);
  const totalSat = 20_000n + BigInt(i);
  return { channel, totalSat, signature: signTotal(channel, paymentSighasher(channel), totalSat), payeePrivateKey: PAYEE_KEY };
}

const closeVsize: Record<string, number> = {};
const closeFeeSat: Record<string, number> = {};
for (const variant of VARIANT_NAMES) {
  let vsize = 0;
  let fee = 0n;
  for (let s = 0; s < SAMPLES; s++) {
    const p = paid(s, variant);
    const close = signClose(secp, p.channel, { totalSat: p.totalSat, signature: p.signature }, PAYEE_KEY, PAYEE_SCRIPT, FEE_RATE);
    vsize += close.vsize;
    fee += close.feeSat;
  }
  closeVsize[variant] = round(vsize / SAMPLES, 1);
  closeFeeSat[variant] = Number(fee / BigInt(SAMPLES));
}

const batches: { vsize: number; feeSat: bigint }[] = [];
for (let s = 0; s < Math.max(1, Math.floor(SAMPLES / 5)); s++) {
  batches.push(signBatchClose(secp, Array.from({ length: BATCH }, (_, i) => paid(s * BATCH + i)), PAYEE_SCRIPT, FEE_RATE));
}
const batchVsize = batches.reduce((a, b) => a + b.vsize, 0) / batches.length;
const single = (closeVsize['spilman-v1']! + closeVsize['spilman-v2']!) / 2;
emitResult({
  closeVsize,
  batchCloseVsizePerChannel: round(batchVsize / BATCH, 1),
  close: {
    feeRateSatPerVb: FEE_RATE,
    closeFeeSat,
    payeeOutput: 'P2WPKH',
    batch: {
      channels: BATCH,
      variants: 'half spilman-v1, half spilman-v2',
      vsize: round(batchVsize, 1),
      feeSat: Number(batches[0]!.feeSat),
      savingVsSingleCloses: round(1 - batchVsize / BATCH / single, 3),
      builder: 'src/protocol/batch-close.ts signBatchClose',
    },
  },
});
