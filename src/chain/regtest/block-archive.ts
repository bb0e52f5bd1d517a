/**
 * Keeps a regtest chain across node restarts by keeping its blocks ourselves.
 *
 * Why: btcd deletes its regtest database every time it starts ("Removing regression test
 * database"), so a kept datadir keeps nothing. The archive follows the node (every block, raw,
 * as `getblock hash 0` gives it) into one text file, and after a restart submits the blocks
 * again in order with `submitblock`. The same bytes give the same hashes, so wallets and
 * channels find their coins where they were. It must run before anything mines on the new
 * node: a block mined first would start another chain, which ours (older timestamps, same work
 * per block) could not replace.
 *
 * The file holds one line per block from height 1 (`<hash> <hex>`). Appending is cheap and
 * survives a kill of either process (a torn last line is dropped on open); each appended batch is
 * fsynced, so a block the archive reports kept survives a power loss too. Every rewrite (cutting
 * a torn line on open, dropping reorged blocks) goes through {@link rewriteFile}: a temp file,
 * fsynced, renamed over the archive, then the directory fsynced; so a kill at any point leaves
 * either the old file or the new one whole, never an emptied one. Each block's hash is checked
 * against its header and its parent against the line before, so a damaged file is cut at the
 * first bad line, never replayed wrong.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { RpcClient } from '../rpc-client.js';

/** Blocks fetched per round while following, so a stop is never kept waiting long. */
const FOLLOW_CHUNK = 500;

/** The block's hash (display order) from its raw hex, or null if it is not a block. */
function blockHash(hex: string): string | null {
  if (hex.length < 162 || !/^[0-9a-f]+$/.test(hex)) return null;
  const header = Buffer.from(hex.slice(0, 160), 'hex');
  const once = createHash('sha256').update(header).digest();
  return Buffer.from(createHash('sha256').update(once).digest()).reverse().toString('hex');
}

function parentHash(hex: string): string {
  return Buffer.from(hex.slice(8, 72), 'hex').reverse().toString('hex');
}

/** Writes all of `text` at `fd`'s position (a write may take only part of it). */
function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text, 'utf8');
  for (let done = 0; done < buf.length; ) done += fs.writeSync(fd, buf, done, buf.length - done);
}

