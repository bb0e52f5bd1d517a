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
  // Web payment standards on top of the payee's paywall and the payer's client.
  x402: ['protocol', 'crypto', 'store', 'chain', 'driver', 'wallet', 'transport', 'payee', 'payer', 'proxy'],
  // The reverse proxy: HTTP in front of an upstream, on the paywall's narrow interface.
  proxy: ['protocol', 'transport'],
  app: ['protocol', 'crypto', 'store', 'chain', 'driver', 'wallet', 'transport', 'payee', 'payer', 'duplex', 'x402', 'proxy'],
  demo: ['protocol', 'crypto', 'store', 'chain', 'driver', 'wallet', 'transport', 'payee', 'payer', 'duplex', 'x402', 'proxy', 'app'],
  cli: ['protocol', 'crypto', 'store', 'chain', 'driver', 'wallet', 'transport', 'payee', 'payer', 'duplex', 'x402', 'proxy', 'app', 'demo'],
};

const NODE_BUILTINS = ['fs', 'net', 'http', 'https', 'crypto', 'child_process', 'os', 'path', 'ws'];
const PURE = 'src/protocol is pure: no Node modules or I/O.';

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
