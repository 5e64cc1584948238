/** Introspect, RevokeToken, RotateSigningKey and the published key sets (JWKS). */
import { decodeProtectedHeader, importJWK, jwtVerify, type JWK, type JWTPayload } from 'jose'
import { M2msecError } from '@m2msec/errors'
import { isAdmin, loadEnabledCallerTenant, requireAdmin } from '../access.ts'
import { audited, publishInBackground } from '../audit.ts'
import { SERVICE_ROLE, TENANT_ID_PATTERN, type Caller, type TenantRecord } from '../model.ts'
import type { AuthnDeps } from '../ports.ts'
import { isPseudonym } from '../pseudonyms.ts'
import type { SigningKeys } from '../signing-keys.ts'
import { ACCESS_TOKEN_TYP, parseSigningKid } from '../tokens.ts'

/** The claims of an active token, as Introspect reports them. */
export interface TokenClaims {
  readonly iss: string
  readonly sub: string
  readonly aud: string[]
  readonly tenant: string
  readonly loa: number
  readonly roles: string[]
  readonly iat: number
  readonly exp: number
  readonly jti: string
  readonly cnfJkt?: string
  readonly cnfX5tS256?: string
}

const INACTIVE = Object.freeze({ active: false as const })
const JTI = /^[\x21-\x7e]{1,128}$/

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : []
}

function claimsOf(p: JWTPayload): TokenClaims | undefined {
  const tenant = p['tenant']
  const loa = p['loa']
  if (typeof tenant !== 'string' || typeof loa !== 'number' || p.sub === undefined || p.jti === undefined)
    return undefined
  if (p.iat === undefined || p.exp === undefined || p.iss === undefined) return undefined
  const cnf = (typeof p['cnf'] === 'object' && p['cnf'] !== null ? p['cnf'] : {}) as Record<string, unknown>
  const jkt = cnf['jkt']
  const x5t = cnf['x5t#S256']
  return {
    iss: p.iss,
    sub: p.sub,
    aud: strings(p.aud),
    tenant,
    loa,
    roles: strings(p['roles']),
    iat: p.iat,
    exp: p.exp,
    jti: p.jti,
    ...(typeof jkt === 'string' ? { cnfJkt: jkt } : {}),
    ...(typeof x5t === 'string' ? { cnfX5tS256: x5t } : {}),
  }
}

/** Introspect's answer: the claims, and the entity behind them when the caller may know it. */
export type IntrospectResult =
  { readonly active: false } | { readonly active: true; readonly claims: TokenClaims; readonly entityId: string }

/**
 * Introspect: a token is active when it is an ES256 access token of this issuer, signed by a
 * published key of the tenant it names, not expired, not revoked, and its tenant and entity
 * are enabled. Callers of another tenant, and callers that are neither admin, a service, the
 * token's entity nor a relying party it is addressed to (caller id in `aud`), always see
 * `active: false` (RFC 7662 §4: no information leaks). `entityId` is the entity behind a
 * pairwise `sub`: given to admins, services and the entity itself, never to a relying party
 * (for which the pseudonym is the entity).
 */
export async function introspect(
  deps: AuthnDeps,
  signing: SigningKeys,
  caller: Caller,
  token: string,
): Promise<IntrospectResult> {
  if (typeof token !== 'string' || token.length === 0 || Buffer.byteLength(token) > deps.settings.maxAssertionBytes) {
    return INACTIVE
  }
  let header: ReturnType<typeof decodeProtectedHeader>
  let claimedTenant: unknown
  try {
    header = decodeProtectedHeader(token)
    claimedTenant = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'))?.tenant
  } catch {
    return INACTIVE
  }
  const kid = parseSigningKid(header.kid)
  if (kid === undefined || typeof claimedTenant !== 'string' || !TENANT_ID_PATTERN.test(claimedTenant)) return INACTIVE
  if (claimedTenant !== caller.tenant) return INACTIVE
  const tenant = (await deps.tenants.get(claimedTenant))?.value
  if (tenant === undefined || tenant.state !== 'ENABLED' || tenant.signingKeyId !== kid.keyId) return INACTIVE
  const jwk = (await signing.publicJwks(tenant)).find((k) => k.kid === header.kid)
  if (jwk === undefined) return INACTIVE
  let payload: JWTPayload
  try {
    const key = await importJWK(jwk, 'ES256')
    payload = (
      await jwtVerify(token, key, {
        algorithms: ['ES256'],
        issuer: deps.settings.issuer,
        typ: ACCESS_TOKEN_TYP,
        currentDate: deps.clock.now(),
      })
    ).payload
  } catch {
    return INACTIVE
  }
  const claims = claimsOf(payload)
  if (claims === undefined || claims.tenant !== tenant.id) return INACTIVE
  if (deps.revocations.isRevoked(tenant.id, claims.jti)) return INACTIVE
  let entityId = claims.sub
  if (isPseudonym(claims.sub)) {
    const found = await deps.pseudonyms.resolve(tenant.id, claims.sub)
    if (found === undefined || !claims.aud.includes(found.audience)) return INACTIVE
    entityId = found.entityId
  }
  const privileged = isAdmin(caller) || caller.roles.includes(SERVICE_ROLE) || caller.id === entityId
  if (!privileged && !claims.aud.includes(caller.id)) return INACTIVE
  const entity = (await deps.entities.get(tenant.id, entityId))?.value
  if (entity === undefined || entity.state !== 'ENABLED') return INACTIVE
  return { active: true, claims, entityId: privileged || entityId === claims.sub ? entityId : '' }
}

