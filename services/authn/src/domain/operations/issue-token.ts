/**
 * IssueToken, the token endpoint: verifies the client's assertion with the credential its
 * header names, accepts its jti once across all replicas, and returns an access token signed
 * by the tenant's KMS key together with a server proof (mutual authentication). Without an
 * assertion, the client authenticates with its TLS client certificate instead (RFC 8705
 * §2.1, PKI method): validated like an `x5c` chain, token bound to it by `cnf.x5t#S256`.
 *
 * Order matters: stateless checks first (no KMS or store round trip for garbage), then the
 * signature, and only then the jti claim, so an unauthenticated party can never use up
 * (or learn about) a legitimate client's jtis. Nothing is stored for a refused assertion.
 */
import { verify as verifySignature } from 'node:crypto'
import { M2msecError, isM2msecError } from '@m2msec/errors'
import { appendOrFail } from '../audit.ts'
import { parseAssertion, type ParsedAssertion } from '../assertion.ts'
import {
  parseDerCertificates,
  parsePemCertificates,
  validateChain,
  type ValidatedCertificate,
} from '../certificates.ts'
import { checkGbaSession, resolveGbaSession, withGbaSession } from '../gba.ts'
import { base32Id } from '../ids.ts'
import { jwkThumbprint, parsePublicJwk } from '../jwk.ts'
import {
  BTID_PATTERN,
  LIMITS,
  LOA,
  TENANT_ID_PATTERN,
  isGbaSession,
  type CredentialRecord,
  type EntityRecord,
  type TenantRecord,
} from '../model.ts'
import type { FloodGuard } from '../flood.ts'
import type { AuthnDeps } from '../ports.ts'
import type { Pseudonyms } from '../pseudonyms.ts'
import type { SigningKeys } from '../signing-keys.ts'
import { ACCESS_TOKEN_TYP, SERVER_PROOF_TYP, serverProofInput } from '../tokens.ts'
import { publishInBackground } from '../audit.ts'
import { updateEntity } from './entities.ts'

/** IssueToken input. */
export interface IssueTokenInput {
  readonly tenant: string
  readonly assertion: string
  /** '' = the default audience. */
  readonly audience: string
  /** '' = no proof-of-possession key. */
  readonly popPublicJwk: string
  /** The client's address (flood protection); absent = `unknown`. */
  readonly source?: string
  /** Only without an assertion: the entity the TLS client certificate must name. */
  readonly entityId?: string
  /**
   * DER of the TLS client certificate of the connection (leaf only), when the caller presented
   * one; used only when `assertion` is empty.
   */
  readonly clientCertificateDer?: Uint8Array
}

/** What IssueToken uses besides the ports. */
export interface IssueTokenServices {
  readonly signing: SigningKeys
  readonly flood: FloodGuard
  readonly pseudonyms: Pseudonyms
}

/** IssueToken output. */
export interface IssuedToken {
  readonly accessToken: string
  readonly tokenId: string
  readonly expiresAt: Date
  readonly loa: number
  /** `NONE` (proof '') for TLS client authentication: TLS already authenticated the server. */
  readonly proofType: 'HMAC_SHA256' | 'JWS_ES256' | 'NONE'
  readonly proof: string
}

const AUDIENCE = /^[\x21-\x7e]{1,256}$/

/** How the client authenticates: a signed assertion, or its TLS client certificate. */
type Via = 'assertion' | 'tls'

/**
 * A refusal that says little to the client (no hint whether the tenant, the entity or the
 * credential is unknown); the precise reason goes to the audit record only.
 */
function refused(reason: string, via: Via = 'assertion'): M2msecError {
  return new M2msecError(
    'ERR_TOKEN_INVALID',
    via === 'assertion'
      ? 'invalid assertion: unknown issuer, key or credential, or bad signature'
      : 'invalid client certificate: unknown tenant or entity, or the certificate is not valid for it',
    {},
    {
      cause: new Error(reason),
    },
  )
}

