/**
 * Per-subcommand help: `paychan payer pay --help` prints pay's own usage, options and an
 * example, not the whole group. Each group keeps a table of its subcommands; the group's own
 * help (`paychan payer --help`) stays the overview.
 */

export interface CommandHelp {
  /** The usage line(s) after `paychan GROUP `, e.g. `pay AMOUNT [--count N]`. */
  readonly usage: string;
  /** What it does, a few lines. */
  readonly about: string;
  /** Its options, one per line, aligned as in the group help. */
  readonly options?: string;
  /** One or more example command lines. */
  readonly example: string;
}

export function formatHelp(group: string, sub: string, h: CommandHelp): string {
  const indent = (text: string) =>
    text
      .trim()
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n');
  return [
    `paychan ${group} ${sub} — ${h.about.trim().split('\n')[0]}`,
    '',
    'Usage:',
    indent(`paychan ${group} ${h.usage}`),
    ...(h.about.trim().includes('\n') ? ['', h.about.trim().split('\n').slice(1).join('\n')] : []),
    ...(h.options ? ['', 'Options:', indent(h.options)] : []),
    '',
    'Example:',
    indent(h.example),
    '',
    `Run 'paychan ${group} --help' for the other ${group} commands and the options they share.`,
    '',
  ].join('\n');
}

/**
 * The help to print for `paychan GROUP [SUB] --help` (or `paychan GROUP help [SUB]`): SUB's own
 * when the table has it, else the group's.
 */
export function helpText(group: string, groupHelp: string, table: Readonly<Record<string, CommandHelp>>, sub: string | undefined): string {
  const h = sub === undefined ? undefined : Object.hasOwn(table, sub) ? table[sub] : undefined;
  return h ? formatHelp(group, sub!, h) : groupHelp;
}
