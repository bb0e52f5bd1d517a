/**
 * Two duplex peers on one regtest node, wired through the real wire codec in process: A on the
 * env's funded wallet, B on a wallet of its own funded from it. Each has a watcher; tests call
 * `check()` after mining rather than waiting for tip notifications.
 */
import { randomBytes } from 'node:crypto';
import type { BlockTip, ChainBackend } from '../../src/chain/backend.js';
import { DuplexPeer } from '../../src/duplex/duplex-peer.js';
import { duplexStatePort } from '../../src/duplex/duplex-store.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { DuplexWatcher } from '../../src/duplex/duplex-watcher.js';
import { duplexPolicy, type DuplexPolicy } from '../../src/protocol/duplex-update.js';
import { decodeMessage } from '../../src/protocol/messages.js';
import { loopbackPair } from '../../src/transport/link.js';
import { Wallet } from '../../src/wallet/wallet.js';
import type { RegtestEnv } from './regtest-env.js';

export interface DuplexPair {
  /** Replaced by {@link restartA}. */
  a: DuplexPeer;
  readonly b: DuplexPeer;
  readonly watchA: DuplexWatcher;
  readonly watchB: DuplexWatcher;
  readonly link: ReturnType<typeof loopbackPair>;
  /** Mines, syncs both wallets and runs both watchers. */
  mine(blocks: number): Promise<void>;
  mineTo(height: number): Promise<void>;
  check(): Promise<void>;
  /** Drops every message from now on (a peer that vanished), or delivers again. */
  cut(cut: boolean): void;
  /** Drops the messages to A only (B's answers are lost on the way). */
  cutToA(cut: boolean): void;
  /** A "crashes" and restarts: a new peer on the same store (kept in a file for that). */
  restartA(): Promise<DuplexPeer>;
}

/**
 * The real backend, whose next `getTip` after {@link HeldTip.hold} waits until {@link
 * HeldTip.release}: a test holds one step's tip read open while another step runs.
 */
export interface HeldTip {
  readonly backend: ChainBackend;
  hold(): void;
  /** getTip calls waiting now. */
  readonly waiting: number;
  release(): void;
}

export function heldTip(real: ChainBackend): HeldTip {
  let armed = false;
  const held: (() => void)[] = [];
  const getTip = async (): Promise<BlockTip> => {
    if (armed) {
      armed = false;
      await new Promise<void>((resolve) => held.push(resolve));
    }
    return real.getTip();
  };
  const backend = new Proxy(real, {
    get(target, prop) {
      if (prop === 'getTip') return getTip;
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return {
    backend,
    hold: () => (armed = true),
    get waiting() {
      return held.length;
    },
    release: () => held.splice(0).forEach((resolve) => resolve()),
  };
}

export async function duplexPair(env: RegtestEnv, policy: Partial<DuplexPolicy> = {}, fundBSat = 2_000_000n, storeFileA = ':memory:', backendB: ChainBackend = env.backend): Promise<DuplexPair> {
  const walletB = await Wallet.open({ seed: randomBytes(32), network: 'regtest', backend: env.backend, secp: env.secp, birthdayHeight: (await env.backend.getTip()).height });
  if (fundBSat > 0n) {
    await env.wallet.send(walletB.receiveAddress(), fundBSat, 2);
    await env.mine(1);
    await walletB.sync();
  }
  const fullPolicy = duplexPolicy({ network: 'regtest', ...policy });
  const common = { network: 'regtest' as const, secp: env.secp, policy: fullPolicy, backend: env.backend, saveWallet: () => {}, fallbackFeeRateSatPerVb: 2, answerTimeoutMs: 10_000 };
  const makeA = () => DuplexPeer.open({ ...common, role: 'A', wallet: env.wallet, store: duplexStatePort(openSqliteStore(storeFileA)) });
  let a = await makeA();
  const b = await DuplexPeer.open({ ...common, role: 'B', backend: backendB, wallet: walletB, store: duplexStatePort(openSqliteStore(':memory:')) });
  let cut = false;
  let cutToA = false;
  const link = loopbackPair(
    (text, reply) => !cut && !cutToA && void a.receive(decodeMessage(text), reply),
    (text, reply) => !cut && void b.receive(decodeMessage(text), reply),
    new Uint8Array(randomBytes(32)), // B’s end is a server’s, as in `paychan payee serve`: A's resume signs it
  );
  link.greet();
  const watchA = new DuplexWatcher(a);
  const watchB = new DuplexWatcher(b);
  const check = async () => {
    await walletB.sync();
    await env.wallet.sync();
    await watchA.check();
    await watchB.check();
  };
  return {
    get a() {
      return a;
    },
    set a(peer) {
      a = peer;
    },
    b,
    watchA,
    watchB,
    link,
    async mine(blocks) {
      await env.mine(blocks);
      await check();
    },
    async mineTo(height) {
      await env.mineTo(height);
      await check();
    },
    check,
    cut: (value) => (cut = value),
    cutToA: (value) => (cutToA = value),
    async restartA() {
      a = await makeA();
      link.greet(); // the restarted A's connection gets its challenge first
      return a;
    },
  };
}
