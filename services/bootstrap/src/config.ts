/**
 * Bootstrap service configuration: defaults < YAML/JSON file (`--config`,
 * `M2MSEC_BOOTSTRAP_CONFIG_FILE`) < environment (`M2MSEC_BOOTSTRAP_<SECTION>__<FIELD>`, e.g.
 * `M2MSEC_BOOTSTRAP_UB__PORT=8080`). Secrets (tokens, private keys) are only given as file
 * paths. `node --import tsx services/bootstrap/src/main.ts --help` lists every setting.
 */
import { z } from 'zod'
import { pkiConfigSchema } from './pki/config.ts'
import { rspfConfigSchema } from './rspf/config.ts'
import {
  grpcServerConfigSchema,
  logConfigSchema,
  serviceAuthConfigSchema,
  telemetryConfigSchema,
} from '@m2msec/runtime'

const HOST_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*$/

/** One NAF authorization rule of the Zn policy. */
export const nafRuleSchema = z.object({
  tenant: z.string().min(1).optional().describe('tenant the rule applies to; unset = every tenant'),
  principal: z
    .string()
    .min(1)
    .describe('caller: an exact principal id, "role:<name>" (any principal with that role) or "*"'),
  fqdns: z
    .array(z.string().min(1))
    .min(1)
    .describe('NAF FQDNs the caller may ask keys for: exact names or "*.<domain>" (any name below <domain>)'),
  allowWrapped: z
    .boolean()
    .default(false)
    .describe('may the key leave the platform wrapped (JWE) for the caller (an external NAF)?'),
})

