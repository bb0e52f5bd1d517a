/**
 * The CLI does what it says, or says what it did (defects found by trying paychan from outside):
 * - `payer pay --count N` and `payer fetch --count N` never move money silently: a run that
 *   cannot be paid whole is refused before anything is signed, and a run that stops part way
 *   says what it paid (and exits non-zero);
 * - an unreachable or busy payee is an error naming the URL and the cause, within the connect
 *   timeout, not an endless "reconnecting";
 * - and smaller ones: fetch says why it failed, refund after the payee's close says so, the
 *   funding wait is announced once, `payee channels` lists every channel.
 * Real processes against a real btcd, as a user runs them.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, runCli, startCli, withMining, type CliResult, tearDownCliHome } from '../helpers/cli.js';
import { waitUntil } from '../helpers/wait.js';

let home: string;
let port: number;
let env: NodeJS.ProcessEnv;
let payee: Awaited<ReturnType<typeof startCli>> | undefined;

async function ok(args: string[]): Promise<CliResult> {
  const r = await runCli(args, env);
  if (r.code !== 0) throw new Error(`paychan ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}
const mineOne = () => ok(['regtest', 'mine', '1']);
const status = async () => (await ok(['payer', 'status', '--json'])).json!;

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-outside-'));
  port = await freePort();
  env = { ...process.env, PAYCHAN_HOME: home };
  await ok(['regtest', 'start']);
  payee = await startCli(['payee', 'serve', '--listen', `127.0.0.1:${port}`], env, /payee listening/);
  const address = (await ok(['payer', 'address'])).stdout.trim().split('\n')[0]!;
  await ok(['regtest', 'fund', address, '0.01btc']);
  await withMining(ok(['payer', 'open', `ws://127.0.0.1:${port}/v1/ws`, '--capacity', '100000']), mineOne);
});

afterAll(() => tearDownCliHome(home, env, payee));

describe('payer pay --count N', () => {
  it('refuses a run above the capacity up front: nothing paid, and says why', async () => {
    const before = await status();
    const r = await runCli(['payer', 'pay', '100', '--count', '20000'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/nothing paid: cannot make 20000 payment\(s\) of 100 sat .*above the agreed maximum 100000/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(await status()).toEqual(before);
  });

  it('refuses a run whose last payment would leave dust change (the protocol rule), with its code under --json', async () => {
    const before = await status();
    // 997 payments leave 300 sat; the 998th would leave 200, below the 294-sat dust of P2WPKH.
    const r = await runCli(['payer', 'pay', '100', '--count', '998', '--json'], env);
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ payments: 0, paidNowSat: 0, requestedPayments: 998, error: { code: 'CHANGE_BELOW_DUST' } });
    expect(String((r.json!.error as { message: string }).message)).toMatch(/would leave 200 sat change, below dust \(294\)/);
    expect(await status()).toEqual(before);
  });

  it('stopped part way (interrupted while the payee does not answer), says what was paid and what more is signed, and exits non-zero', async () => {
    const channelUrl = `http://127.0.0.1:${port}/v1/channels/${String((await status()).channelId)}`;
    const paidAtPayee = async () => BigInt(((await (await fetch(channelUrl)).json()) as { paidSat: string }).paidSat);
    const from = await paidAtPayee();
    let child: ChildProcess | undefined;
    const run = runCli(['payer', 'pay', '1', '--count', '90000', '--json'], env, 120_000, (c) => (child = c));
    // Well past the first payments: the payee stores a payment before it sends its ack, so a
    // freeze right after the first stored one could stop every ack short of the payer.
    await waitUntil(async () => (await paidAtPayee()) > from + 200n, 'the payee to store 200 sat of payments', 60_000);
    // Freeze the payee: acknowledgements stop, so the run cannot finish on its own.
    payee!.child.kill('SIGSTOP');
    try {
      child!.kill('SIGINT');
      const r = await run;
      expect(r.code).toBe(1);
      const payments = Number(r.json!.payments);
      expect(payments).toBeGreaterThan(0);
      expect(payments).toBeLessThan(90000);
      expect(r.json).toMatchObject({ paidNowSat: payments, requestedPayments: 90000, error: { code: 'INTERRUPTED' } });
      expect(r.stderr).toMatch(new RegExp(`stopped after ${payments} of 90000 payment\\(s\\): ${payments} sat paid.*interrupted`));
      // Payments were in flight when the payee froze: signed beyond what it acknowledged, and
      // the payee may close with the highest signed, so the human line says so as --json does.
      const signedSat = Number(r.json!.signedSat);
      expect(signedSat).toBeGreaterThan(Number(r.json!.ackedSat));
      expect(r.stderr).toContain(`${signedSat} sat signed; the payee may claim up to that`);
    } finally {
      payee!.child.kill('SIGCONT');
    }
  });
});

describe('payer fetch --count N', () => {
  it('stopped part way (the channel cannot pay the next request), says how many requests and sats were paid', async () => {
    // Leave 324 sat: three requests of 10 sat leave 294 (dust, but allowed); a fourth would leave 284.
    const s = await status();
    await ok(['payer', 'pay', String(100_000 - 324 - Number(s.signedSat))]);
    const r = await runCli(['payer', 'fetch', `http://127.0.0.1:${port}/v1/paid/hello`, '--count', '5', '--json'], env);
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ paidRequests: 3, paidNowSat: 30, requestedRequests: 5 });
    expect(r.stderr).toMatch(/stopped after 3 of 5 paid request\(s\): 30 sat paid/);
  });
});

describe('an unreachable payee', () => {
  /** The error line: the last of stderr; the answer channel (stdout) says nothing of retries. */
  const failure = (r: CliResult) => {
    expect(r.code).toBe(1);
    expect(r.stdout).not.toMatch(/reconnect|retrying/);
    return r.stderr.trim().split('\n').pop()!;
  };

  it('open to a closed port fails within --connect-timeout, naming the URL and ECONNREFUSED', async () => {
    const closed = await freePort();
    const url = `ws://127.0.0.1:${closed}/v1/ws`;
    const r = await runCli(['payer', 'open', url, '--capacity', '10000', '--connect-timeout', '1'], env, 60_000);
    expect(failure(r)).toMatch(new RegExp(`^paychan: cannot connect to ${url} within 1 s: .*ECONNREFUSED`));
  });

  it('a payee answering 503 to the WebSocket upgrade is reported as busy', async () => {
    const busy = http.createServer((_req, res) => res.writeHead(503).end());
    busy.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 0\r\n\r\n'));
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const url = `ws://127.0.0.1:${(busy.address() as { port: number }).port}/v1/ws`;
      const r = await runCli(['payer', 'open', url, '--capacity', '10000', '--connect-timeout', '1'], env, 60_000);
      expect(failure(r)).toMatch(new RegExp(`^paychan: cannot connect to ${url} within 1 s: payee busy: HTTP 503 Service Unavailable \\(Retry-After: 5\\)$`));
    } finally {
      busy.close();
    }
  });

  it('pay and close give up when the payee accepts the connection but never answers', async () => {
    payee!.child.kill('SIGSTOP');
    try {
      for (const args of [['payer', 'pay', '1'], ['payer', 'close']]) {
        const r = await runCli([...args, '--connect-timeout', '1'], env, 60_000);
        expect(failure(r)).toMatch(new RegExp(`^paychan: cannot connect to ws://127\\.0\\.0\\.1:${port}/v1/ws within 1 s`));
      }
    } finally {
      payee!.child.kill('SIGCONT');
    }
  });
});

