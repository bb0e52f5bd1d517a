// Lint: typescript-eslint's recommended type-aware rules plus the one architectural rule that
// matters most here: the protocol core stays pure (no Node modules, no I/O).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.cache/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { console: 'readonly', process: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    files: ['src/protocol/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: ['fs', 'net', 'http', 'https', 'crypto', 'child_process', 'os', 'path', 'ws'].map((name) => ({ name, message: 'src/protocol is pure: no Node modules or I/O.' })),
        patterns: [
          { group: ['node:*'], message: 'src/protocol is pure: no Node modules or I/O.' },
          { group: ['../chain/*', '../wallet/*', '../cli/*', '../store/*', '../transport/*', '../crypto/node*'], message: 'src/protocol must not depend on adapters.' },
        ],
      }],
      'no-restricted-globals': ['error', 'Date', 'setTimeout', 'setInterval', 'fetch', 'process', 'Buffer'],
    },
  },
);
