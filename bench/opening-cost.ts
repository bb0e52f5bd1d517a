/**
 * What one stranger's opening message costs the payee in CPU (docs/design.md, "Openings without
 * state"): `payeeAccept` (a hello) and `payeeVouched` (the cookie check and key of a refund
 * request or a funding), with the opening key derived as now (one HMAC, keys.ts) and as before
 * (two hardened BIP32 levels, kept here only to compare). Prints µs per message; asserts nothing.
 *
 * Run: node --import tsx bench/opening-cost.ts
 */
import { randomBytes } from 'node:crypto';
import { HDKey } from '@scure/bip32';
import { secp256k1 } from '../src/crypto/index.js';
import { msg } from '../src/protocol/messages.js';
import { OPENING_KEY_INDEX_BASE } from '../src/protocol/opening-cookie.js';
import { payeeAccept, payeeVouched, type PayeeContext } from '../src/protocol/payee-machine.js';
import { payeePolicy } from '../src/protocol/policy.js';
import { WalletKeys } from '../src/wallet/keys.js';

const secp = secp256k1();
const seed = randomBytes(32);
const keys = WalletKeys.fromSeed(seed, 'regtest');
const oldBranch = HDKey.fromMasterSeed(seed).derive("m/1017'/1'/2'");
const derivations = {
  'HMAC (now)': (n: number) => keys.openingPrivateKey(n),
  'BIP32 m/…/2\'/hi\'/lo\' (before)': (n: number) => oldBranch.deriveChild(Math.floor(n / 2 ** 26) + 0x8000_0000).deriveChild((n % 2 ** 26) + 0x8000_0000).privateKey!,
};
const TIP = 1000;
const payerPubkey = secp.publicKeyCreate(randomBytes(32));
const payerScript = Uint8Array.of(0x00, 0x14, ...randomBytes(20));
const hello = () => msg('hello', { tempId: randomBytes(16).toString('hex'), network: 'regtest', variant: 'spilman-v1', payerPubkey, capacitySat: 100_000n, expiryHeight: TIP + 100, payerScript });

function perMessageUs(run: () => void, count: number): number {
  for (let i = 0; i < 200; i++) run(); // warm up
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) run();
  return Number(process.hrtime.bigint() - start) / 1000 / count;
}

for (const [name, derive] of Object.entries(derivations)) {
  const ctx: PayeeContext = { secp, policy: payeePolicy({ network: 'regtest' }), privateKey: (i) => derive(i - OPENING_KEY_INDEX_BASE), openingSecret: keys.openingSecret() };
  const hellos = Array.from({ length: 2000 }, hello);
  let i = 0;
  const accept = perMessageUs(() => payeeAccept(ctx, hellos[i++ % hellos.length]!, TIP), 2000);
  const accepts = hellos.map((h) => payeeAccept(ctx, h, TIP));
  const fundings = hellos.map((h, j) => {
    const { v: _v, type: _t, tempId, ...proposal } = h;
    return msg('funding', { tempId, proposal, cookie: accepts[j]!.cookie, fundingTx: '00' });
  });
  let j = 0;
  const vouch = perMessageUs(() => payeeVouched(ctx, fundings[j++ % fundings.length]!, TIP), 2000);
  console.log(`${name}: hello ${accept.toFixed(0)} µs, cookie check + key of a refund-request/funding ${vouch.toFixed(0)} µs`);
}
