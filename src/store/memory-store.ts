/**
 * A {@link Store} in memory: for the in-process demo and tests that do not test durability.
 * It keeps the port's ordering (saves resolve in call order) but nothing survives the process.
 */
import type { PayeeState } from '../protocol/payee-machine.js';
import type { PayerState } from '../protocol/payer-machine.js';
import { decodeState, encodeState } from './codec.js';
import { withNewestPayment, withNewestSignedPayment, type Store, type StoredPayeeChannel, type StoredPayerChannel } from './store.js';

export class MemoryStore implements Store {
  // Encoded, so a caller mutating a state after saving it cannot change what was "stored".
  private readonly payee = new Map<string, string>();
  private readonly payer = new Map<string, string>();
  private readonly meta = new Map<string, string>();
  private readonly counters = new Map<string, number>();

  private readonly payments = new Map<string, { totalSat: bigint; signature: Uint8Array }>();

  async loadPayeeChannels(): Promise<StoredPayeeChannel[]> {
    return [...this.payee].map(([tempId, s]) => ({ tempId, state: withNewestPayment(decodeState<PayeeState>(s), this.payments.get(tempId)) }));
  }
  async savePayeePayment(tempId: string, totalSat: bigint, signature: Uint8Array): Promise<void> {
    this.payments.set(tempId, { totalSat, signature: Uint8Array.from(signature) });
  }
  async savePayeeChannel(tempId: string, state: PayeeState): Promise<void> {
    this.payee.set(tempId, encodeState(state));
  }
  private readonly payerPayments = new Map<string, { totalSat: bigint; signature: Uint8Array }>();

  async loadPayerChannels(): Promise<StoredPayerChannel[]> {
    return [...this.payer].map(([tempId, s]) => ({ tempId, state: withNewestSignedPayment(decodeState<PayerState>(s), this.payerPayments.get(tempId)) }));
  }
  async savePayerPayment(tempId: string, totalSat: bigint, signature: Uint8Array): Promise<void> {
    this.payerPayments.set(tempId, { totalSat, signature: Uint8Array.from(signature) });
  }
  async savePayerChannel(tempId: string, state: PayerState): Promise<void> {
    this.payer.set(tempId, encodeState(state));
  }
  async getMeta(key: string): Promise<string | undefined> {
    return this.meta.get(key);
  }
  async putMeta(key: string, value: string): Promise<void> {
    this.meta.set(key, value);
  }
  async nextCounter(name: string): Promise<number> {
    const next = this.counters.get(name) ?? 0;
    this.counters.set(name, next + 1);
    return next;
  }
  async close(): Promise<void> {}
}
