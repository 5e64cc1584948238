/**
 * KMS configuration: defaults < YAML/JSON file (`--config`, `M2MSEC_KMS_CONFIG_FILE`) <
 * environment (`M2MSEC_KMS_<SECTION>__<FIELD>`, e.g. `M2MSEC_KMS_GRPC__PORT=7001`). Secrets
 * (master key, PINs, tokens) are never given inline: only as file paths.
 * `node --import tsx services/kms/src/main.ts --help` lists every setting.
 */
import { z } from 'zod'
import {
  grpcServerConfigSchema,
  logConfigSchema,
  serviceAuthConfigSchema,
  telemetryConfigSchema,
} from '@m2msec/runtime'
import { seConfigSchema } from './se/config.ts'

export const kmsConfigSchema = z
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
        'this replica in audit records and NATS connection names (default kms-<hostname>-<pid>; set it to the pod name)',
      ),
    grpc: grpcServerConfigSchema({ port: 7001 }).prefault({}),
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
    secureEnvironments: z
      .array(seConfigSchema)
      .min(1)
      .describe(
        'the secure environments, each {name, type: software|pkcs11|vault|aws-kms, options} (see services/kms/README.md); as JSON in the environment',
      ),
    defaultSecureEnvironment: z
      .string()
      .optional()
      .describe('name of the secure environment of keys created without one (default: the first)'),
    auth: serviceAuthConfigSchema.prefault({}),
    audit: z
      .object({
        maxPending: z
          .number()
          .int()
          .min(1)
          .default(10_000)
          .describe('audit records waiting for JetStream before operations fail'),
        ackTimeoutMs: z.number().int().min(100).default(5_000).describe('how long an audit write may wait for its ack'),
        flushIntervalMs: z
          .number()
          .int()
          .min(0)
          .max(100)
          .default(0)
          .describe(
            'how long records gather before a JetStream write (group commit); more per write costs less CPU per record and adds this much latency',
          ),
      })
      .prefault({}),
    destroySweepMs: z
      .number()
      .int()
      .min(1000)
      .default(60_000)
      .describe('how often keys whose scheduled destruction is due are destroyed'),
    log: logConfigSchema.prefault({}),
    telemetry: telemetryConfigSchema.prefault({}),
  })
  .superRefine((c, ctx) => {
    const names = c.secureEnvironments.map((se) => se.name)
    if (new Set(names).size !== names.length) {
      ctx.addIssue({ code: 'custom', path: ['secureEnvironments'], message: 'secure environment names must be unique' })
    }
    if (c.defaultSecureEnvironment !== undefined && !names.includes(c.defaultSecureEnvironment)) {
      ctx.addIssue({
        code: 'custom',
        path: ['defaultSecureEnvironment'],
        message: `no secure environment is named "${c.defaultSecureEnvironment}"`,
      })
    }
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

export type KmsConfig = z.output<typeof kmsConfigSchema>
