/**
 * @m2msec/authn: the authentication service. `startAuthn(config, log)` starts a replica
 * in-process (used by `main.ts` and tests); `authnConfigSchema` is its configuration. Other
 * services never import this package: they talk to authn over gRPC, fetch its keys from the
 * JWKS endpoint and embed the revocation set from `@m2msec/bus`.
 *
 * @example
 * ```ts
 * import { authnConfigSchema, startAuthn } from '@m2msec/authn'
 * const app = await startAuthn(authnConfigSchema.parse({ grpc: { port: 0 }, http: { port: 0 } }), log)
 * console.log(app.address.address, `${app.jwksUrl}/.well-known/jwks.json`)
 * await app.shutdown()
 * ```
 */
export { startAuthn, type AuthnApp } from './app.ts'
export { authnConfigSchema, type AuthnConfig } from './config.ts'
