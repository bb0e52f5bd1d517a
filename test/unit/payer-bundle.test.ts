/**
 * `paychan/payer` is browser-safe: esbuild bundles src/payer.ts for the browser with no Node
 * module anywhere in its graph (a Node import fails the build, naming the importer), every one of
 * our files in that graph is under ESLint's browser-safe rule (so the next Node import is caught
 * at lint time, where it is written), and the bundle fits a page (≤ 250,000 bytes gzipped; the
 * secp256k1 is pure JS, so there is no WASM to add).
 */
import path from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { bundleForBrowser, ROOT } from '../helpers/browser-bundle.js';

const PAYER_BUNDLE_BUDGET_GZIP_BYTES = 250_000;

describe('the paychan/payer bundle', () => {
  it('builds for the browser with no Node module, within the size budget', async () => {
    const bundle = await bundleForBrowser('src/payer.ts');
    expect(bundle.inputs).toContain('src/payer/payer-client.ts');
    expect(bundle.inputs.some((f) => f.includes('tiny-secp256k1') || f.endsWith('.wasm'))).toBe(false);
    expect(bundle.gzipBytes).toBeLessThanOrEqual(PAYER_BUNDLE_BUDGET_GZIP_BYTES);
  });

  it('the payee\'s demo page script (src/web/demo-page.ts) bundles for the browser too', async () => {
    const bundle = await bundleForBrowser('src/web/demo-page.ts');
    expect(bundle.inputs).toContain('src/web/browser-payer.ts');
    expect(bundle.gzipBytes).toBeLessThanOrEqual(PAYER_BUNDLE_BUDGET_GZIP_BYTES);
  });

  it('fails on a Node module anywhere in the graph, naming the importer', async () => {
    // The Node entry (`paychan`) pulls in SQLite, ws and node:*: the same bundler must refuse it.
    await expect(bundleForBrowser('src/index.ts')).rejects.toThrow(/Node module "(?:node:[a-z_]+|ws|better-sqlite3|secp256k1[^"]*)" imported by src\//);
  });

  it('every source file in it is under the browser-safe lint rule', async () => {
    const bundle = await bundleForBrowser('src/payer.ts');
    const eslint = new ESLint({ cwd: ROOT });
    const ours = bundle.inputs.filter((f) => f.startsWith('src/') && !f.startsWith('src/protocol/'));
    expect(ours.length).toBeGreaterThan(5);
    const uncovered: string[] = [];
    for (const file of ours) {
      const config = (await eslint.calculateConfigForFile(path.join(ROOT, file))) as { rules?: Record<string, unknown> };
      const globals = JSON.stringify(config.rules?.['no-restricted-globals'] ?? []);
      if (!globals.includes('"Buffer"') || !globals.includes('"process"')) uncovered.push(file);
    }
    expect(uncovered, 'add these to BROWSER_SAFE in eslint.config.js (and keep them free of Node modules)').toEqual([]);
    // The protocol files are covered by its stricter purity rule.
    for (const file of bundle.inputs.filter((f) => f.startsWith('src/protocol/')).slice(0, 3)) {
      const config = (await eslint.calculateConfigForFile(path.join(ROOT, file))) as { rules?: Record<string, unknown> };
      expect(JSON.stringify(config.rules?.['no-restricted-globals'])).toContain('"Buffer"');
    }
  });
});
