/**
 * Child process of the store crash test (test/integration/store.test.ts), run as
 * `node --import tsx store-crash-child.ts <db file>` and killed with SIGKILL mid-stream.
 *
 * WRITERS loops each save an increasing `paidSat` to their own payee channel and, in the same
 * turn (so in the same batch), the same number to a meta key; another loop takes counter values.
 * A line is printed only after its promise resolved, so every printed line is a write the store
 * acknowledged as durable:
 *   `w <writer> <value>`  channel `writer-<writer>` has paidSat = value, meta `writer-<writer>` = value
 *   `c <value>`           counter `crash` handed out value
 * Each run resumes from the stored values, so values keep increasing across runs.
 */
import type { PayeeState } from '../../src/protocol/payee-machine.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { channel, terms } from './protocol.js';

const WRITERS = 8;
const file = process.argv[2];
if (file === undefined) throw new TypeError('usage: store-crash-child.ts <db file>');
const store = openSqliteStore(file);
const ch = channel('spilman-v2');
const print = (line: string): void => void process.stdout.write(line + '\n');

async function writer(j: number): Promise<never> {
  const tempId = `writer-${j}`;
  let value = Number((await store.getMeta(tempId)) ?? '0');
  for (;;) {
    value++;
    const state: PayeeState = { type: 'Open', tempId, terms: terms('spilman-v2'), keyIndex: j, channel: ch, paidSat: BigInt(value), signature: new Uint8Array(64).fill(j) };
    await Promise.all([store.savePayeeChannel(tempId, state), store.putMeta(tempId, String(value))]);
    print(`w ${j} ${value}`);
  }
}

async function counter(): Promise<never> {
  for (;;) print(`c ${await store.nextCounter('crash')}`);
}

await Promise.all([...Array.from({ length: WRITERS }, (_, j) => writer(j)), counter()]);
