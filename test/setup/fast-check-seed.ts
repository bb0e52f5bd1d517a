/**
 * One seed for every property test of a run, chosen here, printed when a property fails, and
 * settable from outside: `PAYCHAN_FC_SEED=1234 npx vitest run test/unit/x.test.ts` replays a CI
 * failure. fast-check already prints `seed` and `path` in its failure message; fixing the seed
 * per run (instead of per assertion) makes a failure's seed the one to pass back here, whatever
 * the order the properties ran in.
 */
import fc from 'fast-check';
import { afterEach } from 'vitest';

const fromEnv = process.env.PAYCHAN_FC_SEED;
const seed = fromEnv !== undefined && fromEnv !== '' ? Number(fromEnv) : (Date.now() ^ (Math.random() * 0x100000000)) | 0;
if (!Number.isSafeInteger(seed)) throw new TypeError(`PAYCHAN_FC_SEED must be an integer, got ${JSON.stringify(fromEnv)}`);
fc.configureGlobal({ ...fc.readConfigureGlobal(), seed });

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') {
    // Property failures carry their own seed; this line names the run's seed for every failure.
    console.error(`[fast-check] this run's seed is ${seed}; if the test ran a property, replay it with PAYCHAN_FC_SEED=${seed} npx vitest run ${ctx.task.file?.name ?? ''} -t ${JSON.stringify(ctx.task.name)}`);
  }
});
