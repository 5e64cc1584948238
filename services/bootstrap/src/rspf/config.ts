/**
 * The `rspf` configuration section: the MEF's FQDN, its three listeners (TLS-PSK and
 * certificate MEF Handshake, HTTPS fetchCredentials), and the Enrolees and Enrolment Targets
 * the administrating stakeholder configured. Pre-provisioned keys (Kpm) are not configuration:
 * they live in the KMS secure storage (see `provisionPreSharedKey`).
 */
import { z } from 'zod'
import { isFqdn, isRspfSuid, type RspfSuid } from './domain/ids.ts'
import type { Enrolee, TargetRegistration } from './domain/enrolment.ts'

const TENANT_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/
const tlsVersion = z.enum(['TLSv1.2', 'TLSv1.3'])
const port = (d: number) => z.number().int().min(0).max(65535).default(d)
const suid = z
  .number()
  .int()
  .refine(isRspfSuid, 'SUID must be 21, 22, 23, 24 or 25')
  .transform((n) => n as RspfSuid)

const enroleeSchema = z.object({
  tenant: z.string().regex(TENANT_RE).describe('tenant that owns the enrolee keys in the KMS'),
  enroleeId: z.string().min(1).describe('CSE-ID or AE-ID of the enrolee, returned to enrolment targets'),
  credential: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('psk'), kpmId: z.string().min(3).describe('KpmID = TLS psk_identity') }),
    z.object({
      kind: z.literal('certificate'),
      subjectAltName: z
        .string()
        .regex(/^(URI|DNS|IP Address|email):.+$/)
        .describe('SAN entry, e.g. URI:urn:dev:ops:1'),
    }),
  ]),
  targets: z
    .array(z.object({ target: z.string().min(1), suids: z.array(suid).min(1) }))
    .default([])
    .describe('targets (MAF FQDN or Absolute CSE-ID/AE-ID) and the SUIDs each may fetch'),
  lifetimeSec: z
    .number()
    .int()
    .min(60)
    .max(31_536_000)
    .optional()
    .describe('Enrolment Expiry; default enrolmentLifetimeSec'),
})

const targetSchema = z.object({
  kind: z.enum(['maf', 'cse', 'ae']),
  id: z.string().min(1).describe('MAF FQDN, or Absolute CSE-ID/AE-ID //<SP-ID>/<CSE-ID>[/<AE-ID>]'),
  principal: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\/.+$/)
    .describe('<tenant>/<principal id> the target authenticates as (mTLS or bearer token)'),
  publicJwk: z
    .string()
    .refine((s) => {
      try {
        const j = JSON.parse(s) as Record<string, unknown>
        return j['kty'] === 'EC' && j['crv'] === 'P-256' && j['d'] === undefined
      } catch {
        return false
      }
    }, 'must be an EC P-256 public JWK (JSON)')
    .describe('public JWK the credentials are wrapped for (JWE ECDH-ES+A256KW)'),
})

const tlsFiles = {
  certFile: z.string().min(1).describe('PEM certificate (chain) of the MEF: an FQDN certificate naming mefFqdn'),
  keyFile: z.string().min(1).describe('PEM private key of that certificate'),
}

/** Schema of the `rspf` section. */
export const rspfConfigSchema = z.object({
  mefFqdn: z.string().refine(isFqdn, 'must be an FQDN').describe('FQDN of this MEF: the suffix of every KeID'),
  enrolmentLifetimeSec: z
    .number()
    .int()
    .min(60)
    .max(31_536_000)
    .default(86_400)
    .describe('default Enrolment Expiry (lifetime of Ke), seconds'),
  psk: z
    .object({
      enabled: z.boolean().default(true).describe('serve the pre-provisioned symmetric key RSPF (TLS-PSK)'),
      host: z.string().default('0.0.0.0').describe('listen address'),
      port: port(7443).describe('listen port (0 = any free port)'),
      ciphers: z
        .string()
        .default('PSK-AES128-CBC-SHA256:PSK-AES128-GCM-SHA256:ECDHE-PSK-AES128-CBC-SHA256:TLS_AES_128_GCM_SHA256')
        .describe('OpenSSL cipher list; TS-0003 mandates PSK-AES128-CBC-SHA256 (TLS_PSK_WITH_AES_128_CBC_SHA256)'),
      maxVersion: tlsVersion.default('TLSv1.3').describe('highest TLS version (TS-0003 V3 names TLS 1.2 only)'),
      handshakeTimeoutMs: z.number().int().positive().default(10_000).describe('handshake deadline'),
    })
    .prefault({}),
  certificate: z
    .object({
      host: z.string().default('0.0.0.0').describe('listen address'),
      port: port(7444).describe('listen port'),
      ...tlsFiles,
      caFile: z.string().min(1).describe('PEM trust anchors that enrolee certificates must chain to'),
      ciphers: z
        .string()
        .default(
          'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384',
        )
        .describe('OpenSSL cipher list; TS-0003 mandates ECDHE-ECDSA-AES128-SHA256'),
      maxVersion: tlsVersion.default('TLSv1.3').describe('highest TLS version'),
      handshakeTimeoutMs: z.number().int().positive().default(10_000).describe('handshake deadline'),
    })
    .optional()
    .describe('certificate-based RSPF (mutual TLS); unset = disabled'),
  fetchCredentials: z.object({
    host: z.string().default('0.0.0.0').describe('listen address'),
    port: port(7445).describe('listen port'),
    ...tlsFiles,
    clientCaFile: z
      .string()
      .optional()
      .describe('PEM CA of target client certificates (platform PKI); unset = bearer tokens only'),
  }),
  enrolees: z.array(enroleeSchema).default([]).describe('enrolees (Bootstrap Instruction Configuration)'),
  targets: z.array(targetSchema).default([]).describe('enrolment targets allowed to call fetchCredentials'),
  kvReplicas: z.number().int().min(1).max(5).default(1).describe('replicas of the enrolment KV bucket'),
})

/** The parsed `rspf` section. */
export type RspfConfig = z.output<typeof rspfConfigSchema>

/** The configured Enrolees in domain form (lifetime defaults applied). */
export function enroleesOf(config: RspfConfig): Enrolee[] {
  return config.enrolees.map((e) => ({
    tenant: e.tenant,
    enroleeId: e.enroleeId,
    credential: e.credential,
    targets: e.targets,
    lifetimeSec: e.lifetimeSec ?? config.enrolmentLifetimeSec,
  }))
}

/** The configured Targets in domain form. */
export function targetsOf(config: RspfConfig): TargetRegistration[] {
  return config.targets.map((t) => {
    const slash = t.principal.indexOf('/')
    return {
      target: t.kind === 'maf' ? { kind: 'maf', fqdn: t.id } : { kind: t.kind, absoluteId: t.id },
      principal: { tenant: t.principal.slice(0, slash), id: t.principal.slice(slash + 1) },
      publicJwk: t.publicJwk,
    }
  })
}
