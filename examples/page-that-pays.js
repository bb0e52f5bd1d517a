/* global document */
// A page that pays (a browser module: bundle it with esbuild, Vite or any bundler). It opens a
// channel to the payee of `paychan payee serve --cors-origin <this page's origin>`, shows the
// funding QR code for any wallet, then pays for a request. Reloaded, it carries on (IndexedDB).
import { openBrowserPayer, payeeChain } from 'paychan/payer';

const payee = 'http://127.0.0.1:8420';
const payer = await openBrowserPayer({ wsUrl: 'ws://127.0.0.1:8420/v1/ws', network: 'regtest', chain: payeeChain(payee) });
if (payer.state === null) {
  const funding = await payer.requestFunding({ capacitySat: 100_000n, expiryBlocks: 144, refundAddress: 'bcrt1qpqyxar9tp0kcdjehzmq3sm099cawuwhmjauqjk' });
  document.body.innerHTML = `${funding.qrSvg}<p id="uri">${funding.bip21}</p>`;
  await payer.fundFromAddress();
}
const paidFetch = payer.payingFetch(100n);
const res = await paidFetch(`${payee}/v1/paid/hello`);
document.body.textContent = `${res.status} ${await res.text()} (paid ${payer.paidSat} sat in all)`;
