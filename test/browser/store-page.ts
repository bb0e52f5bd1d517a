/**
 * The page side of the IndexedDB store's contract run (test/helpers/browser-store.ts): opens
 * stores by database name and runs their methods for the Node side, which drives the real
 * contract suite through a proxy. Errors come back as plain data (name, message), so Node can
 * rebuild a TypeError or a StoreError's message.
 */
import { openIndexedDbStore, type IndexedDbStore } from '../../src/store/indexeddb-store.js';

const stores = new Map<number, IndexedDbStore>();
let next = 0;

type Outcome = { ok: true; value: unknown } | { ok: false; name: string; message: string };

async function outcome(run: () => Promise<unknown>): Promise<Outcome> {
  try {
    const value = await run();
    return { ok: true, value: value instanceof Map ? [...value] : value };
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    return { ok: false, name: e.name, message: e.message };
  }
}

const api = {
  open: (name: string): Promise<Outcome> =>
    outcome(async () => {
      const store = await openIndexedDbStore({ name });
      stores.set(++next, store);
      return next;
    }),
  call: (handle: number, method: string, args: unknown[]): Promise<Outcome> =>
    outcome(() => {
      const store = stores.get(handle)! as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
      // Maps do not cross page.evaluate: saveDuplexRecords' meta comes as entries.
      const fixed = method === 'saveDuplexRecords' && Array.isArray(args[1]) ? [args[0], new Map(args[1] as [string, string][])] : args;
      return store[method]!.apply(store, fixed);
    }),
};

(globalThis as unknown as { paychanStoreTest: typeof api }).paychanStoreTest = api;
