/**
 * CPU profiles of a measured phase only (not its setup): V8's sampling profiler through
 * node:inspector — the same profiler and the same `.cpuprofile` format as `node --cpu-prof`
 * (open it in Chrome DevTools or speedscope), but started and stopped around the phase, so
 * signing payments beforehand or opening channels does not drown the hot path.
 *
 * {@link summarize} turns a profile into self time per function and per area of the code.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Session } from 'node:inspector/promises';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}
export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

/**
 * Ends an inspector session: posts `stopMethod`, disconnects, writes the `profile` it returned to
 * `file` (creating its directory) and returns that profile.
 */
async function stopAndWrite<T>(session: Session | null, stopMethod: 'Profiler.stop' | 'HeapProfiler.stopSampling', file: string): Promise<T> {
  if (!session) throw new Error(`${stopMethod}: not started`);
  let profile: T;
  try {
    ({ profile } = (await session.post(stopMethod)) as unknown as { profile: T });
  } finally {
    session.disconnect();
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(profile));
  return profile;
}

/** Opens an inspector session on this thread with `domain` enabled. */
async function openSession(domain: 'Profiler' | 'HeapProfiler'): Promise<Session> {
  const session = new Session();
  session.connect();
  await session.post(`${domain}.enable`);
  return session;
}

export class ScopedProfiler {
  private session: Session | null = null;

  /** Starts sampling every `intervalUs` µs. */
  async start(intervalUs = 200): Promise<void> {
    const session = await openSession('Profiler');
    await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
    await session.post('Profiler.start');
    this.session = session;
  }

  /** Stops, writes `file` (a .cpuprofile) and returns the profile. */
  stop(file: string): Promise<CpuProfile> {
    const session = this.session;
    this.session = null;
    return stopAndWrite<CpuProfile>(session, 'Profiler.stop', file);
  }
}

export interface ProfileEntry {
  readonly name: string;
  readonly selfMs: number;
  /** Share of the busy (non-idle) time. */
  readonly selfPct: number;
}

export interface ProfileSummary {
  readonly file: string;
  readonly wallMs: number;
  readonly busyMs: number;
  /** Top functions by self time. */
  readonly functions: readonly ProfileEntry[];
  /** Self time grouped by where the code lives (see {@link areaOf}). */
  readonly areas: readonly ProfileEntry[];
  /** Inclusive time of chosen functions (each counted once per stack). */
  readonly inclusive: readonly ProfileEntry[];
}

/**
 * Native frames have no URL, and V8 names N-API callbacks after their addon's class or a
 * sibling function (libsecp256k1's verify shows up as `Secp256k1Addon`, `publicKeyCreate` or
 * `publicKeyCombine`),
 * so they are grouped by what they can be: during payments the only secp256k1 call is the
 * verification, and better-sqlite3's `run` includes COMMIT, whose fsync the profiler samples as
 * time in `run` (the thread is blocked in it).
 */
const NATIVE_AREAS: readonly [RegExp, string][] = [
  [/^(Secp256k1Addon|publicKey\w*|privateKey\w*|ecdsa\w*|signature\w*|ecdh|contextRandomize)$/, 'native: libsecp256k1 addon'],
  [/^(run|exec|get|all|iterate|transaction)$/, 'native: better-sqlite3 (statements, COMMIT + fsync)'],
  [/^(writev|writeUtf8String|writeBuffer|writeLatin1String|shutdown)$/, 'native: socket writes'],
  [/^(stringify|parse)$/, 'native: JSON'],
];

/** Which part of the system a frame belongs to. */
function areaOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(program)' || functionName === '(idle)' || functionName === '(root)') return functionName;
    for (const [re, area] of NATIVE_AREAS) if (re.test(functionName)) return area;
    return 'native/builtin (Promise, typed arrays, strings, …)';
  }
  const nm = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (nm) return `npm:${nm[1]}`;
  const src = url.match(/\/(src\/[^?]+)/);
  if (src) return src[1]!.replace(/\.ts$/, '');
  const bench = url.match(/\/(bench\/[^?]+)/);
  if (bench) return bench[1]!;
  if (url.startsWith('node:')) return url.split('/')[0]!.replace(/^node:internal.*$/, 'node internals');
  return url;
}

