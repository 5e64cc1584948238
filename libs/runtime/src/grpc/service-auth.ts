/**
 * The `auth` section every m2msec gRPC service shares, and the authenticator chain built from it:
 * authn access tokens (checked against the bus revocation set), mTLS client certificates, and the
 * DEVELOPMENT-ONLY static admin token — wrapped so platform services act for a named tenant.
 */
import { readFileSync } from 'node:fs'
import { z } from 'zod'
import type { Logger } from '../logger.ts'
import { chainAuthenticators, devMtlsAuthenticator, devStaticTokenAuthenticator, type Authenticator } from './auth.ts'
import { authnSigningKeyTenant, platformServiceAuthenticator, tokenAuthenticator } from './token-auth.ts'

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value)
    return url.protocol === 'http:' || url.protocol === 'https:'
  } catch {
    return false
  }
}

/**
 * Schema of the `auth` config section.
 *
 * @example
 * ```ts
 * const schema = z.object({ auth: serviceAuthConfigSchema.prefault({}) })
 * ```
 */
export const serviceAuthConfigSchema = z.object({
  devAdminTokenFile: z
    .string()
    .optional()
    .describe('DEVELOPMENT ONLY: file holding a static bearer token for an admin of devTenant'),
  devTenant: z.string().default('demo').describe('DEVELOPMENT ONLY: tenant of the static token'),
  devPrincipal: z.string().default('dev-admin').describe('DEVELOPMENT ONLY: principal of the static token'),
  mtls: z
    .boolean()
    .default(false)
    .describe(
      'accept client certificates verified against grpc.tls.caFile as callers: SAN URI m2msec://<tenant>/<principal>, one OU=role:<name> per role (service-to-service)',
    ),
  tokens: z
    .object({
      jwksUrl: z
        .string()
        .refine(isHttpUrl, 'must be an http:// or https:// URL')
        .describe(
          'accept authn access tokens (Bearer; tenant, subject and roles from the token) verified with this JWKS: http://<authn>:7080/.well-known/jwks.json (every tenant; /tenants/<tenant>/jwks.json for one); unset = tokens not accepted',
        ),
      issuer: z.string().min(1).default('m2msec-authn').describe('iss the tokens must carry (authn token.issuer)'),
      audience: z
        .string()
        .min(1)
        .default('m2msec')
        .describe('aud the tokens must name (authn token.defaultAudience, or the audience the client requested)'),
    })
    .optional()
    .describe(
      'accept access tokens of the authn service (Bearer) as callers: tenant, subject and roles from the token; unset = not accepted',
    ),
})

export type ServiceAuthConfig = z.output<typeof serviceAuthConfigSchema>

/**
 * The service's authenticator: tokens first (so an expired or revoked JWT is reported as such),
 * then mTLS, then the development token; all wrapped by {@link platformServiceAuthenticator}.
 * `isRevoked` comes from the bus revocation set; without it tokens are not accepted.
 */
export function createServiceAuthenticator(
  auth: ServiceAuthConfig,
  log: Logger,
  isRevoked?: (tenant: string, jti: string) => boolean,
): Authenticator {
  const list: Authenticator[] = []
  if (auth.mtls) list.push(devMtlsAuthenticator())
  const tokens = auth.tokens
  if (tokens !== undefined && isRevoked !== undefined) {
    list.push(
      tokenAuthenticator({
        jwks: tokens.jwksUrl,
        issuer: tokens.issuer,
        audience: tokens.audience,
        // A token must name the tenant whose key signed it (the platform JWKS holds every tenant's keys).
        keyTenant: authnSigningKeyTenant,
        isRevoked: (t) => isRevoked(t.tenant, t.jti),
      }),
    )
  }
  if (auth.devAdminTokenFile !== undefined) {
    log.warn('DEVELOPMENT static admin token enabled: never use this in production')
    list.push(
      devStaticTokenAuthenticator({
        token: readFileSync(auth.devAdminTokenFile, 'utf8').trim(),
        tenant: auth.devTenant,
        principal: auth.devPrincipal,
        roles: ['admin'],
      }),
    )
  }
  return platformServiceAuthenticator(chainAuthenticators(...list))
}
