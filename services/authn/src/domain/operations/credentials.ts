/**
 * AddCredential and RevokeCredential. Symmetric credentials are HMAC_SHA256 keys in the
 * tenant's KMS scope (generated, existing or imported); certificate credentials are PEM
 * chains validated against the tenant's trust anchors (and not revoked); GBA credentials bind
 * a subscriber's IMPI to the entity (its sessions are registered by IssueToken, gba.ts). Each
 * has a validity window, so a new credential can overlap the old one and rotation has no gap.
 */
import { M2msecError, isM2msecError } from '@m2msec/errors'
import { loadEnabledCallerTenant, loadEntity, requireAdmin } from '../access.ts'
import { audited, publishInBackground } from '../audit.ts'
import { parsePemCertificates, validateChain } from '../certificates.ts'
import { base32Id } from '../ids.ts'
import { parsePublicJwk } from '../jwk.ts'
import {
  CREDENTIAL_ID_PATTERN,
  IMPI_PATTERN,
  LIMITS,
  isGbaSession,
  type Caller,
  type CredentialRecord,
  type EntityRecord,
} from '../model.ts'
import type { AuthnDeps, KmsKeyInfo } from '../ports.ts'
import { updateEntity } from './entities.ts'

/** Where a symmetric credential key comes from. */
export type SymmetricSource =
  | { readonly kind: 'generate'; readonly deliverToPublicJwk?: string }
  | { readonly kind: 'kms'; readonly keyId: string }
  | { readonly kind: 'import'; readonly wrappedKey: string; readonly unwrappingKeyId: string }

/** AddCredential input. */
export interface AddCredentialInput {
  readonly entityId: string
  readonly credentialId?: string
  readonly notBefore?: Date
  readonly notAfter?: Date
  readonly credential:
    | { readonly type: 'SYMMETRIC'; readonly source: SymmetricSource }
    | { readonly type: 'CERTIFICATE'; readonly chainPem: string }
    | { readonly type: 'GBA'; readonly impi: string }
    | undefined
}

/** AddCredential output. */
export interface AddCredentialResult {
  readonly credential: CredentialRecord
  /** Only for generated keys delivered to a public JWK: the wrapped key (JWE). */
  readonly wrappedKey?: string
}

/** Revoked credentials kept per entity (newest first) for the record; older ones are dropped. */
const KEEP_REVOKED = 8

function invalid(message: string, field: string): M2msecError {
  return new M2msecError('ERR_INVALID_ARGUMENT', message, { field })
}

function requireHmacKey(key: KmsKeyInfo): void {
  if (key.algorithm !== 'HMAC_SHA256') throw invalid('the KMS key is not an HMAC_SHA256 key', 'kms_key_id')
  if (key.state !== 'ENABLED') throw invalid('the KMS key is not enabled', 'kms_key_id')
}

function withCredential(entity: EntityRecord, credential: CredentialRecord): EntityRecord {
  if (entity.credentials.some((c) => c.id === credential.id)) {
    throw new M2msecError('ERR_ALREADY_EXISTS', 'the entity has a credential with this id', {
      credentialId: credential.id,
    })
  }
  // GBA sessions have their own bound (gba.ts); they do not use up the entity's 16.
  const active = entity.credentials.filter((c) => c.state === 'ACTIVE')
  if (active.filter((c) => !isGbaSession(c)).length >= LIMITS.credentialsPerEntity) {
    throw new M2msecError('ERR_FAILED_PRECONDITION', 'the entity has 16 active credentials; revoke one first')
  }
  const revoked = entity.credentials
    .filter((c) => c.state === 'REVOKED')
    .sort((a, b) => (b.revokedAt ?? '').localeCompare(a.revokedAt ?? ''))
    .slice(0, KEEP_REVOKED)
  const kept = new Set([...active, ...revoked])
  return { ...entity, credentials: [...entity.credentials.filter((c) => kept.has(c)), credential] }
}

