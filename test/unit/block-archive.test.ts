/**
 * The block archive's file: a line torn by a kill, or a line that is not the next block of the
 * chain before it, cuts the archive there (and the file with it), so nothing wrong is replayed.
 * Every rewrite goes through a temp file renamed over the archive (a crash in between leaves the
 * archive whole), and what is written is fsynced.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { BlockArchive } from '../../src/chain/regtest/block-archive.js';
import type { RpcClient } from '../../src/chain/rpc-client.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-archive-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

/**
 * `count` blocks (an 80-byte header linked to its parent, and one byte of body) as archive lines;
 * another `salt` gives other blocks on the same parent (a fork).
 */
function chain(count: number, parent = '00'.repeat(32), salt = 1): string[] {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const header = Buffer.concat([Buffer.from('00000020', 'hex'), Buffer.from(parent, 'hex').reverse(), Buffer.alloc(32, i + salt), Buffer.alloc(12, 7)]);
    const hash = Buffer.from(createHash('sha256').update(createHash('sha256').update(header).digest()).digest()).reverse().toString('hex');
    lines.push(`${hash} ${header.toString('hex')}00`);
    parent = hash;
  }
  return lines;
}

function archiveOf(name: string, text: string): { archive: BlockArchive; file: string } {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return { archive: BlockArchive.open(file), file };
}

describe('BlockArchive.open', () => {
  it('reads a whole chain', () => {
    const lines = chain(3);
    const { archive, file } = archiveOf('whole', lines.map((l) => `${l}\n`).join(''));
    expect(archive.height).toBe(3);
    expect(archive.tipHash).toBe(lines[2]!.split(' ')[0]);
    expect(fs.readFileSync(file, 'utf8')).toBe(lines.map((l) => `${l}\n`).join(''));
  });

  it('drops a last line torn by a kill, in memory and in the file', () => {
    const lines = chain(3);
    const whole = lines.slice(0, 2).map((l) => `${l}\n`).join('');
    const { archive, file } = archiveOf('torn', whole + lines[2]!.slice(0, 100));
    expect(archive.height).toBe(2);
    expect(fs.readFileSync(file, 'utf8')).toBe(whole);
  });

  it('cuts at a block whose parent is not the line before, or whose hash does not match', () => {
    const lines = chain(2);
    const stranger = chain(1, 'ab'.repeat(32))[0]!;
    expect(archiveOf('orphan', [lines[0], stranger, lines[1]].map((l) => `${l}\n`).join('')).archive.height).toBe(1);
    const forged = `${'cd'.repeat(32)} ${lines[1]!.split(' ')[1]}`;
    expect(archiveOf('forged', [lines[0], forged].map((l) => `${l}\n`).join('')).archive.height).toBe(1);
  });

  it('starts empty without a file', () => {
    expect(BlockArchive.open(path.join(dir, 'none')).height).toBe(0);
  });
});

/** A node whose best chain is `lines` (archive lines), answering what the archive asks. */
function nodeWith(lines: string[]): RpcClient {
  const byHash = new Map(lines.map((l) => [l.split(' ')[0]!, l.split(' ')[1]!]));
  const call = (method: string, params: unknown[] = []): Promise<unknown> => {
    if (method === 'getblockcount') return Promise.resolve(lines.length);
    if (method === 'getblockhash') return Promise.resolve(lines[(params[0] as number) - 1]!.split(' ')[0]);
    if (method === 'getblock') return Promise.resolve(byHash.get(params[0] as string));
    return Promise.reject(new Error(`unexpected ${method}`));
  };
  return { call } as unknown as RpcClient;
}

/** Makes the next rename throw, as a kill between writing the temp file and renaming it would stop. */
function crashBeforeRename(): void {
  vi.spyOn(fs, 'renameSync').mockImplementation(() => {
    throw new Error('killed before the rename');
  });
}

describe('BlockArchive crash safety', () => {
  it('cuts a torn line through a temp file: a crash before the rename leaves the archive as it was', () => {
    const lines = chain(3);
    const whole = lines.slice(0, 2).map((l) => `${l}\n`).join('');
    const file = path.join(dir, 'torn-crash');
    fs.writeFileSync(file, whole + lines[2]!.slice(0, 100));
    const before = fs.statSync(file).ino;
    crashBeforeRename();
    expect(() => BlockArchive.open(file)).toThrow('killed before the rename');
    expect(fs.readFileSync(file, 'utf8')).toBe(whole + lines[2]!.slice(0, 100));
    expect(fs.statSync(file).ino).toBe(before);
    vi.restoreAllMocks();
    // The next start repairs it.
    expect(BlockArchive.open(file).height).toBe(2);
    expect(fs.readFileSync(file, 'utf8')).toBe(whole);
  });

  it('drops reorged blocks through a temp file: a crash before the rename leaves the archive as it was', async () => {
    const lines = chain(3);
    const text = lines.map((l) => `${l}\n`).join('');
    const file = path.join(dir, 'reorg-crash');
    fs.writeFileSync(file, text);
    const archive = BlockArchive.open(file);
    // The node's chain forks after block 1.
    const other = [lines[0]!, ...chain(2, lines[0]!.split(' ')[0], 0x80)];
    crashBeforeRename();
    await expect(archive.follow(nodeWith(other))).rejects.toThrow('killed before the rename');
    expect(fs.readFileSync(file, 'utf8')).toBe(text);
    vi.restoreAllMocks();
    await archive.follow(nodeWith(other));
    expect(archive.tipHash).toBe(other[2]!.split(' ')[0]);
    expect(fs.readFileSync(file, 'utf8')).toBe(other.map((l) => `${l}\n`).join(''));
  });

  it('fsyncs each appended batch, and a rewrite fsyncs its temp file and the directory', async () => {
    const file = path.join(dir, 'synced');
    const archive = BlockArchive.open(file);
    const synced: string[] = [];
    const fsync = fs.fsyncSync;
    vi.spyOn(fs, 'fsyncSync').mockImplementation((fd) => {
      synced.push(fs.readlinkSync(`/proc/self/fd/${fd}`));
      fsync(fd);
    });
    const lines = chain(2);
    await archive.follow(nodeWith(lines));
    expect(archive.height).toBe(2);
    expect(synced).toEqual([fs.realpathSync(file)]);
    synced.length = 0;
    await archive.follow(nodeWith([lines[0]!, ...chain(1, lines[0]!.split(' ')[0], 0x80)]));
    // The cut (temp file, then the directory holding the rename), then the appended block.
    expect(synced).toEqual([`${fs.realpathSync(file)}.tmp`, fs.realpathSync(dir), fs.realpathSync(file)]);
  });
});
