/** Every command explains itself, and bad input is refused with a message and exit code 2. */
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

describe('paychan --help', () => {
  it.each([
    [['help'], /paychan demo/],
    [['demo', '--help'], /--variant/],
    [['regtest', '--help'], /regtest start/],
    [['payee', 'serve', '--help'], /--listen HOST:PORT/],
    [['payer', '--help'], /payer open URL --capacity SAT/],
    [['help', 'payer'], /payer refund/],
    [['proxy', '--help'], /--upstream URL .*\n[\s\S]*--cors-origins LIST/],
    [['help', 'proxy'], /paychan proxy --upstream URL --prices FILE/],
  ])('%j', async (args, expected) => {
    const r = await runCli(args, process.env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(expected);
  });
});

describe('paychan GROUP SUBCOMMAND --help: that subcommand only, with its options and an example', () => {
  const subcommands = {
    payer: ['address', 'open', 'pay', 'fetch', 'status', 'sync', 'close', 'watch', 'refund'],
    payee: ['serve', 'address', 'pay-back', 'force-close', 'channels'],
    regtest: ['start', 'stop', 'mine', 'fund', 'run', 'build'],
  };
  const cases = Object.entries(subcommands).flatMap(([group, subs]) => subs.map((sub) => [group, sub] as const));
  it.each(cases)('paychan %s %s --help', async (group, sub) => {
    const r = await runCli([group, sub, '--help'], process.env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^paychan ${group} ${sub} — `));
    expect(r.stdout).toMatch(new RegExp(`Usage:\\n  paychan ${group} ${sub}\\b`));
    expect(r.stdout).toMatch(new RegExp(`Example:\\n  paychan ${group} ${sub}\\b`));
    // Not the group's overview: no other subcommand's usage line.
    for (const other of subcommands[group as keyof typeof subcommands].filter((o) => o !== sub)) expect(r.stdout).not.toMatch(new RegExp(`^  paychan ${group} ${other}\\b`, 'm'));
  });
  it('pay --help names its options; the same text through paychan help payer pay', async () => {
    const r = await runCli(['payer', 'pay', '--help'], process.env);
    expect(r.stdout).toMatch(/--count N/);
    expect(r.stdout).toMatch(/--connect-timeout SECONDS/);
    expect((await runCli(['help', 'payer', 'pay'], process.env)).stdout).toBe(r.stdout);
  });
});

describe('bad input', () => {
  it.each([
    [['nonsense'], /unknown command 'nonsense'/],
    [['demo', '--variant', 'duplex-x'], /--variant must be one of/],
    [['demo', '--payments', '-3'], /--payments/],
    [['demo', '--frobnicate'], /Unknown option '--frobnicate'/],
    [['payee', 'serve', '--network', 'mainnet'], /mainnet moves real money: add --mainnet/],
    [['payee', 'serve', '--listen', 'nowhere'], /--listen must be HOST:PORT/],
    [['payer', 'pay', 'ten'], /AMOUNT must be a positive amount/],
    [['payer', 'pay', '-5'], /AMOUNT must be positive, got '-5'/],
    [['payer', 'pay', '5', '--count', '-3'], /--count must be a positive whole number, got '-3'/],
    [['payee', 'pay-back', `${'0'.repeat(64)}:0`, '-5'], /AMOUNT must be positive/],
    [['payer', 'open', 'ws://127.0.0.1:1/v1/ws'], /usage: paychan payer open URL --capacity SAT/],
    [['regtest', 'mine', '0'], /N must be a positive whole number/],
    [['proxy', '--prices', 'p.json'], /--upstream URL is required/],
    [['proxy', '--upstream', 'ftp://127.0.0.1:1'], /--upstream: upstream must be http:\/\/ or https:\/\//],
    [['proxy', '--upstream', 'http://127.0.0.1:1', '--prices', '/nonexistent/prices.json'], /cannot read --prices \/nonexistent\/prices.json/],
    [['proxy', '--upstream', 'http://127.0.0.1:1', '--prices', 'test/fixtures/proxy-prices-bad.json'], /test\/fixtures\/proxy-prices-bad.json: routes\[1\] \(GET \/api\/\*\): perRequestSat must not be negative/],
    [['proxy', '--upstream', 'http://127.0.0.1:1', '--prices', 'test/fixtures/proxy-prices.json', '--cors-origins', 'app.example'], /--cors-origins: CORS origin must be scheme:\/\/host/],
  ])('%j', async (args, expected) => {
    const r = await runCli(args, { ...process.env, PAYCHAN_HOME: '/nonexistent-paychan-home' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(expected);
  });
});

describe('errors under --json: one object {"error":{"code","message"}}, the last line of stdout, exit non-zero', () => {
  const env = { ...process.env, PAYCHAN_HOME: '/nonexistent-paychan-home' };
  it.each([
    [['payer', 'pay', 'ten', '--json'], 2, 'USAGE', /AMOUNT must be a positive amount/],
    [['demo', '--frobnicate', '--json'], 2, 'USAGE', /Unknown option '--frobnicate'/],
    [['payer', 'status', '--json'], 1, 'NO_NODE', /no node: pass --rpc-url/],
    [['regtest', 'mine', '1', '--json'], 1, 'NO_NODE', /no local regtest node is running/],
    [['payee', 'channels', '--json'], 1, 'NO_ADMIN_TOKEN', /no admin token in/],
  ])('%j', async (args, exitCode, code, message) => {
    const r = await runCli(args, env);
    expect(r.code).toBe(exitCode);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(Object.keys(r.json!)).toEqual(['error']);
    expect(r.json!.error).toEqual({ code, message: expect.stringMatching(message) });
    expect(r.stderr).toMatch(message); // and the human line, for whoever watches stderr
  });
  it('regtest stop --json says whether it stopped a node, as one object', async () => {
    const r = await runCli(['regtest', 'stop', '--json'], env);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('{"stopped":false}');
  });
  it('PAYCHAN_JSON=1 asks for it as --json does; without either, errors stay text', async () => {
    const viaEnv = await runCli(['payer', 'status'], { ...env, PAYCHAN_JSON: '1' });
    expect(viaEnv.json).toEqual({ error: { code: 'NO_NODE', message: expect.any(String) } });
    const text = await runCli(['payer', 'status'], env);
    expect(text.code).toBe(1);
    expect(text.stdout).toBe('');
  });
});