/** AddCredential (tenant admin): validates, creates or checks the key material, then appends the credential. */
export async function addCredential(
  deps: AuthnDeps,
  caller: Caller,
  input: AddCredentialInput,
): Promise<AddCredentialResult> {
  requireAdmin(caller, 'AddCredential')
  const credentialId = input.credentialId === undefined || input.credentialId === '' ? undefined : input.credentialId
  if (credentialId !== undefined && !CREDENTIAL_ID_PATTERN.test(credentialId)) {
    throw invalid(
      'credential id must be 1-128 characters of A-Z a-z 0-9 . _ - starting with a letter or digit',
      'credential_id',
    )
  }
  const spec = input.credential
  if (spec === undefined) throw invalid('credential is required', 'credential')
  if (
    input.notBefore !== undefined &&
    input.notAfter !== undefined &&
    input.notAfter.getTime() <= input.notBefore.getTime()
  ) {
    throw invalid('not_after must be after not_before', 'not_after')
  }
  if (spec.type === 'CERTIFICATE' && Buffer.byteLength(spec.chainPem) > LIMITS.chainPemBytes) {
    throw invalid('certificate chain is larger than 16 KiB', 'certificate')
  }
  if (spec.type === 'GBA' && !IMPI_PATTERN.test(spec.impi)) {
    throw invalid('impi must be 1-256 printable ASCII characters', 'gba.impi')
  }
  const deliverTo =
    spec.type === 'SYMMETRIC' && spec.source.kind === 'generate' && (spec.source.deliverToPublicJwk ?? '') !== ''
      ? spec.source.deliverToPublicJwk
      : undefined
  if (deliverTo !== undefined) parsePublicJwk(deliverTo, 'deliver_to_public_jwk', { p256Only: true })

  return audited(
    deps,
    caller,
    { action: 'authn.AddCredential', resource: `entity/${input.entityId}`, details: { type: spec.type } },
    async () => {
      const { value: tenant } = await loadEnabledCallerTenant(deps, caller)
      const { value: entity } = await loadEntity(deps, caller, input.entityId)
      if (entity.state !== 'ENABLED') throw new M2msecError('ERR_FAILED_PRECONDITION', 'entity is disabled')
      const id = credentialId ?? `cred-${base32Id(deps.random)}`
      if (entity.credentials.some((c) => c.id === id)) {
        throw new M2msecError('ERR_ALREADY_EXISTS', 'the entity has a credential with this id', { credentialId: id })
      }
      const now = deps.clock.now()
      let notBefore = input.notBefore ?? now
      let notAfter = input.notAfter
      let wrappedKey: string | undefined
      let material: Partial<CredentialRecord>

      if (spec.type === 'CERTIFICATE') {
        const chain = parsePemCertificates(spec.chainPem, 'certificate chain')
        const v = await validateChain(chain, tenant.trustAnchors, entity.id, now)
        if (v.notBefore.getTime() > notBefore.getTime()) notBefore = v.notBefore
        if (notAfter === undefined || v.notAfter.getTime() < notAfter.getTime()) notAfter = v.notAfter
        if (notAfter.getTime() <= notBefore.getTime()) throw invalid('the validity window is empty', 'not_after')
        await deps.revocation?.check(v.leaf, v.issuer)
        material = { certificateChainPem: v.chainPem, certificateSubject: v.subject, certificateSha256: v.sha256 }
      } else if (spec.type === 'GBA') {
        const impi = spec.impi
        if (entity.credentials.some((c) => c.type === 'GBA' && c.gbaImpi === impi && c.state === 'ACTIVE')) {
          throw new M2msecError('ERR_ALREADY_EXISTS', 'the entity has an active GBA credential for this IMPI')
        }
        material = { gbaImpi: impi }
      } else {
        const source = spec.source
        let key: KmsKeyInfo
        if (source.kind === 'kms') {
          key = await deps.kms.getKey(tenant.id, source.keyId)
          requireHmacKey(key)
        } else if (source.kind === 'import') {
          key = await deps.kms.importHmacKey(tenant.id, {
            wrappedKey: source.wrappedKey,
            unwrappingKeyId: source.unwrappingKeyId,
            purpose: 'm2msec authn symmetric credential',
            labels: { owner: 'm2msec-authn', credential: id },
          })
          requireHmacKey(key)
        } else {
          key = await deps.kms.createKey(tenant.id, {
            algorithm: 'HMAC_SHA256',
            exportable: deliverTo !== undefined,
            purpose: 'm2msec authn symmetric credential',
            labels: { owner: 'm2msec-authn', credential: id },
            secureEnvironment: tenant.secureEnvironment,
          })
          if (deliverTo !== undefined) wrappedKey = await deps.kms.wrapKeyForJwk(tenant.id, key.id, deliverTo)
        }
        material = { kmsKeyId: key.id, ...(source.kind === 'kms' ? {} : { generated: source.kind === 'generate' }) }
      }

      const credential: CredentialRecord = {
        id,
        type: spec.type,
        state: 'ACTIVE',
        notBefore: notBefore.toISOString(),
        ...(notAfter === undefined ? {} : { notAfter: notAfter.toISOString() }),
        ...material,
        createdAt: now.toISOString(),
      }
      await updateEntity(deps, caller, entity.id, (cur) => {
        if (cur.state !== 'ENABLED') throw new M2msecError('ERR_FAILED_PRECONDITION', 'entity is disabled')
        return withCredential(cur, credential)
      })
      publishInBackground(deps, {
        type: 'credential.added',
        tenant: caller.tenant,
        entityId: entity.id,
        credentialId: id,
      })
      return wrappedKey === undefined ? { credential } : { credential, wrappedKey }
    },
    { mutating: true },
  )
}

/** RevokeCredential (tenant admin): idempotent; the record stays for the audit trail. */
export async function revokeCredential(
  deps: AuthnDeps,
  caller: Caller,
  req: { entityId: string; credentialId: string },
): Promise<CredentialRecord> {
  requireAdmin(caller, 'RevokeCredential')
  return audited(
    deps,
    caller,
    { action: 'authn.RevokeCredential', resource: `entity/${req.entityId}/credential/${req.credentialId}` },
    async () => {
      const notFound = () => new M2msecError('ERR_NOT_FOUND', 'credential not found')
      let revoked: CredentialRecord | undefined
      try {
        await updateEntity(deps, caller, req.entityId, (cur) => {
          const found = cur.credentials.find((c) => c.id === req.credentialId)
          if (found === undefined) throw notFound()
          revoked =
            found.state === 'REVOKED'
              ? found
              : { ...found, state: 'REVOKED', revokedAt: deps.clock.now().toISOString() }
          const next = revoked
          return { ...cur, credentials: cur.credentials.map((c) => (c.id === next.id ? next : c)) }
        })
      } catch (err) {
        if (isM2msecError(err) && err.code === 'ERR_NOT_FOUND') throw notFound()
        throw err
      }
      const result = revoked as CredentialRecord
      publishInBackground(deps, {
        type: 'credential.revoked',
        tenant: caller.tenant,
        entityId: req.entityId,
        credentialId: req.credentialId,
      })
      return result
    },
    { mutating: true },
  )
}
