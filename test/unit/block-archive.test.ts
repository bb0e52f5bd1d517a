/**
 * The block archive's file: a line torn by a kill, or a line that is not the next block of the
 * chain before it, cuts the archive there (and the file with it), so nothing wrong is replayed.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BlockArchive } from '../../src/chain/regtest/block-archive.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-archive-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** `count` blocks (an 80-byte header linked to its parent, and one byte of body) as archive lines. */
function chain(count: number, parent = '00'.repeat(32)): string[] {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const header = Buffer.concat([Buffer.from('00000020', 'hex'), Buffer.from(parent, 'hex').reverse(), Buffer.alloc(32, i + 1), Buffer.alloc(12, 7)]);
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
