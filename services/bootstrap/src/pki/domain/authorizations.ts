/**
 * CreateEnrolmentAuthorization: a one-time token `<id>.<secret>` that lets one EST
 * simpleenroll request a subset of the given names before it expires. Only SHA-256(secret) is
 * stored; the check compares in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { M2msecError } from '@m2msec/errors'
import { kvKey } from '@m2msec/bus'
import { normalizeNames, type SubjectNames } from '@m2msec/pki'
import { loadCa, requireAdmin } from './ca.ts'
import type { AuthorizationRecord, Caller, PkiContext, Versioned } from './model.ts'

/** Default and largest token lifetime. */
export const DEFAULT_TOKEN_TTL_SEC = 86_400
export const MAX_TOKEN_TTL_SEC = 30 * 86_400

const ID_RE = /^[a-f0-9]{32}$/
const SECRET_RE = /^[A-Za-z0-9_-]{43}$/

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex')
}

/**
 * Creates an enrolment authorization. Admin only; names are validated against the CA domain
 * (ERR_INVALID_ARGUMENT / ERR_PERMISSION_DENIED) before anything is stored.
 *
 * @example
 * ```ts
 * const { token } = await createEnrolmentAuthorization(ctx, admin, { names: { uris: [aeId], dnsNames: [] }, ttlSec: 3600 })
 * ```
 */
export async function createEnrolmentAuthorization(
  ctx: PkiContext,
  caller: Caller,
  input: { names: SubjectNames; ttlSec: number },
): Promise<{ record: AuthorizationRecord; token: string }> {
  requireAdmin(caller, 'CreateEnrolmentAuthorization')
  const ttl = input.ttlSec === 0 ? DEFAULT_TOKEN_TTL_SEC : input.ttlSec
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TOKEN_TTL_SEC) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', `ttl_seconds must be 1..${MAX_TOKEN_TTL_SEC}`)
  }
  const ca = await loadCa(ctx, caller.tenant)
  const allowed = normalizeNames(input.names, ca.value.domain)
  const now = ctx.clock.now()
  const id = Buffer.from(ctx.random.bytes(16)).toString('hex')
  const secret = Buffer.from(ctx.random.bytes(32)).toString('base64url')
  const record: AuthorizationRecord = {
    tenant: caller.tenant,
    id,
    secretHash: hashSecret(secret),
    allowed,
    expiresAt: new Date(now.getTime() + ttl * 1000).toISOString(),
    state: 'active',
    createdBy: caller.id,
    createdAt: now.toISOString(),
  }
  await ctx.store.authorizations.create(kvKey(caller.tenant, id), record)
  return { record, token: `${id}.${secret}` }
}

/**
 * Checks a token for `tenant`: ERR_TOKEN_INVALID (malformed, unknown, wrong secret),
 * ERR_REPLAY (already used), ERR_TOKEN_EXPIRED. Returns the record at its revision, for the
 * revision-checked consumption after the CSR passed its checks.
 */
export async function checkEnrolmentToken(
  ctx: PkiContext,
  tenant: string,
  id: string,
  secret: string,
): Promise<Versioned<AuthorizationRecord>> {
  if (!ID_RE.test(id) || !SECRET_RE.test(secret)) {
    throw new M2msecError('ERR_TOKEN_INVALID', 'malformed enrolment token')
  }
  const found = await ctx.store.authorizations.get(kvKey(tenant, id))
  const expected = Buffer.from(found?.value.secretHash ?? '0'.repeat(64), 'hex')
  const actual = Buffer.from(hashSecret(secret), 'hex')
  if (found === undefined || found.value.tenant !== tenant || !timingSafeEqual(expected, actual)) {
    throw new M2msecError('ERR_TOKEN_INVALID', 'unknown enrolment token')
  }
  if (found.value.state === 'used') throw new M2msecError('ERR_REPLAY', 'the enrolment token was already used')
  if (Date.parse(found.value.expiresAt) <= ctx.clock.now().getTime()) {
    throw new M2msecError('ERR_TOKEN_EXPIRED', 'the enrolment token expired')
  }
  return found
}

/**
 * Marks the token used for `serial` if nobody used it since it was read; ERR_REPLAY when a
 * concurrent enrolment won.
 */
export async function consumeEnrolmentToken(
  ctx: PkiContext,
  found: Versioned<AuthorizationRecord>,
  serial: string,
): Promise<Versioned<AuthorizationRecord>> {
  const used: AuthorizationRecord = {
    ...found.value,
    state: 'used',
    certificateSerial: serial,
    usedAt: ctx.clock.now().toISOString(),
  }
  try {
    const revision = await ctx.store.authorizations.update(
      kvKey(found.value.tenant, found.value.id),
      used,
      found.revision,
    )
    return { value: used, revision }
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_REVISION_CONFLICT') {
      throw new M2msecError('ERR_REPLAY', 'the enrolment token was already used')
    }
    throw err
  }
}

/** Puts a consumed token back (issuance failed after it was consumed). Best effort. */
export async function restoreEnrolmentToken(
  ctx: PkiContext,
  original: AuthorizationRecord,
  consumed: Versioned<AuthorizationRecord>,
): Promise<void> {
  await ctx.store.authorizations
    .update(kvKey(original.tenant, original.id), original, consumed.revision)
    .catch(() => undefined)
}
