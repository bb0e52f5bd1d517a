/**
 * Peer-controlled text on its way into the payee's log.
 *
 * Log lines are plain text, one event per line; a peer's string (an `error` message's text, a
 * node's reject reason that quotes a transaction) could hold a newline and write a line of its
 * own that looks like ours, or terminal escapes. So every such string goes in as a JSON string
 * literal: quoted, with control characters, quotes and backslashes escaped, and U+2028/U+2029
 * (line breaks to some viewers) too. A structured logger (pino) would do this for every field;
 * until the project takes one, this is the one place that does it.
 */

/** `text` as one quoted, escaped token, cut to `maxChars` characters first. */
export function logText(text: string, maxChars = 300): string {
  const cut = text.length > maxChars ? `${text.slice(0, maxChars)}…` : text;
  return JSON.stringify(cut).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}
