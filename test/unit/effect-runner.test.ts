import { describe, expect, it } from 'vitest';
import { EffectQueue, scheduleEffects, SETTLED, type EffectHost, type EffectTail } from '../../src/driver/effect-runner.js';

type TestEffect = { type: 'persist' } | { type: 'send'; message: string } | { type: 'broadcast'; txid: string } | { type: 'note'; text: string };

/** A host that records what ran, with saves the test resolves by hand. */
function recordingHost() {
  const log: string[] = [];
  const saves: { step: string; resolve: () => void; reject: (err: Error) => void }[] = [];
  const failures: { step: string; err: unknown }[] = [];
  const host: EffectHost<TestEffect, string> = {
    persist(step) {
      log.push(`${step}:persist-issued`);
      return new Promise<void>((resolve, reject) => saves.push({ step, resolve, reject }));
    },
    send(step, message) {
      log.push(`${step}:send ${message}`);
    },
    carryOut(step, effect) {
      if (effect.type === 'broadcast') log.push(`${step}:broadcast ${effect.txid}`);
      else log.push(`${step}:note ${effect.text}`);
      if (effect.type === 'note' && effect.text === 'boom') throw new Error('boom');
    },
    holdsLaterPersists: (effect) => effect.type === 'broadcast',
    failed(step, err) {
      failures.push({ step, err });
    },
  };
  return { host, log, saves, failures };
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('effect runner', () => {
  it('issues the persists of consecutive steps at once (one group commit) and sends each only after its own save', async () => {
    const { host, log, saves } = recordingHost();
    const tail: EffectTail = { effects: SETTLED };
    const first = scheduleEffects(tail, host, 'a', [{ type: 'persist' }, { type: 'send', message: 'ack1' }]);
    const second = scheduleEffects(tail, host, 'b', [{ type: 'persist' }, { type: 'send', message: 'ack2' }]);
    await flush();
    expect(log).toEqual(['a:persist-issued', 'b:persist-issued']);
    saves[1]!.resolve(); // the later save alone does not release the earlier step's ack, nor its own
    await flush();
    expect(log).toEqual(['a:persist-issued', 'b:persist-issued']);
    saves[0]!.resolve();
    await Promise.all([first, second]);
    expect(log).toEqual(['a:persist-issued', 'b:persist-issued', 'a:send ack1', 'b:send ack2']);
    expect(tail.effects).toBe(SETTLED);
  });

  it('rejects every step waiting on a failed save and leaves no effect of it run', async () => {
    const { host, log, saves, failures } = recordingHost();
    const tail: EffectTail = { effects: SETTLED };
    const step = scheduleEffects(tail, host, 'a', [{ type: 'persist' }, { type: 'send', message: 'ack' }]);
    saves[0]!.reject(new Error('disk full'));
    await expect(step).rejects.toThrow('disk full');
    expect(log).toEqual(['a:persist-issued']);
    expect(failures).toHaveLength(1);
  });

  it('returns the settled tail and touches nothing for a step without effects', () => {
    const { host } = recordingHost();
    const tail: EffectTail = { effects: SETTLED };
    expect(scheduleEffects(tail, host, 'a', [])).toBe(SETTLED);
    expect(tail.effects).toBe(SETTLED);
  });
});

describe('effect queue', () => {
  it('issues the persists of consecutive steps at once (one group commit) and sends each only after its own save', async () => {
    const { host, log, saves } = recordingHost();
    const queue = new EffectQueue(host);
    queue.schedule('a', [{ type: 'persist' }, { type: 'send', message: 'ack1' }]);
    queue.schedule('b', [{ type: 'persist' }, { type: 'send', message: 'ack2' }]);
    expect(log).toEqual(['a:persist-issued', 'b:persist-issued']); // issued when scheduled
    await flush();
    saves[1]!.resolve(); // the later save alone does not release the earlier step's ack, nor its own
    await flush();
    expect(log).toEqual(['a:persist-issued', 'b:persist-issued']);
    expect(queue.busy).toBe(true);
    saves[0]!.resolve();
    await queue.idle();
    expect(log).toEqual(['a:persist-issued', 'b:persist-issued', 'a:send ack1', 'b:send ack2']);
    expect(queue.busy).toBe(false);
  });

  it('never runs an effect inside schedule: an idle queue starts in a microtask', async () => {
    const { host, log } = recordingHost();
    const queue = new EffectQueue(host);
    queue.schedule('a', [{ type: 'send', message: 'hello' }]);
    expect(log).toEqual([]);
    await queue.idle();
    expect(log).toEqual(['a:send hello']);
  });

  it("keeps running later steps when the host's failure report throws too", async () => {
    const { host, log, saves } = recordingHost();
    const queue = new EffectQueue<TestEffect, string>({
      ...host,
      failed() {
        throw new Error('the logger broke');
      },
    });
    const step = queue.scheduleAndWait('a', [{ type: 'persist' }, { type: 'send', message: 'ack' }]);
    queue.schedule('b', [{ type: 'persist' }, { type: 'send', message: 'ack2' }]);
    saves[0]!.reject(new Error('disk full'));
    await expect(step).rejects.toThrow('disk full');
    saves[1]!.resolve();
    await queue.idle();
    expect(log).toEqual(['a:persist-issued', 'b:persist-issued', 'b:send ack2']);
    expect(queue.busy).toBe(false);
  });

  it('fails a step waiting on a failed save (no effect of it runs) and runs the next step after it', async () => {
    const { host, log, saves, failures } = recordingHost();
    const queue = new EffectQueue(host);
    const step = queue.scheduleAndWait('a', [{ type: 'persist' }, { type: 'send', message: 'ack' }]);
    queue.schedule('b', [{ type: 'persist' }, { type: 'send', message: 'ack2' }]);
    saves[0]!.reject(new Error('disk full'));
    await expect(step).rejects.toThrow('disk full');
    expect(log).toEqual(['a:persist-issued', 'b:persist-issued']);
    expect(failures).toHaveLength(1);
    saves[1]!.resolve();
    await queue.idle();
    expect(log.at(-1)).toBe('b:send ack2');
  });

  it('runs a step scheduled from inside a send after the current one, in order', async () => {
    const { host, log } = recordingHost();
    const queue = new EffectQueue<TestEffect, string>({
      ...host,
      send(step, message) {
        host.send(step, message);
        if (message === '1') queue.schedule('c', [{ type: 'send', message: 'from a' }]);
      },
    });
    queue.schedule('a', [{ type: 'send', message: '1' }, { type: 'send', message: '2' }]);
    queue.schedule('b', [{ type: 'send', message: '3' }]);
    await queue.idle();
    await queue.idle();
    expect(log).toEqual(['a:send 1', 'a:send 2', 'b:send 3', 'c:send from a']);
  });

  it('is idle and schedules nothing for a step without effects', () => {
    const { host, log } = recordingHost();
    const queue = new EffectQueue(host);
    queue.schedule('a', []);
    expect(queue.busy).toBe(false);
    expect(queue.idle()).toBe(SETTLED);
    expect(log).toEqual([]);
  });
});

/**
 * Both forms of the runner (a promise chain per tail, a queue per channel) follow the same rules:
 * these tests run on each. `settled` says the runner holds nothing more.
 */
const runners = [
  [
    'scheduleEffects',
    (host: EffectHost<TestEffect, string>) => {
      const tail: EffectTail = { effects: SETTLED };
      return { run: (ctx: string, effects: TestEffect[]) => scheduleEffects(tail, host, ctx, effects), settled: () => tail.effects === SETTLED };
    },
  ],
  [
    'EffectQueue',
    (host: EffectHost<TestEffect, string>) => {
      const queue = new EffectQueue(host);
      return { run: (ctx: string, effects: TestEffect[]) => queue.scheduleAndWait(ctx, effects), settled: () => !queue.busy };
    },
  ],
] as const;

describe.each(runners)('%s (the rules both forms share)', (_name, runner) => {
  it('issues a persist that follows a held effect only after that effect ran', async () => {
    const { host, log, saves } = recordingHost();
    const r = runner(host);
    const busy = r.run('a', [{ type: 'persist' }]);
    const opening = r.run('b', [{ type: 'broadcast', txid: 't' }, { type: 'persist' }, { type: 'send', message: 'opened' }]);
    await flush();
    expect(log).toEqual(['a:persist-issued']); // b's persist waits for b's broadcast, which waits for a
    saves[0]!.resolve();
    await busy;
    await flush();
    expect(log).toEqual(['a:persist-issued', 'b:broadcast t', 'b:persist-issued']);
    saves[1]!.resolve();
    await opening;
    expect(log.at(-1)).toBe('b:send opened');
  });

  it('stops a failed step at its failure, reports it once, and still runs later steps', async () => {
    const { host, log, failures } = recordingHost();
    const r = runner(host);
    const failing = r.run('a', [{ type: 'note', text: 'boom' }, { type: 'send', message: 'never' }]);
    const later = r.run('b', [{ type: 'send', message: 'after' }]);
    await expect(failing).rejects.toThrow('boom');
    await later;
    expect(log).toEqual(['a:note boom', 'b:send after']);
    expect(failures.map((f) => f.step)).toEqual(['a']);
    expect(r.settled()).toBe(true);
  });
});
