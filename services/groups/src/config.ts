/**
 * Groups service configuration: defaults < YAML/JSON file (`--config`,
 * `M2MSEC_GROUPS_CONFIG_FILE`) < environment (`M2MSEC_GROUPS_<SECTION>__<FIELD>`, e.g.
 * `M2MSEC_GROUPS_GRPC__PORT=7005`). Secrets are only given as file paths.
 * `node --import tsx services/groups/src/main.ts --help` lists every setting.
 */
import { z } from 'zod'
import {
  grpcServerConfigSchema,
  logConfigSchema,
  serviceAuthConfigSchema,
  telemetryConfigSchema,
} from '@m2msec/runtime'

/** How the service reaches another platform service over gRPC (KMS, authn). */
function clientFields(service: string, port: number) {
  return {
    target: z.string().min(1).default(`127.0.0.1:${port}`).describe(`host:port of the ${service} gRPC API`),
    tls: z
      .object({
        caFile: z.string().min(1).describe(`CA bundle (PEM) of the ${service} server certificate`),
        certFile: z
          .string()
          .min(1)
          .optional()
          .describe('groups client certificate (PEM), SAN URI m2msec://_platform/groups, OU=role:service'),
        keyFile: z.string().min(1).optional().describe('private key (PEM) of certFile'),
        serverName: z
          .string()
          .min(1)
          .optional()
          .describe(`name expected in the ${service} certificate, if not the target host`),
      })
      .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), {
        message: 'certFile and keyFile go together',
        path: ['keyFile'],
      })
      .optional()
      .describe(`TLS to the ${service}; unset = plaintext (loopback development only)`),
    tokenFile: z
      .string()
      .optional()
      .describe(`DEVELOPMENT ONLY: file holding a bearer token for the ${service} (instead of an mTLS identity)`),
    timeoutMs: z.number().int().min(100).default(10_000).describe(`deadline of each ${service} call`),
  }
}

export const groupsConfigSchema = z
  .object({
    profile: z
      .enum(['development', 'production'])
      .default('development')
      .describe('production refuses development credentials and plaintext gRPC'),
    instanceId: z
      .string()
      .min(1)
      .optional()
      .describe('this replica in NATS connection names and events (default groups-<hostname>-<pid>)'),
    grpc: grpcServerConfigSchema({ port: 7005 }).prefault({}),
    nats: z
      .object({
        servers: z.array(z.string().min(1)).min(1).default(['nats://127.0.0.1:4222']).describe('NATS server URLs'),
        replicas: z.number().int().min(1).max(5).default(1).describe('JetStream replicas of buckets (3 in production)'),
        tokenFile: z.string().optional().describe('file holding a NATS auth token'),
      })
      .prefault({}),
    kms: z.object(clientFields('KMS', 7001)).prefault({}),
    authn: z
      .object({
        enabled: z.boolean().default(false).describe('look up members without a credential_key_id in authn'),
        ...clientFields('authn', 7003),
      })
      .prefault({}),
    auth: serviceAuthConfigSchema.prefault({}),
    groups: z
      .object({
        maxMembers: z
          .number()
          .int()
          .min(1)
          .max(10_000)
          .default(10_000)
          .describe('members per group (the member list is one KV value)'),
        challengeTtlMs: z.number().int().min(1000).default(60_000).describe('lifetime of a group challenge'),
        fanout: z
          .number()
          .int()
          .min(2)
          .max(256)
          .default(2)
          .describe('parts per suspect range in group authentication (2 = bisection)'),
        keptRekeys: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(16)
          .describe('rekeys whose envelopes GetRekeyEnvelopes still serves'),
      })
      .prefault({}),
    log: logConfigSchema.prefault({}),
    telemetry: telemetryConfigSchema.prefault({}),
  })
  .superRefine((c, ctx) => {
    if (c.auth.mtls && c.grpc.tls?.caFile === undefined) {
      ctx.addIssue({ code: 'custom', path: ['auth', 'mtls'], message: 'mtls needs grpc.tls with a caFile' })
    }
    if (c.profile === 'production') {
      if (c.auth.devAdminTokenFile !== undefined || c.kms.tokenFile !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['auth', 'devAdminTokenFile'],
          message: 'development tokens are refused in production',
        })
      }
      if (c.grpc.tls === undefined)
        ctx.addIssue({ code: 'custom', path: ['grpc', 'tls'], message: 'production needs TLS' })
      if (c.kms.tls?.certFile === undefined) {
        ctx.addIssue({ code: 'custom', path: ['kms', 'tls'], message: 'production needs mTLS to the KMS' })
      }
    }
  })

export type GroupsConfig = z.output<typeof groupsConfigSchema>