/**
 * RevokeToken: records the jti in the shared revocation store (kept as long as a token can
 * live) and announces it on the bus. Idempotent.
 */
export async function revokeToken(deps: AuthnDeps, caller: Caller, tokenId: string): Promise<void> {
  requireAdmin(caller, 'RevokeToken')
  if (typeof tokenId !== 'string' || !JTI.test(tokenId)) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'token_id must be 1-128 printable ASCII characters', {
      field: 'token_id',
    })
  }
  await audited(
    deps,
    caller,
    { action: 'authn.RevokeToken', resource: `token/${tokenId}` },
    async () => {
      const now = deps.clock.now()
      // The jti alone does not tell the token's expiry; no token lives longer than this.
      const exp = Math.floor(now.getTime() / 1000) + deps.settings.tokenLifetimeSec + deps.settings.clockSkewSec
      await deps.revocations.revoke({
        tenant: caller.tenant,
        jti: tokenId,
        exp,
        revokedAt: now.toISOString(),
        revokedBy: caller.id,
      })
      publishInBackground(deps, { type: 'token.revoked', tenant: caller.tenant, jti: tokenId, exp })
    },
    { mutating: true },
  )
}

/** RotateSigningKey: a new primary version in the KMS; caches of every replica are dropped. */
export async function rotateSigningKey(
  deps: AuthnDeps,
  signing: SigningKeys,
  caller: Caller,
): Promise<{ keyId: string; version: number }> {
  requireAdmin(caller, 'RotateSigningKey')
  return audited(
    deps,
    caller,
    { action: 'authn.RotateSigningKey', resource: `tenant/${caller.tenant}` },
    async () => {
      const { value: tenant } = await loadEnabledCallerTenant(deps, caller)
      const key = await deps.kms.rotateKey(tenant.id, tenant.signingKeyId)
      signing.invalidate(tenant.id)
      publishInBackground(deps, {
        type: 'signing-key.rotated',
        tenant: tenant.id,
        keyId: key.id,
        version: key.primaryVersion,
      })
      return { keyId: key.id, version: key.primaryVersion }
    },
    { mutating: true },
  )
}

/** The JWKS of one enabled tenant; undefined for an unknown or disabled tenant. */
export async function tenantJwks(
  deps: AuthnDeps,
  signing: SigningKeys,
  tenantId: string,
): Promise<{ keys: JWK[] } | undefined> {
  if (!TENANT_ID_PATTERN.test(tenantId)) return undefined
  const tenant = (await deps.tenants.get(tenantId))?.value
  if (tenant === undefined || tenant.state !== 'ENABLED') return undefined
  return { keys: await signing.publicJwks(tenant) }
}

/** The JWKS of every enabled tenant (kids are unique: the key id names the tenant). */
export async function platformJwks(deps: AuthnDeps, signing: SigningKeys): Promise<{ keys: JWK[] }> {
  const tenants: TenantRecord[] = []
  let after: string | undefined
  do {
    const page = await deps.tenants.list({ limit: 1000, ...(after === undefined ? {} : { after }) })
    tenants.push(...page.items.filter((t) => t.state === 'ENABLED'))
    after = page.next
  } while (after !== undefined)
  const sets = await Promise.all(tenants.map((t) => signing.publicJwks(t)))
  return { keys: sets.flat() }
}
