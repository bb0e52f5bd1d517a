import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/store/memory-store.js';
import { openStore, STORE_SCHEMES } from '../../src/store/open-store.js';
import { PostgresStore } from '../../src/store/postgres-store.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-open-store-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('openStore: the table of store adapters', () => {
  it('opens a plain path and a sqlite: location with the SQLite adapter, at that file', async () => {
    for (const location of [path.join(dir, 'a.db'), `sqlite:${path.join(dir, 'b.db')}`]) {
      const store = openStore(location);
      expect(store).toBeInstanceOf(SqliteStore);
      await store.putMeta('k', 'v');
      await store.close();
    }
    expect(fs.existsSync(path.join(dir, 'a.db'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'b.db'))).toBe(true);
  });

  it('opens memory: with the memory adapter', async () => {
    const store = openStore('memory:');
    expect(store).toBeInstanceOf(MemoryStore);
    await store.close();
  });

  it('opens postgres:// and postgresql:// with the PostgreSQL adapter, connecting only when used', async () => {
    for (const location of ['postgres://paychan@127.0.0.1:1/none', 'postgresql://paychan@127.0.0.1:1/none']) {
      const store = openStore(location);
      expect(store).toBeInstanceOf(PostgresStore);
      // Nothing listens on port 1: the first call reports it, and close still works.
      await expect(store.getMeta('k')).rejects.toThrow(/ECONNREFUSED/);
      await store.close();
    }
    expect(STORE_SCHEMES).toEqual(expect.arrayContaining(['postgres:', 'postgresql:']));
  });

  it('refuses a scheme no adapter serves, naming the known ones, and opens nothing', () => {
    expect(() => openStore('mysql://localhost/paychan')).toThrow(new RegExp(`no store adapter for mysql: locations; known: ${STORE_SCHEMES.join(', ')}`));
    expect(() => openStore('')).toThrow(TypeError);
  });
});
