/**
 * @m2msec/sdk/e2e: oneM2M end-to-end security on the device, gateway and application side
 * (TS-0003 §8.4 ESPrim, §8.5 ESData) and end-to-end sealed credential provisioning
 * (SER-020/021). Protocol, headers and encodings: docs/e2e-protection.md.
 *
 * - algorithms.ts: the JOSE profile (allowed alg / enc lists), contentSecurity values
 * - esdata.ts: encrypt / sign / sign-then-encrypt and their open functions, compact and JSON
 * - esprim.ts: rand objects, sessionESPrimKey, originator and receiver with anti-replay
 * - provisioning.ts: sealCredential / openCredential
 * - maf.ts: MAF-distributed keys (authn RegisterMafKey / RetrieveMafKey) as ESPrim / ESData keys
 */
export * from './algorithms.ts'
export * from './esdata.ts'
export * from './esprim.ts'
export * from './provisioning.ts'
export * from './maf.ts'
