/**
 * Session keys (TS-0003 countermeasures against the exposure of long-term keys): a
 * short-lived key derived from an entity's long-term symmetric credential, so that traffic
 * protection never uses the credential itself and a leaked session key expires.
 *
 * The KMS derives it (DeriveKey, HKDF-SHA256) from the credential's HMAC key into a new
 * non-exportable HMAC_SHA256 key handle: the bytes never leave the secure environment. The
 * entity derives the same 32 bytes from its copy of the credential with
 *
 *   HKDF-SHA256(IKM = credential key, salt = 32 random bytes, info = "m2msec-session-key" 0x00
 *               tenant 0x00 entity-id 0x00 credential-id 0x00 session-id, L = 32)
 *
 * (RFC 5869; strings UTF-8). The response carries salt, info and session id, so both sides
 * compute it without further agreement. The key works until `expiresAt` (the policy's
 * session key lifetime, never beyond the credential's notAfter); then the sweeper schedules
 * its KMS key for destruction.
 */
import { M2msecError } from '@m2msec/errors'
import { isAdmin, loadEnabledCallerTenant, loadEntity } from '../access.ts'
import { audited } from '../audit.ts'
import { base32Id } from '../ids.ts'
import { retireKmsKey } from '../keys-lifecycle.ts'
import { LIMITS, SERVICE_ROLE, type Caller, type CredentialRecord, type SessionKeyRecord } from '../model.ts'
import type { AuthnDeps } from '../ports.ts'
import { usableAt } from './issue-token.ts'
import { effectivePolicy } from './policy.ts'

const LABEL = 'm2msec-session-key'
const GRANTEE = /^[\x21-\x7e]{1,256}$/

/** The HKDF info of a session key (see the module comment). */
export function sessionKeyInfo(tenant: string, entityId: string, credentialId: string, sessionId: string): Uint8Array {
  return new Uint8Array(Buffer.from([LABEL, tenant, entityId, credentialId, sessionId].join('\u0000'), 'utf8'))
}

/** DeriveSessionKey input. */
export interface DeriveSessionKeyInput {
  readonly entityId: string
  /** '' = the entity's newest usable symmetric credential. */
  readonly credentialId: string
  /** KMS principal entries that may MAC / VERIFY_MAC with the key; empty = authn only. */
  readonly grantees: readonly string[]
}

/** A derived session key (the handle; never the bytes). */
export interface DerivedSessionKey {
  readonly sessionId: string
  readonly kmsKeyId: string
  readonly credentialId: string
  readonly salt: Uint8Array
  readonly info: Uint8Array
  readonly expiresAt: Date
}

function chooseCredential(credentials: readonly CredentialRecord[], wanted: string, now: Date): CredentialRecord {
  if (wanted !== '') {
    const c = credentials.find((x) => x.id === wanted)
    if (c === undefined) throw new M2msecError('ERR_NOT_FOUND', 'credential not found')
    if (c.type !== 'SYMMETRIC') {
      throw new M2msecError('ERR_INVALID_ARGUMENT', 'session keys derive from SYMMETRIC credentials', {
        field: 'credential_id',
      })
    }
    if (!usableAt(c, now)) {
      throw new M2msecError('ERR_FAILED_PRECONDITION', 'the credential is revoked or outside its validity window')
    }
    return c
  }
  const usable = credentials
    .filter((c) => c.type === 'SYMMETRIC' && usableAt(c, now))
    .sort((a, b) => b.notBefore.localeCompare(a.notBefore) || b.createdAt.localeCompare(a.createdAt))
  const newest = usable[0]
  if (newest === undefined)
    throw new M2msecError('ERR_FAILED_PRECONDITION', 'the entity has no usable symmetric credential')
  return newest
}

/**
 * DeriveSessionKey: the entity itself, a tenant admin or a platform service; anyone else gets
 * ERR_NOT_FOUND, as for an unknown entity.
 */
export async function deriveSessionKey(
  deps: AuthnDeps,
  caller: Caller,
  input: DeriveSessionKeyInput,
): Promise<DerivedSessionKey> {
  if (
    input.grantees.length > LIMITS.sessionGrantees ||
    !input.grantees.every((g) => typeof g === 'string' && GRANTEE.test(g))
  ) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'grantees: at most 8 entries of 1-256 printable ASCII characters', {
      field: 'grantees',
    })
  }
  if (!isAdmin(caller) && !caller.roles.includes(SERVICE_ROLE) && caller.id !== input.entityId) {
    throw new M2msecError('ERR_NOT_FOUND', 'entity not found')
  }
  return audited(
    deps,
    caller,
    { action: 'authn.DeriveSessionKey', resource: `entity/${input.entityId}` },
    async () => {
      const { value: tenant } = await loadEnabledCallerTenant(deps, caller)
      const { value: entity } = await loadEntity(deps, caller, input.entityId)
      if (entity.state !== 'ENABLED') throw new M2msecError('ERR_FAILED_PRECONDITION', 'entity is disabled')
      const now = deps.clock.now()
      const credential = chooseCredential(entity.credentials, input.credentialId, now)
      const lifetimeMs = effectivePolicy(deps, tenant, entity).sessionKeyLifetimeSec * 1000
      const credentialEnd = credential.notAfter === undefined ? Infinity : Date.parse(credential.notAfter)
      const expiresAt = new Date(Math.min(now.getTime() + lifetimeMs, credentialEnd))
      const sessionId = base32Id(deps.random)
      const salt = deps.random.bytes(32)
      const info = sessionKeyInfo(tenant.id, entity.id, credential.id, sessionId)
      const key = await deps.kms.deriveHmacKey(
        tenant.id,
        credential.kmsKeyId as string,
        { salt, info },
        {
          purpose: 'm2msec authn session key',
          labels: { owner: 'm2msec-authn', session: sessionId, 'expires-at': expiresAt.toISOString() },
          grantees: input.grantees,
        },
      )
      const record: SessionKeyRecord = {
        tenant: tenant.id,
        sessionId,
        entityId: entity.id,
        credentialId: credential.id,
        kmsKeyId: key.id,
        expiresAt: expiresAt.toISOString(),
        createdAt: now.toISOString(),
      }
      try {
        await deps.sessions.create(record)
      } catch (err) {
        // Without its record nobody would retire the key: retire it now.
        await retireKmsKey(deps, tenant.id, key.id).catch((e: unknown) => deps.onBackgroundError?.(e))
        throw err
      }
      return { sessionId, kmsKeyId: key.id, credentialId: credential.id, salt, info, expiresAt }
    },
    { mutating: true },
  )
}
