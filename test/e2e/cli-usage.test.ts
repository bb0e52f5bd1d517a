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
  ])('%j', async (args, expected) => {
    const r = await runCli(args, process.env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(expected);
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
    [['payer', 'open', 'ws://127.0.0.1:1/v1/ws'], /usage: paychan payer open URL --capacity SAT/],
    [['regtest', 'mine', '0'], /N must be a positive whole number/],
  ])('%j', async (args, expected) => {
    const r = await runCli(args, { ...process.env, PAYCHAN_HOME: '/nonexistent-paychan-home' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(expected);
  });
});