describe('smaller defects', () => {
  it('payer fetch to a dead host gives the cause, not just "fetch failed"', async () => {
    const url = `http://127.0.0.1:${await freePort()}/v1/paid/hello`;
    const r = await runCli(['payer', 'fetch', url], env, 60_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`GET ${url} failed: .*ECONNREFUSED`));
  });

  it('payee channels lists the Spilman channels too, with variant, capacity, paid, state and expiry', async () => {
    const s = await status();
    const listen = { ...env, PAYCHAN_LISTEN: `127.0.0.1:${port}` };
    const r = await runCli(['payee', 'channels', '--json'], listen);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json!.channels).toContainEqual({ channelId: s.channelId, variant: 'spilman-v1', capacitySat: 100000, paidSat: s.ackedSat, state: 'Open', expiryHeight: s.expiryHeight });
    const human = await runCli(['payee', 'channels'], listen);
    expect(human.stdout).toContain(`${String(s.channelId)} spilman-v1 Open: capacity 100000 sat, paid ${String(s.ackedSat)} sat, expiry height ${String(s.expiryHeight)}`);
  });

  it('payer refund after the payee closed says the payee closed it, and in which transaction', async () => {
    const closed = await withMining(ok(['payer', 'close']), mineOne);
    const closeTxid = /closed: ([0-9a-f]{64}) confirmed/.exec(closed.stdout)?.[1];
    expect(closeTxid, closed.stdout).toBeDefined();
    const r = await runCli(['payer', 'refund'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^paychan: channel [0-9a-f]{64}:\\d+ was closed by the payee, in ${closeTxid} \\(\\d+ confirmation\\(s\\)\\): nothing to refund`));
  });

  it('a duplex open says once that it waits for the funding; payee channels lists it', async () => {
    const opened = await withMining(ok(['payer', 'open', `ws://127.0.0.1:${port}/v1/ws`, '--variant', 'duplex', '--capacity', '20000']), mineOne);
    const waits = (opened.stdout + opened.stderr).split('\n').filter((l) => /waiting for .*funding|funding.*waiting/.test(l));
    expect(waits, opened.stderr).toHaveLength(1);
    const id = /duplex channel ([0-9a-f]{64}:\d+) is open/.exec(opened.stdout)?.[1];
    const r = await runCli(['payee', 'channels', '--json'], { ...env, PAYCHAN_LISTEN: `127.0.0.1:${port}` });
    expect(r.json!.channels).toContainEqual(expect.objectContaining({ channelId: id, variant: 'duplex', capacitySat: 20000, paidSat: 0, paidBackSat: 0 }));

    // Its pay --count is checked whole too: 30 × 1000 sat from a 20,000-sat balance pays nothing.
    const before = (await ok(['payer', 'status', '--json'])).json!;
    const refused = await runCli(['payer', 'pay', '1000', '--count', '30', '--json'], env);
    expect(refused.code).toBe(1);
    expect(refused.json).toMatchObject({ payments: 0, paidNowSat: 0, error: { code: 'INSUFFICIENT_BALANCE' } });
    expect((await ok(['payer', 'status', '--json'])).json).toEqual(before);
  });
});