/** True when the credential is active and `now` is inside its validity window. */
export function usableAt(c: CredentialRecord, now: Date): boolean {
  if (c.state !== 'ACTIVE') return false
  if (Date.parse(c.notBefore) > now.getTime()) return false
  return c.notAfter === undefined || now.getTime() < Date.parse(c.notAfter)
}

async function validateForToken(
  chain: Parameters<typeof validateChain>[0],
  tenant: TenantRecord,
  entityId: string,
  now: Date,
  via: Via = 'assertion',
): Promise<ValidatedCertificate> {
  try {
    return await validateChain(chain, tenant.trustAnchors, entityId, now)
  } catch (err) {
    if (isM2msecError(err) && err.code === 'ERR_INVALID_ARGUMENT') throw refused(`certificate: ${err.message}`, via)
    throw err
  }
}

/**
 * What the assertion proved: which credential, and how to make the server proof. A GBA
 * session seen for the first time is registered once the signature verified (`register`).
 */
type Authenticated =
  | {
      readonly type: 'SYMMETRIC' | 'GBA'
      readonly kmsKeyId: string
      readonly register?: CredentialRecord
    }
  | { readonly type: 'CERTIFICATE'; readonly x5tS256: string }

async function verifyHs256(deps: AuthnDeps, tenant: TenantRecord, keyId: string, a: ParsedAssertion): Promise<void> {
  let ok: boolean
  try {
    ok = await deps.kms.verifyMac(tenant.id, keyId, a.signingInput, a.signature)
  } catch (err) {
    if (isM2msecError(err) && err.status !== 'UNAVAILABLE' && err.status !== 'INTERNAL') {
      throw refused(`credential key unusable: ${err.code}`)
    }
    throw err
  }
  if (!ok) throw refused('HS256 signature does not verify')
}

/** HS256 with kid = a B-TID: a registered GBA session, or one the BSF knows (gba.ts). */
async function verifyGba(
  deps: AuthnDeps,
  a: ParsedAssertion,
  tenant: TenantRecord,
  entity: EntityRecord,
  now: Date,
): Promise<Authenticated> {
  if (a.alg !== 'HS256') throw refused('a B-TID kid needs alg HS256')
  const btid = a.kid as string
  const known = entity.credentials.find((c) => c.id === btid && isGbaSession(c))
  if (known !== undefined) {
    const keyId = checkGbaSession(entity, known, now)
    await verifyHs256(deps, tenant, keyId, a)
    return { type: 'GBA', kmsKeyId: keyId }
  }
  const session = await resolveGbaSession(deps, tenant, entity, btid, now)
  await verifyHs256(deps, tenant, session.kmsKeyId as string, a)
  return { type: 'GBA', kmsKeyId: session.kmsKeyId as string, register: session }
}

async function registerGbaSession(deps: AuthnDeps, tenant: TenantRecord, entity: EntityRecord, c: CredentialRecord) {
  const now = deps.clock.now()
  await updateEntity(deps, { tenant: tenant.id, id: 'authn', roles: [] }, entity.id, (cur) => {
    if (cur.state !== 'ENABLED') throw refused('entity disabled')
    return withGbaSession(cur, c, now)
  })
  publishInBackground(deps, { type: 'credential.added', tenant: tenant.id, entityId: entity.id, credentialId: c.id })
}

