/** Where the btcd build is cached: a user cache folder, never the package's own (a reinstall keeps it). */
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { paychanCacheDir } from '../../src/chain/regtest/btcd-build.js';

describe('paychanCacheDir', () => {
  it('is $PAYCHAN_CACHE_DIR when set, resolved', () => {
    expect(paychanCacheDir({ PAYCHAN_CACHE_DIR: 'rel/cache', XDG_CACHE_HOME: '/xdg' })).toBe(path.resolve('rel/cache'));
  });
  it('else $XDG_CACHE_HOME/paychan', () => {
    expect(paychanCacheDir({ XDG_CACHE_HOME: '/xdg' })).toBe('/xdg/paychan');
  });
  it('else ~/.cache/paychan (empty variables count as unset)', () => {
    expect(paychanCacheDir({ PAYCHAN_CACHE_DIR: '', XDG_CACHE_HOME: '' })).toBe(path.join(os.homedir(), '.cache', 'paychan'));
  });
});
