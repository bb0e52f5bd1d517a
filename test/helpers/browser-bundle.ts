/**
 * Bundles a browser entry with esbuild (platform browser, ESM, minified) the way a page's build
 * would, and refuses any Node module on the way: a Node builtin (`node:fs`, `fs`, …) or a
 * Node-only package (native addons, SQLite, `ws`) anywhere in the graph is a build error naming
 * the importer. Used by the bundle test, the browser tests' pages and the bench
 * (`payerBundleGzipBytes`).
 */
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type Plugin } from 'esbuild';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Packages that only work in Node (native code, files, sockets): never in a page's graph. */
const NODE_ONLY_PACKAGES = ['ws', 'better-sqlite3', 'secp256k1', 'pg', 'express', 'hono', '@hono/node-server', 'bindings', 'node-gyp-build'];
const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

export interface BrowserBundle {
  readonly code: string;
  readonly bytes: number;
  readonly gzipBytes: number;
  /** Source files of the bundle, relative to the checkout (`src/payer.ts`, `node_modules/…`). */
  readonly inputs: string[];
}

/** Fails the build on a Node builtin or a Node-only package, saying who imported it. */
const noNodeModules: Plugin = {
  name: 'no-node-modules',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      const name = args.path;
      const pkg = name.startsWith('@') ? name.split('/').slice(0, 2).join('/') : name.split('/')[0]!;
      if (BUILTINS.has(name) || BUILTINS.has(pkg) || NODE_ONLY_PACKAGES.includes(pkg)) {
        return { errors: [{ text: `Node module "${name}" imported by ${path.relative(ROOT, args.importer)}: not allowed in a browser bundle` }] };
      }
      return undefined;
    });
  },
};

/**
 * @param entry the entry file, relative to the checkout (default `src/payer.ts`: `paychan/payer`).
 * @throws Error (esbuild's) listing every Node module met, with its importer.
 */
export async function bundleForBrowser(entry = 'src/payer.ts', options: { minify?: boolean } = {}): Promise<BrowserBundle> {
  const result = await build({
    entryPoints: [path.join(ROOT, entry)],
    absWorkingDir: ROOT,
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify: options.minify ?? true,
    write: false,
    metafile: true,
    logLevel: 'silent',
    plugins: [noNodeModules],
  });
  const code = result.outputFiles[0]!.text;
  const bytes = Buffer.byteLength(code);
  return { code, bytes, gzipBytes: gzipSync(code, { level: 9 }).length, inputs: Object.keys(result.metafile.inputs) };
}
