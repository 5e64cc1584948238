/**
 * The `pki` section of the bootstrap service configuration: the EST listener (HTTPS), the
 * CRL/OCSP listener (HTTP; both are signed objects, RFC 5280 §4.2.1.13 / RFC 6960 App. A)
 * and certificate lifetimes. The lead merges it into the service schema as `pki`.
 */
import { z } from 'zod'

const port = z.number().int().min(0).max(65535)

function isUrl(protocols: readonly string[]) {
  return (value: string) => {
    try {
      return protocols.includes(new URL(value).protocol)
    } catch {
      return false
    }
  }
}

/**
 * Schema of the `pki` config section.
 *
 * @example
 * ```ts
 * const schema = z.object({ pki: pkiConfigSchema })
 * const config = pkiConfigSchema.parse({ est: { tls: { certFile, keyFile } } })
 * ```
 */
export const pkiConfigSchema = z.object({
  est: z
    .object({
      host: z.string().min(1).default('127.0.0.1').describe('EST (RFC 7030) HTTPS listen address'),
      port: port.default(8443).describe('EST HTTPS port (0 = any free port)'),
      tls: z
        .object({
          certFile: z.string().min(1).describe('PEM server certificate (chain) of the EST endpoint'),
          keyFile: z.string().min(1).describe('PEM private key of the EST endpoint'),
        })
        .describe('server certificate of the EST endpoint; clients may present certificates (claim, re-enrolment)'),
      publicUrl: z
        .string()
        .refine(isUrl(['https:']), 'must be an https:// URL')
        .optional()
        .describe('base URL clients use for EST (default https://<host>:<port>)'),
      maxCsrBytes: z.number().int().min(512).max(65536).default(4096).describe('largest accepted CSR (DER bytes)'),
    })
    .describe('EST enrolment endpoint'),
  revocation: z
    .object({
      host: z.string().min(1).default('127.0.0.1').describe('CRL/OCSP HTTP listen address'),
      port: port.default(8081).describe('CRL/OCSP HTTP port (0 = any free port)'),
      publicUrl: z
        .string()
        .refine(isUrl(['http:', 'https:']), 'must be an http(s):// URL')
        .optional()
        .describe('base URL written into certificates (CRL DP, AIA OCSP); default http://<host>:<port>'),
      crlValiditySec: z.number().int().min(60).max(604800).default(86400).describe('CRL nextUpdate - thisUpdate'),
      ocspValiditySec: z.number().int().min(60).max(604800).default(3600).describe('OCSP nextUpdate - thisUpdate'),
    })
    .prefault({})
    .describe('CRL and OCSP endpoint'),
  certificates: z
    .object({
      leafValidityDays: z.number().int().min(1).max(3650).default(365).describe('validity of issued certificates'),
      issuingCaValidityDays: z.number().int().min(30).max(9125).default(3650).describe('validity of issuing CAs'),
      rootCaValidityDays: z.number().int().min(30).max(18250).default(7300).describe('validity of root CAs'),
      backdateSec: z
        .number()
        .int()
        .min(0)
        .max(3600)
        .default(300)
        .describe('notBefore lies this far in the past (clock skew)'),
    })
    .prefault({})
    .describe('certificate lifetimes'),
})

/** The parsed `pki` section. */
export type PkiConfig = z.output<typeof pkiConfigSchema>
