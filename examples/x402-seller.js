// x402 with the official @x402/express middleware: paychan's scheme, the payee its own facilitator.
import { paymentMiddleware, x402ResourceServer } from '@x402/express';
import express from 'express';
import { createPayee } from 'paychan';

const payee = await createPayee(); // ~/.paychan/payee, the node of `paychan regtest start`
const { network, server, facilitator } = payee.x402();
const accepts = { scheme: 'paychan', price: '7 sat', network, payTo: payee.wsUrl };
const app = express();
app.use(paymentMiddleware({ 'GET /weather': { accepts } }, new x402ResourceServer(facilitator).register(network, server)));
app.get('/weather', (req, res) => res.json({ weather: 'sunny' }));
app.listen(Number(process.env.PORT ?? 3000), () => console.log(`selling weather on port ${process.env.PORT ?? 3000}`));
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => payee.close().then(() => process.exit(0)));
