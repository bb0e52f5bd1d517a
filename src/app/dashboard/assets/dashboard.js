// paychan payee dashboard: polls GET /v1/admin/dashboard once a second with the admin token
// (Authorization header) and redraws. No framework, no external resource; every value is put
// in the page as text (textContent), never as HTML. See docs/dashboard.md.

const TOKEN_KEY = 'paychan.dashboard.token';
const API = 'v1/admin/dashboard'; // relative: the page may sit behind a path prefix
const POLL_MS = 1000;

const $ = (id) => document.getElementById(id);
const sat = (n) => `${Math.round(n).toLocaleString('en-US')} sat`;
const short = (id) => (id.length > 20 ? `${id.slice(0, 10)}…${id.slice(-8)}` : id);

let timer = null;

/** A token in the fragment (`/dashboard#token=…`) moves to sessionStorage and leaves the URL. */
function tokenFromFragment() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!m) return false;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
  history.replaceState(null, '', location.pathname + location.search);
  return true;
}

function showLogin(message) {
  clearTimeout(timer);
  sessionStorage.removeItem(TOKEN_KEY);
  $('board').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('login-error').hidden = !message;
  $('login-error').textContent = message ?? '';
  setStatus('not logged in');
}

function setStatus(text, error = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', error);
}

async function poll() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) return showLogin();
  let res;
  try {
    res = await fetch(API, { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' });
  } catch {
    setStatus('payee unreachable; retrying…', true);
    timer = setTimeout(poll, POLL_MS * 3);
    return;
  }
  if (res.status === 401) return showLogin('The payee refused this token.');
  if (!res.ok) {
    setStatus(`payee answered ${res.status}; retrying…`, true);
    timer = setTimeout(poll, POLL_MS * 3);
    return;
  }
  const snapshot = await res.json();
  // Shown before drawing: the sparkline sizes itself from the laid-out canvas.
  $('login').hidden = true;
  $('board').hidden = false;
  $('logout').hidden = false;
  render(snapshot);
  setStatus(`live · updated ${new Date().toLocaleTimeString()}`);
  timer = setTimeout(poll, POLL_MS);
}

function cell(row, label, text, className) {
  const td = row.insertCell();
  td.dataset.label = label;
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function variantCell(row, variant) {
  const td = cell(row, 'Variant', '');
  const tag = document.createElement('span');
  tag.className = `variant ${variant}`;
  tag.textContent = variant;
  td.append(tag);
}

function render(s) {
  const t = s.totals;
  $('paid-total').textContent = sat(t.paidSat);
  $('paid-back').textContent = `paid back ${sat(t.paidBackSat)} (duplex)`;
  $('channel-count').textContent = `${t.liveChannels} live / ${t.channels}`;
  $('variant-counts').textContent = Object.entries(t.byVariant)
    .map(([v, c]) => `${v} ${c.channels}`)
    .join(' · ');
  $('capacity-total').textContent = sat(t.capacitySat);
  $('tip').textContent = `${s.network} · tip ${s.tipHeight ?? '?'}`;
  $('rate').textContent = `${s.rate.paymentsPerSecond.toFixed(1)}`;
  spark(s.rate.series);

  const closes = $('closes').tBodies[0];
  closes.replaceChildren();
  for (const c of s.closes) {
    const r = closes.insertRow();
    r.dataset.txid = c.txid;
    cell(r, 'Close txid', short(c.txid), 'mono').title = c.txid;
    variantCell(r, c.variant);
    cell(r, 'Kind', c.kind);
    cell(r, 'Channels', c.channelIds.map(short).join(', '), 'mono');
    cell(r, 'Fee', sat(c.feeSat), 'num');
    cell(r, 'Rate', `${c.feeRateSatPerVb} sat/vB`, 'num');
    const waiting = c.waitingBlocks !== undefined ? `${c.waitingBlocks} block(s)` : c.finalAtHeight !== undefined ? `final at ${c.finalAtHeight}` : '–';
    cell(r, 'Waiting', waiting, 'num');
    const history = c.versions.map((v) => `${v.feeRateSatPerVb}`).join(' → ');
    cell(r, 'Fee bumps', c.bumps === 0 ? 'none' : `${c.bumps} (${history} sat/vB)`, c.bumps > 0 ? 'bumped' : undefined);
  }
  $('closes').hidden = s.closes.length === 0;
  $('no-closes').hidden = s.closes.length !== 0;

  const body = $('channels').tBodies[0];
  body.replaceChildren();
  for (const ch of s.channels) {
    const r = body.insertRow();
    r.dataset.channelId = ch.channelId;
    r.dataset.variant = ch.variant;
    cell(r, 'Channel', short(ch.channelId), 'mono').title = ch.channelId;
    variantCell(r, ch.variant);
    cell(r, 'State', ch.state, `state-${ch.state}`);
    cell(r, 'Capacity', sat(ch.capacitySat), 'num');
    const paid = cell(r, 'Paid', ch.paidBackSat === undefined ? sat(ch.paidSat) : `${sat(ch.paidSat)} (back ${sat(ch.paidBackSat)})`, 'num paid');
    paid.dataset.sat = String(ch.paidSat);
    cell(r, 'Payments/s', ch.paymentsPerSecond ? ch.paymentsPerSecond.toFixed(1) : '–', 'num');
    cell(r, 'Expiry', String(ch.expiryHeight), 'num');
    const close = cell(r, 'Close txid', ch.closeTxid ? short(ch.closeTxid) : '–', 'mono');
    if (ch.closeTxid) close.title = ch.closeTxid;
  }
  $('not-shown').hidden = s.channelsNotShown === 0;
  $('not-shown').textContent = `${s.channelsNotShown} more channel(s) not shown (closed or idle first).`;
}

/** The last minute of payments per second, as bars. */
function spark(series) {
  const canvas = $('spark');
  const ratio = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * ratio));
  const h = Math.max(1, Math.round(canvas.clientHeight * ratio));
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  const g = canvas.getContext('2d');
  g.clearRect(0, 0, w, h);
  const max = Math.max(1, ...series);
  const bar = w / 60;
  g.fillStyle = '#d97706';
  series.forEach((v, i) => {
    const bh = (v / max) * (h - 2);
    g.fillRect(w - (series.length - i) * bar, h - bh, Math.max(1, bar - 1), bh);
  });
}

$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  const token = $('token').value.trim();
  $('token').value = '';
  sessionStorage.setItem(TOKEN_KEY, token);
  clearTimeout(timer);
  void poll();
});
$('logout').addEventListener('click', () => showLogin());

// A token pasted into this tab's URL later (only the fragment changes: no new page load).
window.addEventListener('hashchange', () => {
  if (!tokenFromFragment()) return;
  clearTimeout(timer);
  void poll();
});

tokenFromFragment();
void poll();
