/**
 * Authn configuration: defaults < YAML/JSON file (`--config`, `M2MSEC_AUTHN_CONFIG_FILE`) <
 * environment (`M2MSEC_AUTHN_<SECTION>__<FIELD>`, e.g. `M2MSEC_AUTHN_GRPC__PORT=7003`).
 * Secrets (tokens, private keys) are only given as file paths.
 * `node --import tsx services/authn/src/main.ts --help` lists every setting.
 */
import { z } from 'zod'
import { grpcServerConfigSchema, logConfigSchema, telemetryConfigSchema } from '@m2msec/runtime'

/** The authn configuration schema (defaults, descriptions, cross-field rules). */
export const authnConfigSchema = z
  .object({
    profile: z
      .enum(['development', 'production'])
      .default('development')
      .describe('production refuses development credentials and plaintext gRPC'),
    instanceId: z
      .string()
      .min(1)
      .optional()
      .describe('this replica in audit records and NATS connection names (default authn-<hostname>-<pid>)'),
    grpc: grpcServerConfigSchema({ port: 7003 }).prefault({}),
    http: z
      .object({
        host: z.string().min(1).default('127.0.0.1').describe('listen address of the JWKS HTTP endpoint'),
        port: z
          .number()
          .int()
          .min(0)
          .max(65535)
          .default(7080)
          .describe('port of the JWKS HTTP endpoint (GET /.well-known/jwks.json, /tenants/<t>/jwks.json; 0 = any)'),
      })
      .prefault({}),
    nats: z
      .object({
        servers: z.array(z.string().min(1)).min(1).default(['nats://127.0.0.1:4222']).describe('NATS server URLs'),
        replicas: z
          .number()
          .int()
          .min(1)
          .max(5)
          .default(1)
          .describe('JetStream replicas of buckets and streams (3 in production)'),
        tokenFile: z.string().optional().describe('file holding a NATS auth token'),
      })
      .prefault({}),
    kms: z
      .object({
        target: z.string().min(1).default('127.0.0.1:7001').describe('host:port of the KMS gRPC API'),
        tls: z
          .object({
            caFile: z.string().min(1).describe('CA bundle (PEM) of the KMS server certificate'),
            certFile: z
              .string()
              .min(1)
              .optional()
              .describe('authn client certificate (PEM), SAN URI m2msec://_platform/authn, OU=role:service'),
            keyFile: z.string().min(1).optional().describe('private key (PEM) of certFile'),
            serverName: z
              .string()
              .min(1)
              .optional()
              .describe('name expected in the KMS certificate, if not the target host'),
          })
          .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), {
            message: 'certFile and keyFile go together',
            path: ['keyFile'],
          })
          .optional()
          .describe('TLS to the KMS; unset = plaintext (loopback development only)'),
        tokenFile: z
          .string()
          .optional()
          .describe('DEVELOPMENT ONLY: file holding a bearer token for the KMS (instead of an mTLS identity)'),
        timeoutMs: z.number().int().min(100).default(5_000).describe('deadline of each KMS call'),
      })
      .prefault({}),
    auth: z
      .object({
        mtls: z
          .boolean()
          .default(false)
          .describe(
            'accept client certificates verified against grpc.tls.caFile: SAN URI m2msec://<tenant>/<principal>, OU=role:<name> per role',
          ),
        acceptTokens: z
          .boolean()
          .default(true)
          .describe('accept this service’s own access tokens (aud = token.defaultAudience) as credentials'),
        operatorTenant: z.string().min(1).default('_platform').describe('tenant whose "operator" role manages tenants'),
        devTokenFile: z
          .string()
          .optional()
          .describe('DEVELOPMENT ONLY: file holding a static bearer token for devPrincipal of devTenant'),
        devTenant: z.string().default('_platform').describe('DEVELOPMENT ONLY: tenant of the static token'),
        devPrincipal: z.string().default('dev-operator').describe('DEVELOPMENT ONLY: principal of the static token'),
        devRoles: z
          .array(z.string().min(1))
          .default(['operator'])
          .describe('DEVELOPMENT ONLY: roles of the static token'),
      })
      .prefault({}),
    token: z
      .object({
        issuer: z.string().min(1).default('m2msec-authn').describe('iss of access tokens and server proofs'),
        endpointId: z
          .string()
          .min(1)
          .default('m2msec-authn-token')
          .describe('the aud every client assertion must carry (this token endpoint)'),
        defaultAudience: z
          .string()
          .min(1)
          .default('m2msec')
          .describe('aud of access tokens whose request names no audience (the platform)'),
        lifetimeSec: z.number().int().min(30).max(86_400).default(300).describe('access token lifetime'),
        maxAssertionLifetimeSec: z
          .number()
          .int()
          .min(10)
          .max(300)
          .default(300)
          .describe('longest accepted assertion lifetime (exp - iat)'),
        clockSkewSec: z.number().int().min(0).max(300).default(30).describe('clock skew tolerated on assertion times'),
        signingKeyCacheMs: z
          .number()
          .int()
          .min(0)
          .default(5_000)
          .describe('how long signing key metadata (primary version, public keys) is cached'),
      })
      .prefault({}),
    flood: z
      .object({
        entityFreeFailures: z
          .number()
          .int()
          .min(1)
          .default(5)
          .describe('failed authentications of one entity before its exponential back-off starts (all replicas)'),
        entityBaseDelayMs: z
          .number()
          .int()
          .min(1)
          .default(1_000)
          .describe('first back-off of an entity; doubles per failure'),
        entityMaxDelayMs: z.number().int().min(1).default(60_000).describe('longest back-off of an entity'),
        sourceFreeFailures: z
          .number()
          .int()
          .min(1)
          .default(20)
          .describe('failed authentications from one source address before its back-off starts (all replicas)'),
        sourceBaseDelayMs: z
          .number()
          .int()
          .min(1)
          .default(1_000)
          .describe('first back-off of a source; doubles per failure'),
        sourceMaxDelayMs: z.number().int().min(1).default(300_000).describe('longest back-off of a source'),
        failureWindowSec: z
          .number()
          .int()
          .min(1)
          .default(900)
          .describe('failures are forgotten after this long without a new one'),
        entityRatePerSec: z
          .number()
          .min(0)
          .default(10)
          .describe('token requests per second per entity, per replica (0 = unlimited)'),
        entityBurst: z
          .number()
          .int()
          .min(1)
          .default(20)
          .describe('token requests an entity may make at once, per replica'),
        sourceRatePerSec: z
          .number()
          .min(0)
          .default(200)
          .describe('token requests per second per source address, per replica (0 = unlimited)'),
        sourceBurst: z
          .number()
          .int()
          .min(1)
          .default(400)
          .describe('token requests a source may make at once, per replica'),
      })
      .prefault({}),
    session: z
      .object({
        defaultLifetimeSec: z
          .number()
          .int()
          .min(60)
          .default(3_600)
          .describe('session key lifetime when no tenant or entity policy sets one'),
        maxLifetimeSec: z
          .number()
          .int()
          .min(60)
          .default(86_400)
          .describe('longest session key lifetime a policy may set'),
      })
      .prefault({}),
    maf: z
      .object({
        fqdn: z
          .string()
          .min(1)
          .default('maf.m2msec.local')
          .describe('MAF-FQDN of key identifiers RelativeKeyID@MAF-FQDN (TLS psk_identity)'),
        maxKeyLifetimeSec: z
          .number()
          .int()
          .min(60)
          .default(30 * 86_400)
          .describe('longest expiration time of a MAF key registration'),
        maxClientLifetimeSec: z
          .number()
          .int()
          .min(60)
          .default(365 * 86_400)
          .describe('longest expiration time of a MAF client registration'),
      })
      .prefault({}),
    gba: z
      .object({
        znTarget: z
          .string()
          .min(1)
          .optional()
          .describe(
            'host:port of the bootstrap service (BSF) gRPC API, for GBA credentials (Zn GetRspfCredential with target MAF = maf.fqdn); unset = GBA B-TIDs are refused',
          ),
        tls: z
          .object({
            caFile: z.string().min(1).describe('CA bundle (PEM) of the bootstrap service certificate'),
            certFile: z
              .string()
              .min(1)
              .optional()
              .describe('authn client certificate (PEM), SAN URI m2msec://_platform/authn, OU=role:service'),
            keyFile: z.string().min(1).optional().describe('private key (PEM) of certFile'),
            serverName: z
              .string()
              .min(1)
              .optional()
              .describe('name expected in the bootstrap certificate, if not the target host'),
          })
          .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), {
            message: 'certFile and keyFile go together',
            path: ['keyFile'],
          })
          .optional()
          .describe('TLS to the bootstrap service; unset = plaintext (loopback development only)'),
        timeoutMs: z.number().int().min(100).default(5_000).describe('deadline of each Zn call'),
      })
      .prefault({}),
    certificates: z
      .object({
        revocation: z
          .enum(['on', 'crl', 'off'])
          .default('on')
          .describe(
            'on: refuse revoked certificates, asking the OCSP responder of their AIA and the CRL of their distribution point in the order of revocationPrefer (fail closed when neither answers); crl: the CRL only; off: no check',
          ),
        revocationPrefer: z
          .enum(['ocsp', 'crl'])
          .default('ocsp')
          .describe(
            'which source revocation=on asks first; the other is asked only when the first has no answer (unknown, unreachable, bad signature, stale) or no pointer',
          ),
        crlCacheSec: z
          .number()
          .int()
          .min(0)
          .max(86_400)
          .default(60)
          .describe(
            'how long a fetched CRL is used (never beyond its nextUpdate): a revocation is seen within this time',
          ),
        crlFetchTimeoutMs: z.number().int().min(100).default(3_000).describe('deadline of a CRL download'),
        crlMaxBytes: z.number().int().min(1024).default(1_048_576).describe('largest accepted CRL (bytes)'),
        crlUrlPrefixes: z
          .array(z.string().min(1))
          .default([])
          .describe('URL prefixes CRL distribution points must start with (e.g. the PKI revocation URL); empty = any'),
        ocspCacheSec: z
          .number()
          .int()
          .min(0)
          .max(86_400)
          .default(60)
          .describe(
            'how long a good or revoked OCSP answer is reused (never beyond its nextUpdate): a revocation is seen within this time',
          ),
        ocspTimeoutMs: z.number().int().min(100).default(3_000).describe('deadline of an OCSP request'),
        ocspUrlPrefixes: z
          .array(z.string().min(1))
          .default([])
          .describe('URL prefixes AIA OCSP responder URLs must start with (e.g. the PKI revocation URL); empty = any'),
      })
      .prefault({}),
    sweep: z
      .object({
        intervalMs: z
          .number()
          .int()
          .min(100)
          .default(30_000)
          .describe('how often expired session keys and MAF registrations are removed (their KMS keys retired)'),
      })
      .prefault({}),
    audit: z
      .object({
        maxPending: z.number().int().min(1).default(10_000).describe('audit records waiting before operations fail'),
        ackTimeoutMs: z.number().int().min(100).default(5_000).describe('how long an audit write may wait for its ack'),
      })
      .prefault({}),
    log: logConfigSchema.prefault({}),
    telemetry: telemetryConfigSchema.prefault({}),
  })
  .superRefine((c, ctx) => {
    if (c.auth.mtls && c.grpc.tls?.caFile === undefined) {
      ctx.addIssue({ code: 'custom', path: ['auth', 'mtls'], message: 'mtls needs grpc.tls with a caFile' })
    }
    if (c.session.defaultLifetimeSec > c.session.maxLifetimeSec) {
      ctx.addIssue({ code: 'custom', path: ['session', 'defaultLifetimeSec'], message: 'above session.maxLifetimeSec' })
    }
    if (c.profile === 'production') {
      for (const [path, set] of [
        [['auth', 'devTokenFile'], c.auth.devTokenFile],
        [['kms', 'tokenFile'], c.kms.tokenFile],
      ] as const) {
        if (set !== undefined) ctx.addIssue({ code: 'custom', path: [...path], message: 'refused in production' })
      }
      if (c.grpc.tls === undefined)
        ctx.addIssue({ code: 'custom', path: ['grpc', 'tls'], message: 'production needs TLS' })
      if (c.kms.tls?.certFile === undefined) {
        ctx.addIssue({ code: 'custom', path: ['kms', 'tls'], message: 'production needs mTLS to the KMS' })
      }
      if (c.gba.znTarget !== undefined && c.gba.tls?.certFile === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['gba', 'tls'],
          message: 'production needs mTLS to the bootstrap service',
        })
      }
    }
  })

/** The parsed authn configuration. */
export type AuthnConfig = z.output<typeof authnConfigSchema>

/** How long assertion jtis are remembered: longer than any assertion can be accepted. */
export function jtiTtlMs(c: AuthnConfig): number {
  return (c.token.maxAssertionLifetimeSec + 2 * c.token.clockSkewSec + 60) * 1000
}

/** How long revocations are kept: longer than any token lives. */
export function revocationTtlMs(c: AuthnConfig): number {
  return (c.token.lifetimeSec + c.token.clockSkewSec + 60) * 1000
}

/** How long failure records are kept: the failure window plus the longest back-off. */
export function attemptTtlMs(c: AuthnConfig): number {
  return c.flood.failureWindowSec * 1000 + Math.max(c.flood.entityMaxDelayMs, c.flood.sourceMaxDelayMs)
}
