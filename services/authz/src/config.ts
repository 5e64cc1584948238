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
    if (c.profile === 'production') {
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