async function verifyAssertion(
  deps: AuthnDeps,
  a: ParsedAssertion,
  tenant: TenantRecord,
  entity: EntityRecord,
  now: Date,
): Promise<Authenticated> {
  let certificate: ValidatedCertificate
  if (a.kid !== undefined) {
    if (BTID_PATTERN.test(a.kid)) return verifyGba(deps, a, tenant, entity, now)
    const cred = entity.credentials.find((c) => c.id === a.kid)
    if (cred === undefined) throw refused('unknown kid')
    if (!usableAt(cred, now)) throw refused('credential revoked or outside its validity window')
    if (cred.type === 'GBA') throw refused('a GBA subscription has no key: the kid must be a B-TID')
    if ((cred.type === 'SYMMETRIC' ? 'HS256' : 'ES256') !== a.alg)
      throw refused(`alg ${a.alg} does not fit a ${cred.type} credential`)
    if (cred.type === 'SYMMETRIC') {
      const keyId = cred.kmsKeyId as string
      await verifyHs256(deps, tenant, keyId, a)
      return { type: 'SYMMETRIC', kmsKeyId: keyId }
    }
    const chain = parsePemCertificates(cred.certificateChainPem ?? '', 'stored chain')
    certificate = await validateForToken(chain, tenant, entity.id, now)
  } else {
    let chain: ReturnType<typeof parseDerCertificates>
    try {
      chain = parseDerCertificates(a.x5c ?? [])
    } catch {
      throw refused('x5c is malformed')
    }
    certificate = await validateForToken(chain, tenant, entity.id, now)
  }
  const valid = verifySignature(
    'sha256',
    a.signingInput,
    { key: certificate.publicKey, dsaEncoding: 'ieee-p1363' },
    a.signature,
  )
  if (!valid) throw refused('ES256 signature does not verify')
  // After the signature: only the key holder learns that its certificate is revoked.
  await deps.revocation?.check(certificate.leaf, certificate.issuer)
  return { type: 'CERTIFICATE', x5tS256: certificate.sha256 }
}

/** What both ways of authenticating check first: audience, PoP key, tenant and entity. */
async function resolveRequest(
  deps: AuthnDeps,
  input: IssueTokenInput,
  entityId: string,
  via: Via,
): Promise<{ audience: string; jkt: string | undefined; tenant: TenantRecord; entity: EntityRecord }> {
  const s = deps.settings
  const audience = input.audience === '' ? s.defaultAudience : input.audience
  if (!AUDIENCE.test(audience) || audience.length > LIMITS.audienceChars) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'audience must be 1-256 printable ASCII characters', {
      field: 'audience',
    })
  }
  let jkt: string | undefined
  if (input.popPublicJwk !== '') {
    jkt = await jwkThumbprint(parsePublicJwk(input.popPublicJwk, 'pop_public_jwk'), 'pop_public_jwk')
  }
  const tenant = TENANT_ID_PATTERN.test(input.tenant) ? (await deps.tenants.get(input.tenant))?.value : undefined
  if (tenant === undefined || tenant.state !== 'ENABLED') throw refused('unknown or disabled tenant', via)
  const entity = (await deps.entities.get(tenant.id, entityId))?.value
  if (entity === undefined || entity.tenant !== tenant.id || entity.state !== 'ENABLED') {
    throw refused('unknown or disabled entity', via)
  }
  return { audience, jkt, tenant, entity }
}

/** Signs the access token `tokenId` (claims of docs/authn.md "Access token"). */
async function signAccessToken(
  deps: AuthnDeps,
  services: IssueTokenServices,
  r: { tenant: TenantRecord; entity: EntityRecord; audience: string; cnf: object | undefined; loa: number },
  t: { tokenId: string; iat: number; exp: number },
): Promise<string> {
  const s = deps.settings
  const { tokenId, iat, exp } = t
  const sub = await services.pseudonyms.subjectFor(r.tenant, r.entity, r.audience)
  const claims = {
    iss: s.issuer,
    sub,
    aud: r.audience,
    tenant: r.tenant.id,
    loa: r.loa,
    roles: r.entity.roles,
    ...(r.cnf === undefined ? {} : { cnf: r.cnf }),
    iat,
    exp,
    jti: tokenId,
  }
  return services.signing.sign(r.tenant, { typ: ACCESS_TOKEN_TYP }, claims)
}

/** A fresh token id and its times. */
function tokenTimes(deps: AuthnDeps, now: Date): { tokenId: string; iat: number; exp: number } {
  const iat = Math.floor(now.getTime() / 1000)
  return { tokenId: base32Id(deps.random), iat, exp: iat + deps.settings.tokenLifetimeSec }
}

