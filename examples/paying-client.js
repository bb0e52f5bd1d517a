// A fetch that pays: opens a channel to the seller once (or reuses the one it opened before).
import { createPayer } from 'paychan';

const payer = await createPayer({ capacitySat: 100_000 }); // ~/.paychan/payer, funded with `paychan regtest fund`
const url = process.argv[2] ?? 'http://localhost:3000/joke';
for (let i = 0; i < 5; i++) {
  const res = await payer.fetch(url);
  console.log(res.status, await res.text());
}
await payer.close();
