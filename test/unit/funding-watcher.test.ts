import { describe, expect, it } from 'vitest';
import { BroadcastRejectedError, type TxStatus } from '../../src/chain/backend.js';
import { DEEP_CONFIRMATIONS, FundingWatcher, type WatchedEntry } from '../../src/payee/funding-watcher.js';
import type { PayeeInput, PayeeState } from '../../src/protocol/payee-machine.js';

const TXID = 'aa'.repeat(32);
const EXPIRY = 200;

/** Only the fields the watcher reads: the fake host never steps a real machine. */
function fakeState(type: 'Open' | 'AwaitingConfirmation'): PayeeState {
  return { type, channel: { id: `${TXID}:0`, funding: { txid: TXID, vout: 0 }, expiryHeight: EXPIRY }, fundingTxHex: 'beef' } as unknown as PayeeState;
}

/** A fake chain (confirmations set by the test) and a host that records the inputs it is given. */
function setup(state: PayeeState) {
  const chain = { confirmations: null as number | null, broadcasts: [] as string[], refuse: false, reads: 0, gate: null as Promise<void> | null };
  const steps: PayeeInput[] = [];
  const log: string[] = [];
  const entry: WatchedEntry = { tempId: 't1', type: state.type, state };
  const watcher = new FundingWatcher(
    { entries: () => [entry], entry: (id) => (id === 't1' ? entry : undefined), step: async (_id, input) => void steps.push(input) },
    {
      getTransaction: async (): Promise<TxStatus | null> => {
        chain.reads++;
        const confirmations = chain.confirmations; // as the node answered when asked
        if (chain.gate) await chain.gate;
        return confirmations === null ? null : { hex: 'beef', confirmations };
      },
      broadcast: async (hex) => {
        if (chain.refuse) throw new BroadcastRejectedError(TXID, 'txn-mempool-conflict');
        chain.broadcasts.push(hex);
        return TXID;
      },
    },
    1,
    (line) => log.push(line),
  );
  return { chain, steps, log, watcher };
}

describe('funding watcher', () => {
  it('steps a watched funding `confirmed` once it has its confirmations, and then forgets it', async () => {
    const { chain, steps, watcher } = setup(fakeState('AwaitingConfirmation'));
    watcher.watch('t1', TXID, 2);
    chain.confirmations = 1;
    await watcher.checkWatches();
    expect(steps).toEqual([]);
    chain.confirmations = 2;
    await watcher.checkWatches();
    await watcher.checkWatches();
    expect(steps).toEqual([{ type: 'confirmed', txid: TXID }]);
  });

  it('hands a watched funding the node lost to it again, and only logs a refusal', async () => {
    const { chain, steps, log, watcher } = setup(fakeState('AwaitingConfirmation'));
    watcher.watch('t1', TXID, 1);
    await watcher.checkWatches();
    expect(chain.broadcasts).toEqual(['beef']);
    chain.refuse = true;
    await watcher.checkWatches();
    expect(log.at(-1)).toMatch(/refused on rebroadcast: .*txn-mempool-conflict/);
    expect(steps).toEqual([]);
  });

  it('drops the watch of a channel still awaiting a funding the node does not know once the channel expired (no more node calls for it), and only then', async () => {
    const { chain, steps, log, watcher } = setup(fakeState('AwaitingConfirmation'));
    watcher.watch('t1', TXID, 1);
    await watcher.checkWatches(EXPIRY - 1);
    expect(chain.broadcasts).toEqual(['beef']); // before expiry: handed to the node again
    await watcher.checkWatches(EXPIRY);
    expect(chain.broadcasts).toEqual(['beef']);
    expect(log.at(-1)).toMatch(/unknown to the node and the channel expired at 200: no longer watched/);
    const reads = chain.reads;
    await watcher.checkWatches(EXPIRY + 1);
    expect(chain.reads).toBe(reads);
    expect(steps).toEqual([]);
  });

  it('keeps watching an expired channel\'s funding while the node knows it', async () => {
    const { chain, steps, watcher } = setup(fakeState('AwaitingConfirmation'));
    watcher.watch('t1', TXID, 2);
    chain.confirmations = 1;
    await watcher.checkWatches(EXPIRY + 5);
    await watcher.checkWatches(EXPIRY + 6);
    expect(chain.reads).toBe(2);
    chain.confirmations = 2;
    await watcher.checkWatches(EXPIRY + 7);
    expect(steps).toEqual([{ type: 'confirmed', txid: TXID }]);
  });

  it('suspends an open channel whose funding lost its confirmations, and watches it again', async () => {
    const { chain, steps, watcher } = setup(fakeState('Open'));
    chain.confirmations = 0;
    await watcher.checkDepth();
    expect(steps).toEqual([{ type: 'funding-unconfirmed' }]);
    chain.confirmations = 1;
    await watcher.checkWatches();
    expect(steps.at(-1)).toEqual({ type: 'confirmed', txid: TXID });
  });

  it('stops checking a deep funding until the chain switches', async () => {
    const { chain, steps, watcher } = setup(fakeState('Open'));
    chain.confirmations = DEEP_CONFIRMATIONS;
    await watcher.checkDepth();
    chain.confirmations = 0;
    await watcher.checkDepth();
    expect(steps).toEqual([]);
    watcher.chainSwitched();
    await watcher.checkDepth();
    expect(steps).toEqual([{ type: 'funding-unconfirmed' }]);
  });

  it('runs a check asked for during a check once more when it ends (a block mid-check is not skipped)', async () => {
    const { chain, steps, watcher } = setup(fakeState('AwaitingConfirmation'));
    watcher.watch('t1', TXID, 1);
    chain.confirmations = 0;
    let open!: () => void;
    chain.gate = new Promise<void>((resolve) => (open = resolve));
    const first = watcher.checkWatches();
    await watcher.checkWatches(); // returns at once: a check runs
    chain.confirmations = 1; // the block arrived mid-check
    chain.gate = null;
    open();
    await first;
    expect(chain.reads).toBe(2);
    expect(steps).toEqual([{ type: 'confirmed', txid: TXID }]);
  });
});