function label(frame: CallFrame): string {
  const where = areaOf(frame);
  const fn = frame.functionName || '(anonymous)';
  if (frame.url) return `${fn} (${where}:${frame.lineNumber + 1})`;
  return where.startsWith('native: ') ? `${fn} [${where}]` : fn;
}

/**
 * @param inclusiveOf function names whose inclusive time to report (e.g. `decodeMessage`).
 */
export function summarize(profile: CpuProfile, file: string, top = 15, inclusiveOf: readonly string[] = []): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // timeDeltas[i] is the time before sample i; attribute the interval after a sample to it.
  for (let i = 0; i < samples.length; i++) {
    const dt = deltas[i + 1] ?? 0;
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + Math.max(0, dt));
  }
  const wallMs = (profile.endTime - profile.startTime) / 1000;
  let idleUs = 0;
  const fnSelf = new Map<string, number>();
  const areaSelf = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    if (node.callFrame.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const name = label(node.callFrame);
    fnSelf.set(name, (fnSelf.get(name) ?? 0) + us);
    const area = areaOf(node.callFrame);
    areaSelf.set(area, (areaSelf.get(area) ?? 0) + us);
  }
  let totalUs = 0;
  for (const us of selfUs.values()) totalUs += us;
  const busyUs = Math.max(1, totalUs - idleUs);
  const entries = (m: Map<string, number>, n: number): ProfileEntry[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, selfMs: Math.round(us / 100) / 10, selfPct: Math.round((1000 * us) / busyUs) / 10 }));

  // Inclusive time: a node's subtree, counted only when no ancestor has the same name.
  const inclusive = new Map<string, number>();
  if (inclusiveOf.length > 0) {
    const wanted = new Set(inclusiveOf);
    const subtree = new Map<number, number>();
    const total = (id: number): number => {
      const cached = subtree.get(id);
      if (cached !== undefined) return cached;
      const node = byId.get(id)!;
      let t = selfUs.get(id) ?? 0;
      for (const c of node.children ?? []) t += total(c);
      subtree.set(id, t);
      return t;
    };
    const root = profile.nodes[0];
    const walk = (id: number, active: ReadonlySet<string>): void => {
      const node = byId.get(id)!;
      const name = node.callFrame.functionName;
      let next = active;
      if (wanted.has(name) && !active.has(name)) {
        inclusive.set(name, (inclusive.get(name) ?? 0) + total(id));
        next = new Set(active).add(name);
      }
      for (const c of node.children ?? []) walk(c, next);
    };
    if (root) walk(root.id, new Set());
  }
  return {
    file,
    wallMs: Math.round(wallMs),
    busyMs: Math.round(busyUs / 1000),
    functions: entries(fnSelf, top),
    areas: entries(areaSelf, 12),
    inclusive: inclusiveOf.map((name) => {
      const us = inclusive.get(name) ?? 0;
      return { name, selfMs: Math.round(us / 100) / 10, selfPct: Math.round((1000 * us) / busyUs) / 10 };
    }),
  };
}

/** Functions whose inclusive share says where a payment's time goes. */
export const PAYEE_INCLUSIVE = [
  // The connection's handOver decodes a frame and hands it to the service's handle (receive is
  // the in-process links' way in).
  'handOver',
  'handle',
  'receive',
  'decodeMessage',
  'payeeStep',
  'verifyPayment',
  'paymentDigest',
  'ecdsaVerify',
  'savePayeeChannel',
  'encodeState',
  'flush',
  'encodeMessage',
  'onFrame',
  'frameIn',
  'send',
] as const;

/**
 * V8's sampling heap profiler over a phase, counting objects the GC already collected too:
 * where the phase *allocates* (what makes scavenges frequent), not only what it keeps.
 */
export class AllocationSampler {
  private session: Session | null = null;

  async start(intervalBytes = 4096): Promise<void> {
    const session = await openSession('HeapProfiler');
    await session.post('HeapProfiler.startSampling', { samplingInterval: intervalBytes, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never);
    this.session = session;
  }

  /** Stops and writes `file` (a .heapprofile: open it in Chrome DevTools). */
  async stop(file: string): Promise<void> {
    const session = this.session;
    this.session = null;
    await stopAndWrite<unknown>(session, 'HeapProfiler.stopSampling', file);
  }
}