async function run(
  deps: AuthnDeps,
  services: IssueTokenServices,
  input: IssueTokenInput,
  a: ParsedAssertion,
  now: Date,
): Promise<IssuedToken> {
  const signing = services.signing
  const s = deps.settings
  const { audience, jkt, tenant, entity } = await resolveRequest(deps, input, a.sub, 'assertion')
  if (a.cnfJkt !== undefined && a.cnfJkt !== jkt) {
    throw new M2msecError('ERR_TOKEN_INVALID', 'invalid assertion: cnf.jkt does not match pop_public_jwk')
  }

  const auth = await verifyAssertion(deps, a, tenant, entity, now)
  if (!(await deps.jti.claim(tenant.id, entity.id, a.jti))) {
    throw new M2msecError('ERR_REPLAY', 'assertion already used (jti)')
  }
  if (auth.type === 'GBA' && auth.register !== undefined) await registerGbaSession(deps, tenant, entity, auth.register)

  const cnf = jkt !== undefined ? { jkt } : auth.type === 'CERTIFICATE' ? { 'x5t#S256': auth.x5tS256 } : undefined
  const loa = LOA[auth.type]
  const times = tokenTimes(deps, now)
  const { tokenId, iat, exp } = times
  const [accessToken, proof] = await Promise.all([
    signAccessToken(deps, services, { tenant, entity, audience, cnf, loa }, times),
    auth.type !== 'CERTIFICATE'
      ? deps.kms
          .mac(tenant.id, auth.kmsKeyId, serverProofInput(a.jti, tokenId))
          .then((mac) => Buffer.from(mac).toString('base64url'))
      : signing.sign(
          tenant,
          { typ: SERVER_PROOF_TYP },
          { iss: s.issuer, aud: entity.id, ajti: a.jti, tjti: tokenId, iat },
        ),
  ])
  return {
    accessToken,
    tokenId,
    expiresAt: new Date(exp * 1000),
    loa,
    proofType: auth.type === 'CERTIFICATE' ? 'JWS_ES256' : 'HMAC_SHA256',
    proof,
  }
}

/**
 * Without an assertion: the TLS client certificate authenticates the entity `entityId`
 * (RFC 8705 §2.1). It validates exactly like an `x5c` chain of one certificate (tenant trust
 * anchors, validity, name binding, then the CRL); the token is bound to it (`cnf.x5t#S256`).
 * No jti and no server proof: the TLS handshake proved possession of the key and authenticated
 * the server. A certificate the development mTLS authenticator accepts is a platform identity
 * and passes only if the tenant made its CA a trust anchor.
 */
async function runTls(
  deps: AuthnDeps,
  services: IssueTokenServices,
  input: IssueTokenInput,
  entityId: string,
  der: Uint8Array,
  now: Date,
): Promise<IssuedToken> {
  if (input.popPublicJwk !== '') {
    throw new M2msecError(
      'ERR_INVALID_ARGUMENT',
      'pop_public_jwk: a TLS-authenticated token is bound to the client certificate',
      {
        field: 'pop_public_jwk',
      },
    )
  }
  const { audience, tenant, entity } = await resolveRequest(deps, input, entityId, 'tls')
  let chain: ReturnType<typeof parseDerCertificates>
  try {
    chain = parseDerCertificates([Buffer.from(der).toString('base64')])
  } catch {
    throw refused('client certificate is malformed', 'tls')
  }
  const certificate = await validateForToken(chain, tenant, entity.id, now, 'tls')
  await deps.revocation?.check(certificate.leaf, certificate.issuer)
  const loa = LOA.CERTIFICATE
  const times = tokenTimes(deps, now)
  const cnf = { 'x5t#S256': certificate.sha256 }
  const accessToken = await signAccessToken(deps, services, { tenant, entity, audience, cnf, loa }, times)
  return {
    accessToken,
    tokenId: times.tokenId,
    expiresAt: new Date(times.exp * 1000),
    loa,
    proofType: 'NONE',
    proof: '',
  }
}

/** The entity a TLS-authenticated request names; ERR_UNAUTHENTICATED without a certificate. */
function tlsEntity(input: IssueTokenInput): { entityId: string; der: Uint8Array } {
  const der = input.clientCertificateDer
  if (der === undefined || der.length === 0) {
    throw new M2msecError('ERR_UNAUTHENTICATED', 'IssueToken needs an assertion or a TLS client certificate')
  }
  const entityId = input.entityId ?? ''
  if (entityId.length === 0 || entityId.length > 256) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'entity_id (1-256 characters) is required without an assertion', {
      field: 'entity_id',
    })
  }
  return { entityId, der }
}

