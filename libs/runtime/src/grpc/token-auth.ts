/**
 * Authenticators for access tokens issued by the m2msec authn service, and the wrapper that
 * lets platform services act for a tenant.
 *
 * - {@link tokenAuthenticator}: `authorization: Bearer <jwt>` with an ES256 access token
 *   (typ `at+jwt`) of the authn service, verified against its JWKS (fetched over HTTP and
 *   cached, or an in-process key source), issuer, audience, expiry and an optional
 *   revocation check.
 * - {@link platformServiceAuthenticator}: a principal of the platform tenant (`_platform`)
 *   with role `service` names the tenant it acts for in the `m2msec-tenant` header and
 *   becomes an admin of that tenant.
 */
import {
  createRemoteJWKSet,
  errors as joseErrors,
  importJWK,
  jwtVerify,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose'
import { M2msecError, isM2msecError } from '@m2msec/errors'
import { readBearerToken, type Authenticator, type Principal } from './auth.ts'

/** The tenant of platform services (not a tenant anyone can create: it starts with `_`). */
export const PLATFORM_TENANT = '_platform'
/** The role that marks a platform service principal. */
export const SERVICE_ROLE = 'service'
/** The request header in which a platform service names the tenant it acts for. */
export const TENANT_METADATA = 'm2msec-tenant'
/** The JWT `typ` of access tokens (RFC 9068). */
export const ACCESS_TOKEN_TYP = 'at+jwt'

/** Tenant ids as every service accepts them (no leading `_`, so never the platform tenant). */
const TENANT_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/
const ROLE_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/
const DEFAULT_MAX_TOKEN_BYTES = 8192

/**
 * An in-process source of verification keys: the public JWK of a `kid`, or undefined when
 * the kid is unknown (the token is then refused with ERR_TOKEN_INVALID).
 */
export type TokenKeySource = (kid: string) => Promise<JWK | undefined>

/** The claims of a verified access token that a revocation check needs. */
export interface VerifiedToken {
  readonly jti: string
  readonly tenant: string
  readonly sub: string
  /** Expiry, seconds since the epoch. */
  readonly exp: number
  /** Every claim, as signed. */
  readonly claims: Readonly<JWTPayload>
}

/** Options of {@link tokenAuthenticator}. */
export interface TokenAuthenticatorOptions {
  /**
   * Where the keys come from: the JWKS URL of the authn service (e.g.
   * `http://authn:7080/.well-known/jwks.json`; cached, re-fetched at most once a second when
   * a token names an unknown kid) or an in-process {@link TokenKeySource}.
   */
  readonly jwks: string | URL | TokenKeySource
  /** The `iss` the tokens must carry (authn setting `token.issuer`). */
  readonly issuer: string
  /** Accepted `aud` values; a token must name at least one. */
  readonly audience: string | readonly string[]
  /** True when the token was revoked (e.g. the authn revocation set); ERR_TOKEN_REVOKED. */
  readonly isRevoked?: (token: VerifiedToken) => boolean | Promise<boolean>
  /**
   * The tenant a signing key belongs to, by kid. When set, a token whose `tenant` claim is not
   * that tenant is refused (defence in depth for verifiers of the all-tenant JWKS).
   */
  readonly keyTenant?: (kid: string) => string | undefined
  /** Clock skew tolerated on `exp`/`iat`/`nbf`, seconds. Default 5. */
  readonly clockToleranceSec?: number
  /** Larger tokens are refused before parsing. Default 8192 bytes. */
  readonly maxTokenBytes?: number
  /** The current time (tests). Default: the system clock. */
  readonly now?: () => Date
}

type KeyResolver = (header: { kid?: string | undefined }) => Promise<CryptoKey | Uint8Array>

function keyResolver(jwks: TokenAuthenticatorOptions['jwks']): KeyResolver {
  if (typeof jwks === 'function') {
    // Imported keys are cached per kid and JWK text: a kid whose key changed is re-imported.
    const cache = new Map<string, { json: string; key: Promise<CryptoKey | Uint8Array> }>()
    return async (header) => {
      const kid = header.kid
      if (kid === undefined) throw new M2msecError('ERR_TOKEN_INVALID', 'token has no kid')
      const jwk = await jwks(kid)
      if (jwk === undefined) throw new M2msecError('ERR_TOKEN_INVALID', 'token signed by an unknown key')
      const json = JSON.stringify(jwk)
      const hit = cache.get(kid)
      if (hit !== undefined && hit.json === json) return hit.key
      const key = importJWK(jwk, 'ES256')
      if (cache.size >= 256) cache.clear()
      cache.set(kid, { json, key })
      return key
    }
  }
  const remote = createRemoteJWKSet(new URL(jwks), { cooldownDuration: 1_000, cacheMaxAge: 60_000 })
  return async (header) => {
    if (header.kid === undefined) throw new M2msecError('ERR_TOKEN_INVALID', 'token has no kid')
    try {
      return await remote({ alg: 'ES256', kid: header.kid })
    } catch (err) {
      if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) {
        throw new M2msecError('ERR_TOKEN_INVALID', 'token signed by an unknown key', {}, { cause: err })
      }
      throw new M2msecError('ERR_UNAVAILABLE', 'token keys (JWKS) cannot be fetched', {}, { cause: err })
    }
  }
}