/** The bootstrap configuration schema (defaults, descriptions, cross-field rules). */
export const bootstrapConfigSchema = z
  .object({
    profile: z
      .enum(['development', 'production'])
      .default('development')
      .describe('production refuses development credentials and plaintext gRPC'),
    instanceId: z
      .string()
      .min(1)
      .optional()
      .describe('this replica in audit records and NATS connection names (default bootstrap-<hostname>-<pid>)'),
    grpc: grpcServerConfigSchema({ port: 7004 }).prefault({}),
    ub: z
      .object({
        host: z.string().min(1).default('127.0.0.1').describe('listen address of the GBA Ub HTTP endpoint'),
        port: z.number().int().min(0).max(65535).default(8084).describe('port of the Ub HTTP endpoint (0 = any)'),
        path: z.string().startsWith('/').default('/').describe('request-URI of the bootstrapping resource'),
      })
      .prefault({}),
    gba: z
      .object({
        bsfHost: z
          .string()
          .regex(HOST_RE, 'must be a DNS name')
          .default('bsf.m2msec.local')
          .describe('BSF server name: the domain of every B-TID (base64(RAND)@bsfHost)'),
        realm: z.string().min(1).optional().describe('Digest realm on Ub (default: bsfHost)'),
        keyLifetimeSec: z
          .number()
          .int()
          .min(60)
          .max(7 * 86_400)
          .default(3_600)
          .describe('lifetime of a bootstrapping session (Ks, B-TID, every Ks_NAF)'),
        nonceTtlSec: z
          .number()
          .int()
          .min(5)
          .max(3_600)
          .default(300)
          .describe('how long a Ub challenge (nonce) can be answered'),
        indBits: z.number().int().min(0).max(16).default(5).describe('IND length of SQN (TS 33.102 Annex C)'),
        ind: z
          .number()
          .int()
          .min(0)
          .default(0)
          .describe('IND value of the SQNs this BSF issues (TS 33.102 C.3.2; < 2^indBits)'),
        sweepMs: z
          .number()
          .int()
          .min(1_000)
          .default(60_000)
          .describe('how often expired sessions and challenges have their KMS keys scheduled for destruction'),
        estEnrolment: z
          .boolean()
          .default(false)
          .describe(
            'offer EST enrolment authorized by GBA (HTTP Digest with Ks_NAF; needs pki). Makes every new Ks derivable into exportable keys, see docs/pki-est.md',
          ),
        estNafFqdn: z
          .string()
          .regex(HOST_RE, 'must be a DNS name')
          .optional()
          .describe(
            'NAF FQDN of the EST endpoint for GBA enrolment: realm 3GPP-bootstrapping@<fqdn>, NAF_Id = fqdn || Ua id 0100000002 (default: host of pki.est.publicUrl, else pki.est.host)',
          ),
      })
      .prefault({}),
    limits: z
      .object({
        sourcePerSec: z
          .number()
          .min(0)
          .default(50)
          .describe(
            'HTTP requests before authentication (every Ub request, every EST enrolment request) per second per source address and replica; 0 = no limit. Raise it for fleets behind NAT',
          ),
        sourceBurst: z.number().int().min(1).default(100).describe('burst of the per-source limit'),
      })
      .prefault({})
      .describe('per-source limit of Ub and EST enrolment requests (429 with Retry-After beyond it)'),
    zn: z
      .object({
        nafs: z.array(nafRuleSchema).default([]).describe('which callers may ask for which NAF keys (Zn policy)'),
      })
      .prefault({}),
    pki: pkiConfigSchema
      .optional()
      .describe('tenant CAs with keys in the KMS, EST enrolment (HTTPS), CRL and OCSP (unset = off)'),
    rspf: rspfConfigSchema
      .optional()
      .describe('oneM2M TLS RSPF: MEF handshake over TLS-PSK / mutual TLS and fetchCredentials (unset = off)'),
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
              .describe('client certificate (PEM), SAN URI m2msec://_platform/bootstrap, OU=role:service'),
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
        principal: z
          .string()
          .min(1)
          .default('svc:bootstrap')
          .describe(
            'this service as the KMS sees it (svc:<principal of the certificate>); named in key usage policies',
          ),
        timeoutMs: z.number().int().min(100).default(5_000).describe('deadline of each KMS call'),
      })
      .prefault({}),
    auth: serviceAuthConfigSchema.prefault({}),
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
    if (c.gba.estEnrolment) {
      if (c.pki === undefined) {
        ctx.addIssue({ code: 'custom', path: ['gba', 'estEnrolment'], message: 'needs the pki section (EST)' })
      } else if (!HOST_RE.test(estNafFqdnOf(c.gba, c.pki.est)) || estNafFqdnOf(c.gba, c.pki.est) === '0.0.0.0') {
        ctx.addIssue({
          code: 'custom',
          path: ['gba', 'estNafFqdn'],
          message: 'the EST host devices reach is not a DNS name: set gba.estNafFqdn or pki.est.publicUrl',
        })
      }
    }
    if (c.gba.ind >= 2 ** c.gba.indBits) {
      ctx.addIssue({ code: 'custom', path: ['gba', 'ind'], message: 'ind must be below 2^indBits' })
    }
    if (c.auth.mtls && c.grpc.tls?.caFile === undefined) {
      ctx.addIssue({ code: 'custom', path: ['auth', 'mtls'], message: 'mtls needs grpc.tls with a caFile' })
    }
    if (c.profile === 'production') {
      for (const [path, set] of [
        [['auth', 'devAdminTokenFile'], c.auth.devAdminTokenFile],
        [['kms', 'tokenFile'], c.kms.tokenFile],
      ] as const) {
        if (set !== undefined) ctx.addIssue({ code: 'custom', path: [...path], message: 'refused in production' })
      }
      if (c.grpc.tls === undefined) {
        ctx.addIssue({ code: 'custom', path: ['grpc', 'tls'], message: 'production needs TLS' })
      }
      if (c.kms.tls?.certFile === undefined) {
        ctx.addIssue({ code: 'custom', path: ['kms', 'tls'], message: 'production needs mTLS to the KMS' })
      }
    }
  })

/** The parsed bootstrap configuration. */
export type BootstrapConfig = z.output<typeof bootstrapConfigSchema>

/** A parsed NAF rule. */
export type NafRule = z.output<typeof nafRuleSchema>

/**
 * The NAF FQDN of the EST endpoint for GBA enrolment: `gba.estNafFqdn`, else the host of
 * `pki.est.publicUrl`, else `pki.est.host` (what devices put into NAF_Id).
 */
export function estNafFqdnOf(
  gba: { readonly estNafFqdn?: string | undefined },
  est: { readonly publicUrl?: string | undefined; readonly host: string },
): string {
  if (gba.estNafFqdn !== undefined) return gba.estNafFqdn
  const host = est.host.includes(':') ? `[${est.host}]` : est.host
  return new URL(est.publicUrl ?? `https://${host}`).hostname
}
