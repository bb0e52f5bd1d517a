/**
 * Node's native SHA-256 (OpenSSL) as a {@link Sha256Factory}: `Hash.copy()` gives the midstate
 * the payment sighasher reuses. Browsers use the portable noble one (the protocol's default).
 */
import { createHash, type Hash } from 'node:crypto';
import type { Sha256Factory, Sha256Midstate } from '../protocol/sighash.js';

const wrap = (h: Hash): Sha256Midstate => ({
  update(data) {
    h.update(data);
    return this;
  },
  copy: () => wrap(h.copy()),
  digest: () => new Uint8Array(h.digest()),
});

export const nodeSha256: Sha256Factory = () => wrap(createHash('sha256'));