function verificationError(err: unknown): M2msecError {
  if (isM2msecError(err)) return err
  if (err instanceof joseErrors.JWTExpired) return new M2msecError('ERR_TOKEN_EXPIRED', 'token expired')
  if (err instanceof joseErrors.JOSEError) {
    return new M2msecError('ERR_TOKEN_INVALID', `invalid token: ${err.code}`, {}, { cause: err })
  }
  return new M2msecError('ERR_TOKEN_INVALID', 'invalid token', {}, { cause: err })
}

function rolesOf(value: unknown): string[] {
  if (value === undefined) return []
  if (!Array.isArray(value) || !value.every((r): r is string => typeof r === 'string' && ROLE_RE.test(r))) {
    throw new M2msecError('ERR_TOKEN_INVALID', 'token roles claim is malformed')
  }
  return value
}

/**
 * Authenticates `authorization: Bearer <jwt>` with an access token of the authn service:
 * ES256 only, header `typ: at+jwt` and a `kid` known to the key source, `iss` and `aud` as
 * configured, not expired, with `sub`, `tenant` and `jti`. Maps the token to
 * `{ tenant, id: sub, roles: <roles claim>, via: 'token' }`.
 *
 * Errors: no bearer header ERR_UNAUTHENTICATED (so a chain tries the next authenticator);
 * expired ERR_TOKEN_EXPIRED; revoked ERR_TOKEN_REVOKED; anything else wrong with the token
 * ERR_TOKEN_INVALID; JWKS unreachable ERR_UNAVAILABLE.
 *
 * @example
 * ```ts
 * const revoked = await createRevocationSet(nc)               // from @m2msec/bus
 * const auth = tokenAuthenticator({
 *   jwks: 'http://127.0.0.1:7080/.well-known/jwks.json',
 *   issuer: 'https://authn.m2msec.local',
 *   audience: 'm2msec',
 *   isRevoked: (t) => revoked.isRevoked(t.tenant, t.jti),
 * })
 * ```
 */
export function tokenAuthenticator(opts: TokenAuthenticatorOptions): Authenticator {
  const resolve = keyResolver(opts.jwks)
  const maxBytes = opts.maxTokenBytes ?? DEFAULT_MAX_TOKEN_BYTES
  const audience = typeof opts.audience === 'string' ? opts.audience : [...opts.audience]
  return {
    async authenticate(call) {
      const token = readBearerToken(call.metadata)
      if (token === undefined) throw new M2msecError('ERR_UNAUTHENTICATED', 'missing bearer token')
      if (Buffer.byteLength(token) > maxBytes) {
        throw new M2msecError('ERR_TOKEN_INVALID', `token larger than ${maxBytes} bytes`)
      }
      let payload: JWTPayload
      let kid: string | undefined
      try {
        const result = await jwtVerify(token, (header) => resolve(header), {
          algorithms: ['ES256'],
          issuer: opts.issuer,
          audience,
          typ: ACCESS_TOKEN_TYP,
          requiredClaims: ['exp', 'iat', 'jti', 'sub'],
          clockTolerance: opts.clockToleranceSec ?? 5,
          ...(opts.now === undefined ? {} : { currentDate: opts.now() }),
        })
        payload = result.payload
        kid = result.protectedHeader.kid
      } catch (err) {
        throw verificationError(err)
      }
      const tenant = payload['tenant']
      if (typeof tenant !== 'string' || !TENANT_RE.test(tenant)) {
        throw new M2msecError('ERR_TOKEN_INVALID', 'token has no valid tenant claim')
      }
      if (opts.keyTenant !== undefined && opts.keyTenant(kid ?? '') !== tenant) {
        throw new M2msecError('ERR_TOKEN_INVALID', 'token tenant does not match its signing key')
      }
      const sub = payload.sub ?? ''
      const jti = payload.jti ?? ''
      if (sub === '' || jti === '') throw new M2msecError('ERR_TOKEN_INVALID', 'token has an empty sub or jti')
      const roles = rolesOf(payload['roles'])
      if (opts.isRevoked !== undefined) {
        const verified: VerifiedToken = { jti, tenant, sub, exp: payload.exp ?? 0, claims: payload }
        if (await opts.isRevoked(verified)) throw new M2msecError('ERR_TOKEN_REVOKED', 'token revoked')
      }
      return Object.freeze({ tenant, id: sub, roles: Object.freeze(roles), via: 'token' as const })
    },
  }
}

