/**
 * GBA credentials (3GPP TS 33.220 with authn as the NAF; oneM2M GBA RSPF, TS-0003 §8.3.2.3,
 * with authn as the MAF): an admin binds a subscriber's IMPI to an entity (a GBA
 * subscription credential). The device bootstraps with the BSF, derives Km = Ks_NAF for
 * authn's MAF FQDN and signs an HS256 assertion with it, `kid` = its B-TID (KmID).
 *
 * The first time authn sees a B-TID it asks the BSF over Zn (port GbaZn) for Km of that
 * session in the assertion's tenant: a KMS key handle whose usage policy lets authn MAC and
 * VERIFY_MAC. The BSF answers only for sessions of that tenant, so another tenant's B-TID is
 * unknown. The session's IMPI must be that of a usable subscription of the entity. Once the
 * signature verified, authn registers the session as a credential of the entity (id = the
 * B-TID, key = the handle, window = the session's lifetime), so later assertions need no Zn
 * call and admins see (and may revoke) each session. Expired sessions are dropped when a new
 * one is added; at most LIMITS.gbaSessions are kept (the oldest goes first: it is looked up
 * again if used). A revoked session is kept until it expires, so it cannot be re-registered.
 */
import { M2msecError, isM2msecError } from '@m2msec/errors'
import { LIMITS, isGbaSession, type CredentialRecord, type EntityRecord, type TenantRecord } from './model.ts'
import type { AuthnDeps } from './ports.ts'

function refused(reason: string): M2msecError {
  return new M2msecError(
    'ERR_TOKEN_INVALID',
    'invalid assertion: unknown issuer, key or credential, or bad signature',
    {},
    { cause: new Error(reason) },
  )
}

function expired(): M2msecError {
  return new M2msecError('ERR_TOKEN_EXPIRED', 'the GBA bootstrapping session (B-TID) has expired; bootstrap again')
}

function usable(c: CredentialRecord, now: Date): boolean {
  if (c.state !== 'ACTIVE' || Date.parse(c.notBefore) > now.getTime()) return false
  return c.notAfter === undefined || now.getTime() < Date.parse(c.notAfter)
}

/** The entity's usable GBA subscription credential for `impi`, if any. */
function subscriptionFor(entity: EntityRecord, impi: string | undefined, now: Date): CredentialRecord | undefined {
  return entity.credentials.find((c) => c.type === 'GBA' && !isGbaSession(c) && c.gbaImpi === impi && usable(c, now))
}

/**
 * Checks a GBA session credential the entity already has: its subscription still usable, the
 * session not revoked or expired. Returns the key handle.
 */
export function checkGbaSession(entity: EntityRecord, session: CredentialRecord, now: Date): string {
  if (session.state !== 'ACTIVE') throw refused('GBA session revoked')
  if (session.notAfter !== undefined && now.getTime() >= Date.parse(session.notAfter)) throw expired()
  const sub = subscriptionFor(entity, session.gbaImpi, now)
  if (sub === undefined || sub.id !== session.gbaSubscriptionId) throw refused('GBA subscription not usable')
  return session.kmsKeyId as string
}

/**
 * Asks the BSF for the session of `btid` and checks it against the entity's subscriptions.
 * Returns the credential to register once the signature verified.
 */
export async function resolveGbaSession(
  deps: AuthnDeps,
  tenant: TenantRecord,
  entity: EntityRecord,
  btid: string,
  now: Date,
): Promise<CredentialRecord> {
  const hasSubscription = entity.credentials.some((c) => c.type === 'GBA' && !isGbaSession(c) && usable(c, now))
  if (!hasSubscription) throw refused('unknown kid (no usable GBA subscription)')
  if (deps.gba === undefined) throw refused('GBA is not configured (no Zn to a BSF)')
  let key
  try {
    key = await deps.gba.mafKey(tenant.id, btid)
  } catch (err) {
    if (isM2msecError(err)) {
      if (err.code === 'ERR_FAILED_PRECONDITION' && err.details['reason'] === 'BTID_EXPIRED') throw expired()
      if (err.status === 'NOT_FOUND') throw refused('B-TID unknown to the BSF (or of another tenant)')
      if (err.status === 'PERMISSION_DENIED') throw refused('the BSF Zn policy does not let authn fetch Km')
      if (err.status === 'INVALID_ARGUMENT') throw refused('the BSF refused the B-TID')
    }
    throw err
  }
  if (key.expiresAt.getTime() <= now.getTime()) throw expired()
  const sub = subscriptionFor(entity, key.impi, now)
  if (sub === undefined) throw refused('B-TID of a subscriber not bound to the entity')
  return {
    id: btid,
    type: 'GBA',
    state: 'ACTIVE',
    notBefore: key.bootstrappedAt.toISOString(),
    notAfter: key.expiresAt.toISOString(),
    kmsKeyId: key.keyId,
    gbaImpi: key.impi,
    gbaSubscriptionId: sub.id,
    createdAt: now.toISOString(),
  }
}

/**
 * The entity with `session` added: expired sessions dropped, then the oldest active ones while
 * more than LIMITS.gbaSessions would remain. Unchanged when the session is already there.
 */
export function withGbaSession(entity: EntityRecord, session: CredentialRecord, now: Date): EntityRecord {
  if (entity.credentials.some((c) => c.id === session.id)) return entity
  const live = (c: CredentialRecord) =>
    !isGbaSession(c) || c.notAfter === undefined || Date.parse(c.notAfter) > now.getTime()
  let credentials = entity.credentials.filter(live)
  let sessions = credentials.filter(isGbaSession)
  while (sessions.length >= LIMITS.gbaSessions) {
    const oldest = sessions
      .filter((c) => c.state === 'ACTIVE')
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt))[0]
    if (oldest === undefined) throw refused('too many revoked GBA sessions')
    credentials = credentials.filter((c) => c !== oldest)
    sessions = sessions.filter((c) => c !== oldest)
  }
  return { ...entity, credentials: [...credentials, session] }
}