/** Writes all of `text` to `file` opened with `flags` ('a': at its end) and fsyncs it before returning. */
function writeDurably(file: string, flags: 'a' | 'w', text: string): void {
  const fd = fs.openSync(file, flags, 0o600);
  try {
    writeAll(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function appendDurably(file: string, text: string): void {
  writeDurably(file, 'a', text);
}

/**
 * Replaces `file` by `text` so that a kill or power loss at any point leaves one of the two
 * whole: writing in place would empty the file first and lose the whole saved chain.
 */
function rewriteFile(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  writeDurably(tmp, 'w', text);
  fs.renameSync(tmp, file);
  // The rename itself lives in the directory: without this a power loss may undo it.
  if (process.platform === 'win32') return; // directories cannot be opened for fsync there
  const dirFd = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dirFd);
  } finally {
    fs.closeSync(dirFd);
  }
}

export class BlockArchive {
  /** hashes[i] is the block at height i + 1. */
  private readonly hashes: string[] = [];
  private following: Promise<void> = Promise.resolve();

  private constructor(private readonly file: string) {}

  /**
   * Opens (or creates) the archive in `file`; cuts it at the first line that is not the next
   * block of the chain before it (e.g. a line torn by a kill).
   * @throws Error if the file cannot be read or the cut cannot be written (the file is then as
   * it was).
   */
  static open(file: string): BlockArchive {
    const archive = new BlockArchive(file);
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const lines = text.split('\n');
    let good = 0;
    let goodChars = 0;
    for (const line of lines) {
      const [hash, hex] = line.split(' ');
      if (hash === undefined || hex === undefined || blockHash(hex) !== hash) break;
      if (good > 0 && parentHash(hex) !== archive.hashes[good - 1]) break;
      archive.hashes.push(hash);
      good++;
      goodChars += line.length + 1;
    }
    if (goodChars !== text.length) rewriteFile(file, text.slice(0, goodChars));
    return archive;
  }

  /** Height of the newest archived block (0: only genesis). */
  get height(): number {
    return this.hashes.length;
  }

  /** Hash of the newest archived block, or undefined if none. */
  get tipHash(): string | undefined {
    return this.hashes[this.hashes.length - 1];
  }

  /**
   * Submits the archived blocks the node lacks, in order, and checks that the node then has
   * our tip. Call on a node nothing has mined on yet.
   * @throws Error if the node refuses a block or ends on another tip than ours.
   */
  async replay(rpc: RpcClient, progress: (line: string) => void): Promise<void> {
    if (this.hashes.length === 0) return;
    const from = (await this.commonHeight(rpc)) + 1;
    const total = this.hashes.length;
    if (from > total) return;
    const text = fs.readFileSync(this.file, 'utf8');
    const lines = text.split('\n');
    progress(`restoring the saved chain: blocks ${from} to ${total}`);
    let lastReport = Date.now();
    for (let height = from; height <= total; height++) {
      const hex = lines[height - 1]!.split(' ')[1]!;
      const result = await rpc.call('submitblock', [hex]);
      // null: accepted; "duplicate": the node had it. Anything else is the node's reason.
      if (result !== null && result !== 'duplicate') {
        throw new Error(`the node refused saved block ${height} (${this.hashes[height - 1]}): ${String(result)}; to start a new chain instead, move ${this.file} away`);
      }
      if (Date.now() - lastReport >= 2000) {
        progress(`restoring the saved chain: ${height}/${total} blocks`);
        lastReport = Date.now();
      }
    }
    const best = await rpc.call('getbestblockhash');
    if (best !== this.tipHash) {
      throw new Error(`after restoring ${total} saved blocks the node's tip is ${String(best)}, not the saved ${this.tipHash}; to start a new chain instead, move ${this.file} away`);
    }
    progress(`restored the saved chain: height ${total}`);
  }

  /**
   * Brings the archive level with the node's best chain: drops blocks the node no longer has on
   * it (a reorg) and appends the new ones. Calls run one after the other.
   */
  follow(rpc: RpcClient): Promise<void> {
    const run = this.following.then(() => this.followOnce(rpc));
    this.following = run.catch(() => undefined);
    return run;
  }

  private async followOnce(rpc: RpcClient): Promise<void> {
    const common = await this.commonHeight(rpc);
    if (common < this.hashes.length) this.truncate(common);
    for (;;) {
      const tip = (await rpc.call('getblockcount')) as number;
      if (tip <= this.hashes.length) return;
      const lines: string[] = [];
      for (let height = this.hashes.length + 1; height <= Math.min(tip, this.hashes.length + FOLLOW_CHUNK); height++) {
        const hash = (await rpc.call('getblockhash', [height])) as string;
        const hex = (await rpc.call('getblock', [hash, 0])) as string;
        const parent = lines.length > 0 ? lines[lines.length - 1]!.split(' ')[0] : this.tipHash;
        // The chain moved under us (a reorg between calls): keep what is consistent, retry later.
        if (blockHash(hex) !== hash || (height > 1 && parentHash(hex) !== parent)) break;
        lines.push(`${hash} ${hex}`);
      }
      if (lines.length === 0) return;
      appendDurably(this.file, lines.map((l) => `${l}\n`).join(''));
      for (const line of lines) this.hashes.push(line.split(' ')[0]!);
    }
  }

  /** The highest height at which the node's best chain and the archive agree. */
  private async commonHeight(rpc: RpcClient): Promise<number> {
    const nodeHeight = (await rpc.call('getblockcount')) as number;
    let height = Math.min(nodeHeight, this.hashes.length);
    while (height > 0 && (await rpc.call('getblockhash', [height])) !== this.hashes[height - 1]) height--;
    return height;
  }

  private truncate(height: number): void {
    const lines = fs.readFileSync(this.file, 'utf8').split('\n').slice(0, height);
    rewriteFile(this.file, lines.map((l) => `${l}\n`).join(''));
    this.hashes.length = height;
  }
}
