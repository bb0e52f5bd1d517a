/**
 * A command that talks to the local regtest node (no --rpc-url) follows it when it restarts
 * elsewhere: when the node cannot be reached, node.json is read again and the call retried there.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connectNode, localNodeInfoPath, type LocalNodeInfo } from '../../src/app/node-connection.js';
import { startBtcdRegtest } from '../../src/chain/regtest/btcd-node.js';
import type { RegtestNode } from '../../src/chain/regtest/node.js';
import { WalletKeys } from '../../src/wallet/keys.js';

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-relocate-'));
const nodes: RegtestNode[] = [];
afterAll(async () => {
  for (const node of nodes) await node.stop();
  fs.rmSync(home, { recursive: true, force: true });
});

function writeNodeInfo(node: RegtestNode): void {
  const info: LocalNodeInfo = { rpcUrl: node.rpcUrl, rpcUser: node.rpcUser, rpcPass: node.rpcPass, pid: node.pid, supervisorPid: process.pid, miningAddress: node.miningAddress, datadir: node.datadir };
  fs.mkdirSync(path.dirname(localNodeInfoPath()), { recursive: true });
  fs.writeFileSync(localNodeInfoPath(), JSON.stringify(info));
}

describe('the local node moves', () => {
  it('is found again at the port and password node.json names now', async () => {
    process.env.PAYCHAN_HOME = home;
    const miningAddress = () => WalletKeys.fromSeed(randomBytes(32), 'regtest').address('receive', 0).address;
    const first = await startBtcdRegtest({ miningAddress: miningAddress() });
    nodes.push(first);
    writeNodeInfo(first);
    const backend = await connectNode({}, 'regtest');
    try {
      await first.mine(1);
      const firstTip = await backend.getTip();
      await first.stop();
      const second = await startBtcdRegtest({ miningAddress: miningAddress() });
      nodes.push(second);
      const [hash] = await second.mine(2);
      writeNodeInfo(second);
      expect(second.rpcUrl).not.toBe(first.rpcUrl);
      const tip = await backend.getTip();
      expect(tip).not.toEqual(firstTip);
      expect(tip.height).toBe(2);
      expect(await backend.getBlock(1)).toMatchObject({ hash });
    } finally {
      await backend.close();
    }
  });
});
