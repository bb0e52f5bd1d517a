/**
 * The README's run command: `npx paychan demo --json` (and `--variant spilman-v2`), with no
 * other flags, prints the fields, read back from the node, adding up to the capacity.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { argsOf, runCli } from '../helpers/cli.js';

const README = fs.readFileSync('README.md', 'utf8');

describe.each(['npx paychan demo --json', 'npx paychan demo --variant spilman-v2 --json'])('%s', (line) => {
  it('runs payee and payer as processes and reports a confirmed close that adds up', async () => {
    expect(README).toContain(line);
    const result = await runCli(argsOf(line), process.env, 300_000);
    expect(result.code, result.stderr).toBe(0);
    const r = result.json!;
    for (const field of ['variant', 'network', 'capacitySat', 'payments', 'paidSat', 'fundingTxid', 'closeTxid', 'closeConfirmations', 'payeeReceivedSat', 'payerReceivedSat', 'closeFeeSat', 'closeVsize', 'processes', 'paidRequests']) {
      expect(r, field).toHaveProperty(field);
    }
    expect(r.variant).toBe(line.includes('spilman-v2') ? 'spilman-v2' : 'spilman-v1');
    expect(r.network).toBe('regtest');
    expect(r.payments).toBe(1000);
    expect(r.paidRequests).toBe(20);
    expect(r.processes as number).toBeGreaterThanOrEqual(3);
    expect(r.closeConfirmations as number).toBeGreaterThanOrEqual(1);
    expect((r.payeeReceivedSat as number) + (r.payerReceivedSat as number) + (r.closeFeeSat as number)).toBe(r.capacitySat);
    expect(r.payerReceivedSat).toBe((r.capacitySat as number) - (r.paidSat as number));
    expect(r.payeeReceivedSat).toBe((r.paidSat as number) - (r.closeFeeSat as number));
  });
});

describe('npx paychan regtest build', () => {
  it('prints the path of the pinned btcd', async () => {
    const line = 'npx paychan regtest build';
    expect(README).toContain(line);
    const result = await runCli(argsOf(line), process.env);
    expect(result.code, result.stderr).toBe(0);
    expect(fs.existsSync(result.stdout.trim())).toBe(true);
  });
});

describe('npx paychan demo --variant duplex --json', () => {
  it('funds from both sides, pays both ways and closes cooperatively, adding up on chain', async () => {
    const line = 'npx paychan demo --variant duplex --json';
    expect(README).toContain(line);
    const result = await runCli(argsOf(line), process.env, 300_000);
    expect(result.code, result.stderr).toBe(0);
    const r = result.json!;
    for (const field of ['variant', 'paidAtoBSat', 'paidBtoASat', 'updates', 'closeTxid', 'closeConfirmations', 'closeKind', 'capacitySat', 'payerReceivedSat', 'payeeReceivedSat', 'closeFeeSat']) {
      expect(r, field).toHaveProperty(field);
    }
    expect(r).toMatchObject({ variant: 'duplex', closeKind: 'cooperative', paidAtoBSat: 20_000, paidBtoASat: 15_000, updates: 23, capacitySat: 1_000_000 });
    expect(r.fundingInputs as number).toBeGreaterThanOrEqual(2); // the payee's coins are in the funding too
    expect(r.processes as number).toBeGreaterThanOrEqual(3);
    expect(r.closeConfirmations as number).toBeGreaterThanOrEqual(1);
    expect((r.payerReceivedSat as number) + (r.payeeReceivedSat as number) + (r.closeFeeSat as number)).toBe(r.capacitySat);
    expect((r.payerReceivedSat as number) + Math.ceil((r.closeFeeSat as number) / 2)).toBe(600_000 - 20_000 + 15_000);
  });
});
