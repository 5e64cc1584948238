/**
 * Authz configuration: defaults < YAML/JSON file (`--config`, `M2MSEC_AUTHZ_CONFIG_FILE`) <
 * environment (`M2MSEC_AUTHZ_<SECTION>__<FIELD>`, e.g. `M2MSEC_AUTHZ_GRPC__PORT=7002`). Secrets
 * (tokens) are never given inline: only as file paths.
 * `node --import tsx services/authz/src/main.ts --help` lists every setting.
 */
import { z } from 'zod'
import {
  grpcServerConfigSchema,
  logConfigSchema,
  serviceAuthConfigSchema,
  telemetryConfigSchema,
} from '@m2msec/runtime'

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value)
    return url.protocol === 'http:' || url.protocol === 'https:'
  } catch {
    return false
  }
}

/** JWS algorithms a trusted DAS may use (never `none`; HMAC needs a shared secret, not offered). */
export const DAS_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'EdDSA', 'PS256', 'RS256'] as const

const dasSchema = z
  .object({
    issuers: z
      .array(
        z.object({
          tenant: z.string().min(1),
          issuer: z.string().min(1),
          keyId: z.string().min(1).max(128),
          maxLifetimeSec: z.number().int().min(1).max(2_592_000).default(3600),
        }),
      )
      .default([])
      .describe(
        'act as DAS Server (IssueToken) for these tenants: [{tenant, issuer (iss of the tokens, e.g. //sp.example/das), keyId (KMS EC_P256_SIGN key of the tenant, created on first use), maxLifetimeSec (3600)}]; Check trusts these tokens for the same tenant',
      ),
    trusted: z
      .array(
        z
          .object({
            tenant: z.string().min(1),
            issuer: z.string().min(1),
            jwksFile: z.string().min(1).optional(),
            jwksUrl: z.string().refine(isHttpUrl, 'must be an http:// or https:// URL').optional(),
            algorithms: z.array(z.enum(DAS_ALGORITHMS)).min(1).default(['ES256']),
            requireAudience: z.boolean().default(false),
          })
          .refine((t) => (t.jwksFile === undefined) !== (t.jwksUrl === undefined), {
            message: 'exactly one of jwksFile and jwksUrl',
            path: ['jwksFile'],
          }),
      )
      .default([])
      .describe(
        'external DAS servers whose oneM2M tokens Check accepts: [{tenant, issuer (exact iss), jwksFile | jwksUrl (verification keys), algorithms (["ES256"]), requireAudience (false)}]',
      ),
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
              .describe('authz client certificate (PEM), SAN URI m2msec://_platform/authz, OU=role:service'),
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
      .prefault({})
      .describe('the KMS holding the DAS signing keys (used only with das.issuers)'),
    keyCacheMs: z
      .number()
      .int()
      .min(0)
      .default(60_000)
      .describe('how long the DAS signing key metadata (public keys, primary version) is cached'),
    clockToleranceSec: z
      .number()
      .int()
      .min(0)
      .max(300)
      .default(5)
      .describe("allowed clock difference when checking a token's nbf and exp"),
    maxTokenBytes: z
      .number()
      .int()
      .min(256)
      .max(65_536)
      .default(8192)
      .describe('largest oneM2M token accepted in a Check, bytes'),
  })
  .prefault({})

export const authzConfigSchema = z
  .object({
    profile: z
      .enum(['development', 'production'])
      .default('development')
      .describe('production refuses development credentials and plaintext gRPC'),
    instanceId: z
      .string()
      .min(1)
      .optional()
      .describe(
        'this replica in audit records and NATS connection names (default authz-<hostname>-<pid>; set it to the pod name)',
      ),
    grpc: grpcServerConfigSchema({ port: 7002 }).prefault({}),
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
    auth: serviceAuthConfigSchema.prefault({}),
    audit: z
      .object({
        allowSampleRate: z
          .number()
          .min(0)
          .max(1)
          .default(0.01)
          .describe(
            'fraction of PERMIT decisions written to the audit log (DENY decisions and policy changes always are)',
          ),
        maxPending: z
          .number()
          .int()
          .min(1)
          .default(10_000)
          .describe('audit records waiting for JetStream before operations fail'),
        ackTimeoutMs: z.number().int().min(100).default(5_000).describe('how long an audit write may wait for its ack'),
      })
      .prefault({}),
    das: dasSchema,
    policySyncTimeoutMs: z
      .number()
      .int()
      .min(1000)
      .default(30_000)
      .describe('how long start-up waits for the stored policies to load before failing'),
    log: logConfigSchema.prefault({}),
    telemetry: telemetryConfigSchema.prefault({}),
  })
  .superRefine((c, ctx) => {
    if (c.auth.mtls && c.grpc.tls?.caFile === undefined) {
      ctx.addIssue({ code: 'custom', path: ['auth', 'mtls'], message: 'mtls needs grpc.tls with a caFile' })
    }
    const seen = new Set<string>()
    for (const [i, t] of [...c.das.issuers, ...c.das.trusted].entries()) {
      const key = `${t.tenant}\0${t.issuer}`
      if (seen.has(key)) {
        ctx.addIssue({
          code: 'custom',
          path: ['das'],
          message: `issuer ${t.issuer} listed twice for tenant ${t.tenant} (entry ${i})`,
        })
      }
      seen.add(key)
    }
    if (new Set(c.das.issuers.map((i) => i.tenant)).size !== c.das.issuers.length) {
      ctx.addIssue({ code: 'custom', path: ['das', 'issuers'], message: 'one DAS identity per tenant' })
    }
    if (c.profile === 'production') {
      if (c.das.issuers.length > 0 && c.das.kms.tls?.certFile === undefined) {
        ctx.addIssue({ code: 'custom', path: ['das', 'kms', 'tls'], message: 'production needs mTLS to the KMS' })
      }
      if (c.das.kms.tokenFile !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['das', 'kms', 'tokenFile'],
          message: 'the development KMS token is refused in production',
        })
      }
      if (c.auth.devAdminTokenFile !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['auth', 'devAdminTokenFile'],
          message: 'the development token is refused in production',
        })
      }
      if (c.grpc.tls === undefined) {
        ctx.addIssue({ code: 'custom', path: ['grpc', 'tls'], message: 'production needs TLS' })
      }
    }
  })

export type AuthzConfig = z.output<typeof authzConfigSchema>
