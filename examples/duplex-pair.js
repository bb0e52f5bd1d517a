// A duplex pair: both sides put coins into one channel, then pay each other off chain.
import { createPayee, createPayer } from 'paychan';

const payee = await createPayee(); // ~/.paychan/payee; fund its wallet: paychan payee address
const payer = await createPayer(); // ~/.paychan/payer, funded with `paychan regtest fund`
const channel = await payer.openDuplex(payee.wsUrl, { payerContributionSat: 60_000, payeeContributionSat: 40_000 });
await channel.pay(1_000); // payer → payee
await payee.payBack(channel.channelId, 300); // payee → payer
const { payerSat, payeeSat } = await channel.balances();
console.log(`payer ${payerSat} sat, payee ${payeeSat} sat`);
console.log(`closed by ${await channel.close()}`); // a cooperative close, once it confirms
await payer.close();
await payee.close();
