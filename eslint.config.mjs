// Lint rules: typescript-eslint's recommended type-aware rules plus the layer boundaries of
// STYLE.md §6 (domain code stays pure; services talk to each other only over gRPC/NATS).
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['**/node_modules/**', 'libs/proto/src/gen/**', '.data/**', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's test()/describe() return promises the runner itself awaits.
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['@m2msec/*/src/*'], message: 'import a package by its name, not its files' }] },
      ],
    },
  },
  {
    // Domain code is pure: no transports, no I/O, no runtime wiring.
    files: [
      'services/*/src/domain/**/*.ts',
      'libs/acp/src/**/*.ts',
      'libs/limits/src/**/*.ts',
      'libs/crypto/src/**/*.ts',
      'libs/groupkeys/src/**/*.ts',
      'libs/gba/src/**/*.ts',
      'libs/pki/src/**/*.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['node:fs', 'node:fs/promises', 'node:net', 'node:http', 'node:child_process'].map((name) => ({
            name,
            message: 'domain code does no I/O: put it behind a port',
          })),
          patterns: [
            {
              group: ['@grpc/*', '@nats-io/*', '@m2msec/runtime', '@m2msec/bus', '@m2msec/proto', '@m2msec/proto/*'],
              message: 'domain code never imports transports',
            },
            { group: ['**/grpc/*', '**/store/*', '**/events/*'], message: 'domain code does not import adapters' },
          ],
        },
      ],
    },
  },
  {
    files: ['**/test/**/*.ts', 'bench/**/*.ts', 'examples/**/*.ts', 'scripts/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off', '@typescript-eslint/no-non-null-assertion': 'off' },
  },
)
