/**
 * The refs a duplex error names (what the channel's peer learns an error is about), and how a
 * router reads them back.
 */
import type { Message } from '../protocol/messages.js';

/** `<id>/<index>` or `<id>#<request>` (error refs) → the id and what it is about. */
export function splitRef(ref: string | undefined): [string | undefined, { index?: number; requestId?: string }] {
  if (ref === undefined) return [undefined, {}];
  const slash = /^(.*)\/([0-9]{1,7})$/.exec(ref);
  if (slash) return [slash[1], { index: Number(slash[2]) }];
  const hash = /^(.*)#([0-9a-f]{32})$/.exec(ref);
  if (hash) return [hash[1], { requestId: hash[2] }];
  return [ref, {}];
}

/** What an error answering `message` names: `<channel>/<index>` for a state, `<channel>#<request>` for a pay request. */
export function refOf(message: Message): string | undefined {
  if (message.type === 'duplex-update') return `${message.channelId}/${message.index}`;
  if (message.type === 'duplex-pay-request') return `${message.channelId}#${message.requestId}`;
  return 'tempId' in message ? message.tempId : 'channelId' in message ? message.channelId : undefined;
}
