// A priced route on Node's own http server (no framework): 10 sat per joke.
import http from 'node:http';
import { createPayee } from 'paychan';

const payee = await createPayee(); // ~/.paychan/payee, the node of `paychan regtest start`
const priced = payee.paywall(10);
const server = http.createServer((req, res) => priced(req, res, () => res.end(JSON.stringify({ joke: 'A satoshi walks into a bar.' }))));
server.listen(Number(process.env.PORT ?? 3000), () => console.log(`selling jokes on port ${server.address().port}`));
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => payee.close().then(() => process.exit(0)));