/**
 * A TCP relay to the payee that passes everything until the payer has sent `updates`
 * duplex-update messages, then stops passing the payee's answers (held: the bytes it kept back),
 * so that update is signed by the payer, countersigned by the payee, and never answered.
 */
async function relayHoldingAfter(updates: number): Promise<{ port: number; held: () => number; close: () => void }> {
  let seen = 0;
  let heldBytes = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => (s === client ? upstream : client).destroy());
    }
    let pending = Buffer.alloc(0);
    let upgraded = false;
    client.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      // The payer's WebSocket frames (masked, unfragmented, uncompressed JSON text): count updates.
      if (!upgraded) {
        const end = pending.indexOf('\r\n\r\n');
        if (end >= 0) {
          upgraded = true;
          pending = pending.subarray(end + 4);
        }
      }
      while (upgraded && pending.length >= 2) {
        let len = pending[1]! & 0x7f;
        let at = 2;
        if (len === 126) [len, at] = [pending.length >= 4 ? pending.readUInt16BE(2) : Infinity, 4];
        else if (len === 127) [len, at] = [pending.length >= 10 ? Number(pending.readBigUInt64BE(2)) : Infinity, 10];
        if (pending.length < at + 4 + len) break;
        const mask = pending.subarray(at, at + 4);
        const payload = Buffer.from(pending.subarray(at + 4, at + 4 + len)).map((b, i) => b ^ mask[i % 4]!);
        if ((pending[0]! & 0x0f) === 1 && payload.toString().includes('"type":"duplex-update"')) seen++;
        pending = pending.subarray(at + 4 + len);
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (seen >= updates) heldBytes += chunk.length;
      else client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    held: () => heldBytes,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe('duplex payer pay --count N', () => {
  it('stopped part way (interrupted while the payee does not answer), names the state signed but not countersigned', async () => {
    // The current channel is the duplex one opened above; its payer reaches the payee through the relay.
    const currentFile = path.join(home, 'payer', 'duplex-current.json');
    const current = JSON.parse(fs.readFileSync(currentFile, 'utf8')) as { channelId: string; url: string };
    const relay = await relayHoldingAfter(3);
    fs.writeFileSync(currentFile, JSON.stringify({ ...current, url: `ws://127.0.0.1:${relay.port}/v1/ws` }));
    try {
      const before = (await ok(['payer', 'status', '--json'])).json!;
      let child: ChildProcess | undefined;
      // 300 sat: B's output is above dust from the first update; 10 updates fit in the budget.
      const run = runCli(['payer', 'pay', '300', '--count', '10', '--json'], env, 120_000, (c) => (child = c));
      // The third update was countersigned by the payee, and its answer held back.
      await waitUntil(() => relay.held() > 0, 'the relay to hold back an answer', 60_000);
      child!.kill('SIGINT');
      const r = await run;
      expect(r.code).toBe(1);
      const index = Number(before.index) + 3;
      expect(r.json).toMatchObject({
        payments: 2,
        paidNowSat: 600,
        requestedPayments: 10,
        index: index - 1,
        signedNotCountersigned: { index, balanceASat: Number(before.balanceASat) - 900, balanceBSat: Number(before.balanceBSat) + 900 },
        error: { code: 'INTERRUPTED' },
      });
      expect(r.stderr).toContain(`stopped after 2 of 10 update(s): 600 sat paid on ${current.channelId} (state ${index}, A ${Number(before.balanceASat) - 900} sat / B ${Number(before.balanceBSat) + 900} sat, is signed but not countersigned: the payee may claim it): interrupted`);
    } finally {
      fs.writeFileSync(currentFile, JSON.stringify(current));
      relay.close();
    }
  });
});
