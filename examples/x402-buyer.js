// x402 with the official @x402/fetch client: one cumulative channel payment per request.
import { wrapFetchWithPayment, x402Client } from '@x402/fetch';
import { createPayer, satAsset } from 'paychan';

const payer = await createPayer({ capacitySat: 100_000, maxPriceSat: 100 }); // ~/.paychan/payer
const client = new x402Client()
  .register('bip122:*', payer.x402Scheme())
  .setSpendControls({ allowedAssets: [{ network: 'bip122:*', asset: satAsset('regtest') }] });
const paidFetch = wrapFetchWithPayment(fetch, client);
for (let i = 0; i < 5; i++) {
  const res = await paidFetch(process.argv[2] ?? 'http://localhost:3000/weather');
  console.log(res.status, await res.text());
}
await payer.close();
