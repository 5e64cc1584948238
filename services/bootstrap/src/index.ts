/**
 * @m2msec/bootstrap: the bootstrap service (the oneM2M MEF). GBA: the BSF (3GPP TS 33.220) with
 * Ub over HTTP Digest AKA, Zn and subscriber provisioning over gRPC, oneM2M GBA RSPF credentials.
 * PKI (`pki` section): tenant CAs in the KMS, EST, CRL/OCSP. TLS RSPF (`rspf` section): the MEF
 * handshake over TLS-PSK / mutual TLS and fetchCredentials.
 * `startBootstrap(config, log)` starts a replica in-process (used by `main.ts`, tests and
 * benches); `bootstrapConfigSchema` is its configuration.
 *
 * @example
 * ```ts
 * import { bootstrapConfigSchema, startBootstrap } from '@m2msec/bootstrap'
 * const app = await startBootstrap(bootstrapConfigSchema.parse({ grpc: { port: 0 }, ub: { port: 0 } }), log)
 * console.log(app.address.address, app.ubUrl)
 * await app.shutdown()
 * ```
 */
export { startBootstrap, gbaSettingsOf, type BootstrapApp } from './app.ts'
export { bootstrapConfigSchema, nafRuleSchema, type BootstrapConfig, type NafRule } from './config.ts'
export { createPkiComponent, pkiConfigSchema, type PkiComponent, type PkiConfig } from './pki/index.ts'
export { createRspfComponent, rspfConfigSchema, type RspfComponent, type RspfConfig } from './rspf/index.ts'
