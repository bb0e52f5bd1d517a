/**
 * The argument checks every {@link Store} adapter makes when a call is made, so that a bad
 * argument rejects that call alone, with the same TypeError from every adapter, and writes nothing.
 */
import { channelIdOf, type DuplexChannelState } from '../protocol/duplex-state.js';
import { encodeState } from './codec.js';

/** @throws TypeError if `tempId` is not a non-empty string. */
export function checkTempId(what: string, tempId: unknown): asserts tempId is string {
  if (typeof tempId !== 'string' || tempId === '') throw new TypeError(`${what}: tempId must be a non-empty string`);
}

/** @throws TypeError if the key is not a non-empty string or the value not a string. */
export function checkMeta(key: unknown, value: unknown): void {
  if (typeof key !== 'string' || key === '') throw new TypeError('putMeta: key must be a non-empty string');
  if (typeof value !== 'string') throw new TypeError(`putMeta(${key}): value must be a string`);
}

/** @throws TypeError for an empty tempId or a signature that is not 64 bytes. */
export function checkPayment(what: string, tempId: string, signature: Uint8Array): void {
  checkTempId(what, tempId);
  if (!(signature instanceof Uint8Array) || signature.length !== 64) throw new TypeError(`${what}: signature must be 64 bytes`);
}

/** @throws TypeError if `state` is not a tagged channel state. */
export function checkChannelState(what: string, tempId: string, state: unknown): asserts state is { readonly type: string } {
  checkTempId(what, tempId);
  if (state === null || typeof state !== 'object' || typeof (state as { type?: unknown }).type !== 'string') throw new TypeError(`${what}(${tempId}): state must be a channel state`);
}

/** The codec's encoding of `value`. @throws TypeError naming the call if it cannot be encoded. */
export function encodeChecked(what: string, key: string, value: unknown, noun = 'state'): string {
  try {
    return encodeState(value);
  } catch (err) {
    throw new TypeError(`${what}(${key}): the ${noun} cannot be encoded: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/**
 * Checks a duplex record and encodes it.
 * @returns its key, its encoding and its channel id (null before the funding is known).
 * @throws TypeError for a record without a tempId or one the codec cannot encode.
 */
export function encodeDuplexRecord(record: DuplexChannelState): { tempId: string; encoded: string; channelId: string | null } {
  if (record === null || typeof record !== 'object') throw new TypeError('saveDuplexRecords: a record must be an object');
  checkTempId('saveDuplexRecords', record.tempId);
  return { tempId: record.tempId, encoded: encodeChecked('saveDuplexRecords', record.tempId, record, 'record'), channelId: channelIdOf(record) };
}

/**
 * `saveDuplexRecords`' arguments, every record encoded and every meta entry checked before an
 * adapter writes anything (the call is all or nothing).
 * @throws TypeError for records that are not an array, a bad record, or a bad meta entry.
 */
export function encodeDuplexSave(records: readonly DuplexChannelState[], meta: ReadonlyMap<string, string> | undefined): { rows: ReturnType<typeof encodeDuplexRecord>[]; entries: [string, string][] } {
  if (!Array.isArray(records)) throw new TypeError('saveDuplexRecords: records must be an array');
  const rows = records.map((record) => encodeDuplexRecord(record));
  const entries = [...(meta ?? new Map<string, string>())];
  for (const [key, value] of entries) checkMeta(key, value);
  return { rows, entries };
}
