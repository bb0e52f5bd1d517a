// A priced Hono route: 10 sat per joke, paid over a paychan channel.
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { createPayee } from 'paychan';

const payee = await createPayee(); // ~/.paychan/payee, the node of `paychan regtest start`
const app = new Hono();
app.get('/joke', payee.paywallHono(10), (c) => c.json({ joke: 'A satoshi walks into a bar.' }));
serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 3000) }, (info) => console.log(`selling jokes on port ${info.port}`));
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => payee.close().then(() => process.exit(0)));
