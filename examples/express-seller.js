// A priced Express route: 10 sat per joke, paid over a paychan channel.
import express from 'express';
import { createPayee } from 'paychan';

const payee = await createPayee(); // ~/.paychan/payee, the node of `paychan regtest start`
const app = express();
app.get('/joke', payee.paywall(10), (req, res) => res.json({ joke: 'A satoshi walks into a bar.' }));
app.listen(Number(process.env.PORT ?? 3000), () => console.log(`selling jokes on port ${process.env.PORT ?? 3000}`));
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => payee.close().then(() => process.exit(0)));
