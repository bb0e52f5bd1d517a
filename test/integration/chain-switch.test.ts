/**
 * The payee on a chain that goes backwards (a node that restarted without its blocks, or a deep
 * reorg; here invalidateblock on a real btcd): a funding it had stopped watching because it was
 * deep is checked again, and a channel whose funding is gone takes no more payments.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RpcClient } from '../../src/chain/rpc-client.js';
import { PayeeService } from '../../src/payee/payee-service.js';
import { PayerClient, PeerError } from '../../src/payer/payer-client.js';
import { loopbackPair } from '../../src/transport/link.js';
import { waitUntil } from '../helpers/local-pair.js';
import { startFundedEnv, type RegtestEnv } from '../helpers/regtest-env.js';
import { regtestPayee, regtestPayer } from '../helpers/regtest-peers.js';

let env: RegtestEnv;
let rpc: RpcClient;

beforeAll(async () => {
  env = await startFundedEnv();
  rpc = new RpcClient({ url: env.node.rpcUrl, user: env.node.rpcUser, pass: env.node.rpcPass });
});
afterAll(async () => {
  rpc?.close();
  await env?.stop();
});

/** The payee's view of the new tip (the service is not started: the test drives it). */
async function tick(service: PayeeService): Promise<void> {
  await service.onTip(await env.backend.getTip());
}

describe('a chain that goes backwards', () => {
  it('suspends a channel whose deep funding the node no longer has on its best chain', async () => {
    const service = await regtestPayee(env);
    const ends: { payer?: PayerClient } = {};
    const { a } = loopbackPair(
      (text) => ends.payer?.receive(text),
      (text, reply) => void service.receive(text, reply),
    );
    const payer = (ends.payer = regtestPayer(env, a));
    const opening = payer.open({ variant: 'spilman-v2', capacitySat: 200_000n, expiryBlocks: 100 });
    await Promise.race([payer.waitFor((s) => s.type === 'AwaitingOpen'), opening]);
    await waitUntil(async () => (await env.backend.getTransaction(payer.channel.funding.txid)) !== null, 'funding broadcast');
    const [fundingBlock] = await env.node.mine(1);
    await service.checkWatches();
    await opening;
    await payer.pay(1_000n);
    await env.mine(7);
    await tick(service); // the funding is deep now: no longer checked every block
    expect(service.channel(payer.channel.id)?.type).toBe('Open');

    // The node loses the funding's block and the seven after it.
    await rpc.call('invalidateblock', [fundingBlock]);
    expect((await env.backend.getTransaction(payer.channel.funding.txid))?.confirmations ?? 0).toBe(0);
    await tick(service);
    expect(service.channel(payer.channel.id)?.type).toBe('Suspended');
    await expect(payer.pay(1_000n)).rejects.toBeInstanceOf(PeerError); // CHANNEL_NOT_OPEN
    expect(service.channel(payer.channel.id)).toMatchObject({ paidSat: 1_000n });

    await env.mine(1); // the funding, back in the mempool, confirms again
    await tick(service);
    expect(service.channel(payer.channel.id)).toMatchObject({ type: 'Open', paidSat: 1_000n });
  });
});
