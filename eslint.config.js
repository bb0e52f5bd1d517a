// Lint: typescript-eslint's recommended rules plus the architecture's layers (docs/design.md,
// "Layers"): each folder of src/ may import only the folders below it, and the protocol core
// stays pure (no Node modules, no I/O, no clock).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * What each folder of src/ may import of the others (its own files, npm packages and Node's
 * modules aside). Everything else in src/ is forbidden to it. Listed bottom-up.
 */
export const LAYERS = {
  protocol: ['crypto'], // types only (the signing port): see the protocol block below
  crypto: ['protocol'],
  store: ['protocol'],
  chain: ['protocol'],
  driver: ['protocol'],
  wallet: ['protocol', 'chain', 'crypto'],
  transport: ['protocol', 'crypto', 'store', 'chain', 'driver', 'wallet'],
  payee: ['protocol', 'crypto', 'store', 'chain', 'driver', 'wallet', 'transport', 'payer', 'duplex'],
  payer: ['protocol', 'crypto', 'store', 'chain', 'driver', 'wallet', 'transport', 'payee', 'duplex'],
  duplex: ['protocol', 'crypto', 'store', 'chain', 'driver', 'wallet', 'transport', 'payee', 'payer'],
  // The payer in a page: the browser's link, store and funding on top of the payer client.
  web: ['protocol', 'crypto', 'store', 'chain', 'driver', 'wallet', 'transport', 'payer'],
  // Web payment standards on top of the payee's paywall and the payer's client.
  x402: ['protocol', 'crypto', 'store', 'chain', 'driver', 'wallet', 'transport', 'payee', 'payer', 'proxy'],
  // The reverse proxy: HTTP in front of an upstream, on the paywall's narrow interface.
  proxy: ['protocol', 'transport'],
  app: ['protocol', 'crypto', 'store', 'chain', 'driver', 'wallet', 'transport', 'payee', 'payer', 'duplex', 'x402', 'proxy', 'web'],
  demo: ['protocol', 'crypto', 'store', 'chain', 'driver', 'wallet', 'transport', 'payee', 'payer', 'duplex', 'x402', 'proxy', 'app', 'web'],
  cli: ['protocol', 'crypto', 'store', 'chain', 'driver', 'wallet', 'transport', 'payee', 'payer', 'duplex', 'x402', 'proxy', 'app', 'demo', 'web'],
};

const NODE_BUILTINS = ['fs', 'net', 'http', 'https', 'crypto', 'child_process', 'os', 'path', 'ws'];
const PURE = 'src/protocol is pure: no Node modules or I/O.';

/**
 * The files of `paychan/payer` (src/payer.ts) outside the pure protocol: they run in browsers, so
 * they import no Node module, no Node-only package, and use no Node global. The protocol's own
 * rule is stricter still. test/unit/payer-bundle.test.ts checks that every file the entry's
 * bundle pulls in is covered here (a new import must be added on purpose).
 */
export const BROWSER_SAFE = [
  'src/payer.ts',
  'src/crypto/secp256k1.ts',
  'src/crypto/noble.ts',
  'src/driver/**/*.ts',
  'src/store/store.ts',
  'src/store/memory-store.ts',
  'src/store/codec.ts',
  'src/store/checks.ts',
  'src/store/store-error.ts',
  'src/store/indexeddb-store.ts',
  'src/transport/link.ts',
  'src/transport/paywall.ts',
  'src/transport/browser-link.ts',
  'src/transport/reconnect.ts',
  'src/transport/offline-queue.ts',
  'src/payer/payer-client.ts',
  'src/payer/paying-fetch.ts',
  'src/payer/pay-run.ts',
  'src/wallet/psbt-funding.ts',
  'src/wallet/psbt-codec.ts',
  'src/web/**/*.ts',
];
const NODE_ONLY_PACKAGES = ['better-sqlite3', 'secp256k1', 'secp256k1/*', 'pg', 'tiny-secp256k1', 'express', 'hono', '@hono/*'];
const BROWSER = 'browser-safe (eslint.config.js BROWSER_SAFE: the graph of paychan/payer): no Node module, Node-only package or Node global.';

/** The patterns that forbid `layer` every folder it may not import, each message stating the rule. */
function layerPatterns(layer) {
  const allowed = LAYERS[layer];
  return Object.keys(LAYERS)
    .filter((other) => other !== layer && !allowed.includes(other))
    .map((other) => ({
      // Relative imports only (`../payee/…`, `../../payee/…` from a subfolder): no package is named so.
      regex: `^(?:\\.\\./)+${other}(?:/|$)`,
      message: `layer rule (docs/design.md "Layers"): src/${layer} must not import src/${other}; src/${layer} may import only ${allowed.map((a) => (layer === 'protocol' ? `the types of src/${a}` : `src/${a}`)).join(', ')}.`,
    }));
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.cache/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { console: 'readonly', process: 'readonly', URL: 'readonly', fetch: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  // Scripts served to browsers as they are (no build step): the page's globals, nothing of Node's.
  {
    files: ['src/app/dashboard/assets/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: { window: 'readonly', document: 'readonly', location: 'readonly', history: 'readonly', sessionStorage: 'readonly', fetch: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', process: 'off' },
    },
  },
  // One block per layer. The typescript-eslint form of the rule, for `allowTypeImports`.
  ...Object.keys(LAYERS)
    .filter((layer) => layer !== 'protocol')
    .map((layer) => ({
      files: [`src/${layer}/**/*.ts`],
      rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: layerPatterns(layer) }] },
    })),
  // Browser-safe files: one block per layer, since a block's rule options replace the layer
  // block's (flat config does not merge them), so both sets of patterns are repeated here.
  ...[...Object.keys(LAYERS).filter((layer) => layer !== 'protocol'), null].map((layer) => ({
    files: BROWSER_SAFE.filter((glob) => (layer === null ? !glob.slice(4).includes('/') : glob.startsWith(`src/${layer}/`))),
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [...NODE_BUILTINS, ...NODE_ONLY_PACKAGES.filter((p) => !p.includes('*'))].map((name) => ({ name, message: BROWSER })),
          patterns: [{ group: ['node:*', ...NODE_ONLY_PACKAGES.filter((p) => p.includes('*'))], message: BROWSER }, ...(layer === null ? [] : layerPatterns(layer))],
        },
      ],
      'no-restricted-globals': ['error', 'process', 'Buffer', 'require', '__dirname', '__filename', 'global'],
    },
  })).filter((block) => block.files.length > 0),
  {
    files: ['src/protocol/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: NODE_BUILTINS.map((name) => ({ name, message: PURE })),
          patterns: [
            { group: ['node:*'], message: PURE },
            ...layerPatterns('protocol'),
            // The Secp256k1 interface is the signing port's type; an implementation is an adapter.
            { regex: '^(?:\\.\\./)+crypto(?:/|$)', allowTypeImports: true, message: 'layer rule (docs/design.md "Layers"): src/protocol may import only the types of src/crypto (the signing port), never an implementation.' },
          ],
        },
      ],
      'no-restricted-globals': ['error', 'Date', 'setTimeout', 'setInterval', 'fetch', 'process', 'Buffer'],
    },
  },
);
