/**
 * The script of the payee's demo page (GET /demo, src/app/demo-page-route.ts): the payer in the
 * page, on the same origin as the payee. It restores its channel from IndexedDB on load, funds a
 * new one through the BIP21 address (learning the funding from the payee) or a PSBT, pays per
 * request (the payee's priced example route) and per second of a metered stream, and shows state,
 * capacity and paid total as they change. Broadcasting the refund needs an Esplora endpoint:
 * `/demo?esplora=https://…/api`; `?stream=N` sets the stream's price (sat per second).
 */
import type { NetworkName } from '../protocol/network.js';
import { openBrowserPayer, type BrowserPayer, type FundingRequest } from './browser-payer.js';
import { payeeChain } from './payee-chain.js';

const MAX_REQUEST_PRICE_SAT = 1_000n;

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;
const network = (document.documentElement.dataset.network ?? 'regtest') as NetworkName;
const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws`;
const params = new URLSearchParams(location.search);
const esplora = params.get('esplora');
/**
 * The metered stream's price, sat per second (`/demo?stream=N`; default 100): a link cannot make
 * the stream spend faster than 1,000 sat/s, and the page shows the price before it starts.
 */
const MAX_STREAM_SAT_PER_SECOND = 1_000n;
const STREAM_SAT_PER_SECOND = ((): bigint => {
  const asked = /^[1-9]\d{0,6}$/.test(params.get('stream') ?? '') ? BigInt(params.get('stream')!) : 100n;
  return asked > MAX_STREAM_SAT_PER_SECOND ? MAX_STREAM_SAT_PER_SECOND : asked;
})();

/** The tip from the payee; broadcasts (the refund) through the configured Esplora endpoint only. */
const chain = payeeChain(location.origin, esplora ?? undefined);

let payer: BrowserPayer | null = null;
let requests = 0;
let stream: ReturnType<typeof setInterval> | null = null;

function show(id: string, visible: boolean): void {
  $(id).classList.toggle('hidden', !visible);
}

function render(): void {
  const s = payer?.state ?? null;
  $('state').textContent = s?.type ?? 'no channel';
  $('capacity').textContent = s && 'terms' in s ? `${s.terms.capacitySat} sat` : '–';
  $('paid').textContent = `${payer?.paidSat ?? 0n} sat`;
  $('requests').textContent = String(requests);
  $('stream').textContent = stream ? `${STREAM_SAT_PER_SECOND} sat/s` : `stopped (${STREAM_SAT_PER_SECOND} sat/s when started)`;
  // The refund kit from the moment a channel exists: a funding paid but never seen by the payee
  // (a wallet that took its fee from the amount, a payee gone) is refunded with it alone.
  show('kit-line', s !== null && s.type !== 'Closed');
  if (s && 'terms' in s) $('expiry').textContent = String(s.terms.expiryHeight);
  show('fund', s === null);
  show('funding', s?.type === 'Funding');
  show('pay', s?.type === 'Open');
}

function fail(err: unknown): void {
  $('error').textContent = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** What the wallet must pay; and, meanwhile, wait for the payee to see it on chain. */
function showFunding(request: FundingRequest): void {
  $('qr').innerHTML = request.qrSvg; // our own SVG markup (qrcode-generator), no user input in it
  $('bip21').textContent = request.bip21;
  $('amount').textContent = `${request.amountSat} sat`;
  $<HTMLTextAreaElement>('psbt').value = request.psbt;
  render();
  payer!.fundFromAddress().then(render, fail);
}

$('open').onclick = () => {
  void (async () => {
    showFunding(await payer!.requestFunding({ capacitySat: BigInt($<HTMLInputElement>('capacity-input').value), expiryBlocks: 144, refundAddress: $<HTMLInputElement>('refund-address').value.trim() }));
  })().catch(fail);
};
$('submit-signed').onclick = () => void payer!.fundWithSigned($<HTMLTextAreaElement>('signed').value.trim()).then(render, fail);
$('request').onclick = () => {
  void (async () => {
    const res = await payer!.payingFetch(MAX_REQUEST_PRICE_SAT)(`${location.origin}/v1/paid/hello`);
    $('answer').textContent = `${res.status} ${await res.text()}`;
    requests++;
    render();
  })().catch(fail);
};
$('stream-toggle').onclick = () => {
  if (stream) {
    clearInterval(stream);
    stream = null;
  } else {
    stream = setInterval(() => void payer!.pay(STREAM_SAT_PER_SECOND).then(render, fail), 1000);
  }
  $('stream-toggle').textContent = stream ? 'Stop the stream' : 'Start the stream';
  render();
};
$('kit').onclick = () => {
  const kit = new Blob([JSON.stringify(payer!.refundKit(), null, 2)], { type: 'application/json' });
  const a = Object.assign(document.createElement('a'), { href: URL.createObjectURL(kit), download: 'paychan-refund-kit.json' });
  a.click();
  URL.revokeObjectURL(a.href);
};
$('close').onclick = () => {
  try {
    payer!.requestClose();
  } catch (err) {
    fail(err);
  }
};

openBrowserPayer({ wsUrl, network, chain, storeName: `paychan-demo-${location.host}` })
  .then((p) => {
    payer = p;
    render();
    if (p.state?.type === 'Funding') showFunding(p.fundingRequest());
    setInterval(render, 250);
  })
  .catch(fail);
