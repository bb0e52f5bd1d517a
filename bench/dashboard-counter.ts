/**
 * What the dashboard's payment counter costs on the payee's hot path (printed only, not in
 * run.ts): `PaymentActivity.onPayment` per payment over 1,000 busy channels, the heap it keeps
 * (per channel, not per payment), and one sample of those channels. `node --import tsx
 * bench/dashboard-counter.ts [--runs 5]`.
 */
import { PaymentActivity } from '../src/app/dashboard/payment-activity.js';

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;
const CHANNELS = 1_000;
const PAYMENTS = 5_000_000;
const ids = Array.from({ length: CHANNELS }, (_, i) => `${i.toString(16).padStart(64, '0')}:0`);

for (let run = 1; run <= RUNS; run++) {
  const activity = new PaymentActivity();
  const heapBefore = process.memoryUsage().heapUsed;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < PAYMENTS; i++) activity.onPayment(ids[i % CHANNELS]!);
  const nsPerPayment = Number(process.hrtime.bigint() - t0) / PAYMENTS;
  const heapKiB = (process.memoryUsage().heapUsed - heapBefore) / 1024;
  const t1 = process.hrtime.bigint();
  activity.sample(1_000);
  const sampleUs = Number(process.hrtime.bigint() - t1) / 1_000;
  console.log(`run ${run}: onPayment ${nsPerPayment.toFixed(1)} ns/payment; heap ${heapKiB >= 0 ? '+' : ''}${heapKiB.toFixed(0)} KiB for ${CHANNELS} channels and ${PAYMENTS} payments (GC may run); one sample ${sampleUs.toFixed(0)} µs`);
}
