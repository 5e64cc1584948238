/**
 * @m2msec/kms: the key-management service. Run it with `main.ts`; embed it (tests, benchmarks)
 * with `startKms(config, log)`.
 *
 * @example
 * ```ts
 * import { startKms, kmsConfigSchema } from '@m2msec/kms'
 * const app = await startKms(kmsConfigSchema.parse({ ... }), log)
 * ```
 */
export { startKms, type KmsApp } from './app.ts'
export { kmsConfigSchema, type KmsConfig } from './config.ts'