/** Statuses of a failed authentication (they count towards the back-off). */
const AUTH_FAILURES = new Set(['UNAUTHENTICATED', 'INVALID_ARGUMENT'])

/**
 * IssueToken. Every outcome is audited (principal = the assertion's `sub` or, with TLS client
 * authentication, the request's entity id; `anonymous` when there is neither; a refusal's
 * precise reason in `details.reason`). Flood protection (see flood.ts) runs first for the
 * source address and, once the request names an entity, for the entity; a failed attempt counts for both, and a back-off it starts is audited as
 * `authn.AuthBackoff`. Attempts refused by the flood protection are audited too, but never
 * verified.
 */
export async function issueToken(
  deps: AuthnDeps,
  services: IssueTokenServices,
  input: IssueTokenInput,
): Promise<IssuedToken> {
  const now = deps.clock.now()
  const source = input.source ?? 'unknown'
  const tenantId = TENANT_ID_PATTERN.test(input.tenant) ? input.tenant : '-'
  const base = {
    tenant: tenantId,
    principal: 'anonymous',
    action: 'authn.IssueToken',
    resource: 'token',
  }
  let entity: { tenant: string; id: string } | undefined
  try {
    services.flood.checkSource(source)
    let issued: IssuedToken
    if (input.assertion === '') {
      const tls = tlsEntity(input)
      base.principal = tls.entityId
      entity = { tenant: tenantId, id: tls.entityId }
      services.flood.checkEntity(tenantId, tls.entityId)
      issued = await runTls(deps, services, input, tls.entityId, tls.der, now)
    } else {
      if ((input.entityId ?? '') !== '') {
        throw new M2msecError(
          'ERR_INVALID_ARGUMENT',
          'entity_id must be empty with an assertion (sub names the entity)',
          {
            field: 'entity_id',
          },
        )
      }
      const a = parseAssertion(input.assertion, deps.settings, now)
      base.principal = a.sub
      entity = { tenant: tenantId, id: a.sub }
      services.flood.checkEntity(tenantId, a.sub)
      issued = await run(deps, services, input, a, now)
    }
    await services.flood.succeeded(tenantId, entity.id)
    await appendOrFail(deps, {
      ...base,
      resource: `token/${issued.tokenId}`,
      result: 'ok',
      details: { loa: issued.loa },
    })
    return issued
  } catch (err) {
    if (isM2msecError(err) && err.code !== 'ERR_AUDIT_UNAVAILABLE') {
      const reason = (err.cause instanceof Error ? err.cause.message : err.message).slice(0, 200)
      const denied = AUTH_FAILURES.has(err.status) || err.code === 'ERR_RATE_LIMITED'
      await appendOrFail(deps, {
        ...base,
        result: denied ? 'denied' : 'error',
        code: err.code,
        details: { reason, source },
      })
      if (AUTH_FAILURES.has(err.status)) await recordFailure(deps, services, base, source, entity)
    } else if (!isM2msecError(err)) {
      await appendOrFail(deps, { ...base, result: 'error', code: 'ERR_INTERNAL' })
    }
    throw err
  }
}

async function recordFailure(
  deps: AuthnDeps,
  services: IssueTokenServices,
  base: { tenant: string; principal: string },
  source: string,
  entity: { tenant: string; id: string } | undefined,
): Promise<void> {
  let backoffs: Array<{ scope: string; ms: number }>
  try {
    backoffs = await services.flood.failed(source, entity)
  } catch (err) {
    // The refusal stands either way; losing one failure count only weakens the back-off.
    deps.onBackgroundError?.(err)
    return
  }
  for (const b of backoffs) {
    await appendOrFail(deps, {
      ...base,
      action: 'authn.AuthBackoff',
      resource: b.scope === 'source' ? `source/${source}` : `entity/${entity?.id ?? ''}`,
      result: 'denied',
      code: 'ERR_RATE_LIMITED',
      details: { scope: b.scope, retryAfterMs: b.ms },
    })
  }
}
