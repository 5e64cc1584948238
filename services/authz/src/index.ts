/**
 * @m2msec/authz: the authorization service (oneM2M PDP). `startAuthz(config, log)` starts a
 * replica in-process (used by `main.ts`, tests and benchmarks); `authzConfigSchema` is its
 * configuration.
 *
 * @example
 * ```ts
 * import { authzConfigSchema, startAuthz } from '@m2msec/authz'
 * const app = await startAuthz(authzConfigSchema.parse({}), log)
 * ```
 */
export { startAuthz, type AuthzApp } from './app.ts'
export { authzConfigSchema, type AuthzConfig } from './config.ts'
