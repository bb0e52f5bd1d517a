/**
 * An in-process payee service on a fake chain (a settable tip, no node) over a store a test can
 * stall: for unit tests of the service's own rules (queue bounds, who may send what, the tip
 * payments are checked against). The channel is stored Open at load, as after a restart, so no
 * funding or node is needed; everything chain-shaped is covered by the integration tests.
 */
import { randomBytes } from 'node:crypto';
import type { BlockTip, ChainBackend } from '../../src/chain/backend.js';
import { PayeeService, type PayeeServiceOptions } from '../../src/payee/payee-service.js';
import { msg, type Message, type MessageOf } from '../../src/protocol/messages.js';
import type { PayeeState } from '../../src/protocol/payee-machine.js';
import { paymentSighasher, signPayment } from '../../src/protocol/payment.js';
import { payeePolicy } from '../../src/protocol/policy.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { PeerLink } from '../../src/transport/link.js';
import { WalletKeys } from '../../src/wallet/keys.js';
import { channel, PAYER_KEY, secp, terms } from './protocol.js';

/** A memory store whose payment saves can be held (a stalled disk or database) and let go. */
export class StallableStore extends MemoryStore {
  private held: (() => void)[] | null = null;

  stall(): void {
    this.held ??= [];
  }

  /** Lets every held save complete, and later ones at once. */
  resume(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const go of held) go();
  }

  get heldSaves(): number {
    return this.held?.length ?? 0;
  }

  override savePayeePayment(tempId: string, totalSat: bigint, signature: Uint8Array): Promise<void> {
    const held = this.held;
    if (held === null) return super.savePayeePayment(tempId, totalSat, signature);
    return new Promise((resolve, reject) => held.push(() => super.savePayeePayment(tempId, totalSat, signature).then(resolve, reject)));
  }
}

/** A link that records what it is sent. */
export function recordingLink(): PeerLink & { readonly received: Message[]; errors(code?: string): MessageOf<'error'>[] } {
  const received: Message[] = [];
  return {
    received,
    challenge: new Uint8Array(randomBytes(32)),
    send: (m) => void received.push(m),
    errors: (code) => received.filter((m): m is MessageOf<'error'> => m.type === 'error' && (code === undefined || m.code === code)),
  };
}

export const TEMP_ID = 'ab'.repeat(16);

export interface UnitPayee {
  readonly payee: PayeeService;
  readonly store: StallableStore;
  /** The fake node: its tip (what getTip answers), whether reading it fails, and how many reads it answered. */
  readonly chain: { tip: BlockTip; down: boolean; reads: number };
  readonly channelId: string;
  /** A payment of `totalSat` signed by the payer. */
  payment(totalSat: bigint): MessageOf<'payment'>;
}

export async function unitPayee(options: Partial<PayeeServiceOptions> = {}, state?: Partial<PayeeState>): Promise<UnitPayee> {
  const store = new StallableStore();
  const t = terms('spilman-v2', { expiryHeight: 1000 });
  const ch = channel('spilman-v2', { expiryHeight: 1000 });
  await store.savePayeeChannel(TEMP_ID, { tempId: TEMP_ID, terms: t, keyIndex: 0, type: 'Open', channel: ch, paidSat: 0n, signature: null, ...state } as PayeeState);
  const chain = { tip: { height: 100, hash: '00'.repeat(32) } as BlockTip, down: false, reads: 0 };
  const backend = {
    name: 'fake',
    getTip: async () => {
      if (chain.down) throw new Error('the node does not answer');
      chain.reads++;
      return chain.tip;
    },
    getBlock: async (height: number) => ({ height, hash: height === chain.tip.height ? chain.tip.hash : '11'.repeat(32) }),
    subscribeTips: () => () => {},
    // Every funding deep in the chain: the funding watcher leaves the channel Open.
    getTransaction: async () => ({ hex: '00', confirmations: 100 }),
    broadcast: async () => {
      throw new Error('no broadcasts in unit tests');
    },
  } as unknown as ChainBackend;
  const keys = WalletKeys.fromSeed(new Uint8Array(32).fill(7), 'regtest');
  const payee = await PayeeService.open({
    store,
    secp,
    policy: payeePolicy({ network: 'regtest' }),
    backend,
    keys,
    payoutScript: keys.address('receive', 0).script,
    fallbackFeeRateSatPerVb: 1,
    ...options,
  });
  const sighash = paymentSighasher(ch);
  return { payee, store, chain, channelId: ch.id, payment: (totalSat) => msg('payment', { channelId: ch.id, totalSat, signature: signPayment(secp, ch, sighash, PAYER_KEY, totalSat) }) };
}