/** Options of {@link platformServiceAuthenticator}. */
export interface PlatformServiceOptions {
  /** The platform tenant. Default {@link PLATFORM_TENANT}. */
  readonly platformTenant?: string
}

/**
 * Lets platform services act for a tenant. When `inner` authenticates a principal of the
 * platform tenant (`_platform`) with role `service` (e.g. the mTLS certificate
 * `m2msec://_platform/authn`, `OU=role:service`), the call must carry exactly one
 * `m2msec-tenant` header naming a tenant (`[A-Za-z0-9][A-Za-z0-9._-]{0,127}`, so never the
 * platform tenant), and the principal becomes
 * `{ tenant, id: 'svc:<id>', roles: ['admin', 'service'], via }`: an admin of that tenant
 * whose audit records name the service. Every other principal is passed through unchanged;
 * if it sends the header, the header must name its own tenant (else ERR_PERMISSION_DENIED).
 *
 * This is how the authn service (one replica set for every tenant) uses each tenant's keys
 * in the tenant-scoped KMS. Only the platform's own CA should issue `_platform` identities.
 *
 * Errors: a platform service without a valid header ERR_UNAUTHENTICATED; the inner
 * authenticator's errors unchanged.
 *
 * @example
 * ```ts
 * const auth = platformServiceAuthenticator(chainAuthenticators(mtlsAuthenticator, tokenAuth))
 * // client: metadata.set('m2msec-tenant', 'acme') with certificate m2msec://_platform/authn
 * // -> { tenant: 'acme', id: 'svc:authn', roles: ['admin', 'service'], via: 'mtls' }
 * ```
 */
export function platformServiceAuthenticator(inner: Authenticator, opts: PlatformServiceOptions = {}): Authenticator {
  const platformTenant = opts.platformTenant ?? PLATFORM_TENANT
  return {
    async authenticate(call) {
      const principal = await inner.authenticate(call)
      const values = call.metadata.get(TENANT_METADATA)
      if (principal.tenant !== platformTenant || !principal.roles.includes(SERVICE_ROLE)) {
        if (values.length > 0 && !(values.length === 1 && values[0] === principal.tenant)) {
          throw new M2msecError('ERR_PERMISSION_DENIED', `only platform services may set ${TENANT_METADATA}`)
        }
        return principal
      }
      const tenant = values[0]
      if (values.length !== 1 || typeof tenant !== 'string' || !TENANT_RE.test(tenant)) {
        throw new M2msecError(
          'ERR_UNAUTHENTICATED',
          `a platform service must name the tenant it acts for in one ${TENANT_METADATA} header`,
        )
      }
      const acting: Principal = {
        tenant,
        id: `svc:${principal.id}`,
        roles: Object.freeze(['admin', SERVICE_ROLE]),
        via: principal.via,
      }
      return Object.freeze(acting)
    },
  }
}

/** Prefix of authn's per-tenant token signing keys in the KMS: `authn-signing-<tenant>`. */
export const AUTHN_SIGNING_KEY_PREFIX = 'authn-signing-'

/**
 * The tenant of an authn signing key, from its JWKS kid `authn-signing-<tenant>/<version>`
 * (docs/authn.md); undefined for any other kid. Pass it as `keyTenant` to {@link tokenAuthenticator}.
 */
export function authnSigningKeyTenant(kid: string): string | undefined {
  return /^authn-signing-(.+)\/[1-9][0-9]*$/.exec(kid)?.[1]
}
