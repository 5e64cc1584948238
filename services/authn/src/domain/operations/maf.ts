/**
 * The MAF procedures of TS-0003 §8.8 over gRPC: MAF client registration (§8.8.2.3), key
 * registration with one or more targets (§8.8.2.7), key retrieval by a target (§8.8.2.8),
 * key registration update and de-registration.
 *
 * The "MAF handshake" is the caller's authentication to this service (an access token or an
 * mTLS identity): the authenticated principal id is the MAF client id, an entity of the
 * caller's tenant. Keys are generated in the KMS (HMAC_SHA256, 32 bytes, exportable only so
 * that the KMS can wrap them) and leave it only wrapped (JWE ECDH-ES+A256KW, A256GCM) for the
 * P-256 public key the source or a target names in its request. The key identifier, the TLS
 * `psk_identity` of MAF-based SAEF, is `RelativeKeyID@MAF-FQDN` with RelativeKeyID the
 * hexBinary of 16 random bytes (§10.3.5).
 *
 * Anything a caller may not see (a key it is not a target of, an unknown, expired or
 * deregistered key, another tenant's key) is ERR_NOT_FOUND, so key ids cannot be probed.
 */
import { M2msecError, isM2msecError } from '@m2msec/errors'
import { isAdmin, loadEnabledCallerTenant, loadEntity } from '../access.ts'
import { audited, publishInBackground } from '../audit.ts'
import { validateEntityId } from '../entity-ids.ts'
import { base32Id } from '../ids.ts'
import { parsePublicJwk } from '../jwk.ts'
import { retireKmsKey } from '../keys-lifecycle.ts'
import { ENTITY_KINDS, LIMITS, MAF_SUIDS, type Caller, type MafClientRecord, type MafKeyRecord } from '../model.ts'
import type { AuthnDeps, Versioned } from '../ports.ts'

const FQDN =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/
const RELATIVE_KEY_ID = /^[0-9a-f]{32}$/

function invalid(message: string, field: string): M2msecError {
  return new M2msecError('ERR_INVALID_ARGUMENT', message, { field })
}

function keyNotFound(): M2msecError {
  return new M2msecError('ERR_NOT_FOUND', 'MAF key not found')
}

function clientNotFound(): M2msecError {
  return new M2msecError('ERR_NOT_FOUND', 'MAF client registration not found')
}

function expired(record: { expiresAt: string }, now: Date): boolean {
  return Date.parse(record.expiresAt) <= now.getTime()
}

/** The client a request is about: the caller itself, or (admins only) the one it names. */
function clientOf(caller: Caller, requested: string, action: string): string {
  if (requested === '' || requested === caller.id) return caller.id
  if (!isAdmin(caller))
    throw new M2msecError('ERR_PERMISSION_DENIED', `${action} for another client needs the admin role`)
  return requested
}

function validateExpiration(when: Date | undefined, now: Date, maxSec: number, field: string): Date {
  if (when === undefined || Number.isNaN(when.getTime())) throw invalid(`${field} is required`, field)
  if (when.getTime() <= now.getTime()) throw invalid(`${field} must be in the future`, field)
  if (when.getTime() > now.getTime() + maxSec * 1000) throw invalid(`${field} is more than ${maxSec} s ahead`, field)
  return when
}

function validateLabels(labels: readonly string[], field: string): string[] {
  if (
    labels.length > LIMITS.mafLabels ||
    !labels.every((l) => l.length > 0 && Buffer.byteLength(l) <= LIMITS.labelBytes)
  ) {
    throw invalid(`${field}: at most ${LIMITS.mafLabels} non-empty labels of at most 256 bytes`, field)
  }
  return [...labels]
}

function validateFqdn(fqdn: string, field: string): string {
  if (!FQDN.test(fqdn)) throw invalid(`${field} must be a DNS name`, field)
  return fqdn
}

/** True for a oneM2M identifier of any entity kind (AE, CSE, node). */
function isOneM2mId(id: string): boolean {
  return ENTITY_KINDS.some((kind) => {
    try {
      validateEntityId(kind, id)
      return true
    } catch {
      return false
    }
  })
}

/** SAEF (32) and ESPrim (33) keys have exactly one target, ESData keys (34, 35) 1-64. */
function validateTargets(suid: number, targets: readonly string[]): string[] {
  const single = suid === 32 || suid === 33
  const max = single ? 1 : LIMITS.mafTargets
  if (targets.length === 0 || targets.length > max) {
    throw invalid(single ? `SUID ${suid} needs exactly one target` : `1-${max} targets`, 'target_ids')
  }
  if (new Set(targets).size !== targets.length) throw invalid('target ids must be distinct', 'target_ids')
  for (const t of targets) {
    if (!isOneM2mId(t)) throw invalid('a target id is not a oneM2M AE, CSE or node id', 'target_ids')
  }
  return [...targets]
}

/** A non-expired registration of a MAF client, or undefined. */
async function activeClient(
  deps: AuthnDeps,
  tenant: string,
  clientId: string,
): Promise<Versioned<MafClientRecord> | undefined> {
  const found = await deps.mafClients.get(tenant, clientId)
  return found === undefined || expired(found.value, deps.clock.now()) ? undefined : found
}

/** The key identifier (`psk_identity`) of a registration. */
export function mafKeyIdentifier(deps: Pick<AuthnDeps, 'settings'>, relativeKeyId: string): string {
  return `${relativeKeyId}@${deps.settings.maf.fqdn}`
}

/** RegisterMafClient input. */
export interface RegisterMafClientInput {
  readonly clientId: string
  readonly expirationTime: Date | undefined
  readonly labels: readonly string[]
  readonly adminFqdn: string
}

/** MAF Client Registration: creates or replaces the registration of an enabled entity. */
export async function registerMafClient(
  deps: AuthnDeps,
  caller: Caller,
  input: RegisterMafClientInput,
): Promise<MafClientRecord> {
  const clientId = clientOf(caller, input.clientId, 'RegisterMafClient')
  const now = deps.clock.now()
  const expiresAt = validateExpiration(
    input.expirationTime,
    now,
    deps.settings.maf.maxClientLifetimeSec,
    'expiration_time',
  )
  const labels = validateLabels(input.labels, 'labels')
  const adminFqdn = validateFqdn(input.adminFqdn, 'admin_fqdn')
  return audited(
    deps,
    caller,
    { action: 'authn.RegisterMafClient', resource: `maf-client/${clientId}` },
    async () => {
      await loadEnabledCallerTenant(deps, caller)
      const { value: entity } = await loadEntity(deps, caller, clientId)
      if (entity.state !== 'ENABLED') throw new M2msecError('ERR_FAILED_PRECONDITION', 'entity is disabled')
      const previous = await deps.mafClients.get(caller.tenant, clientId)
      const record: MafClientRecord = {
        tenant: caller.tenant,
        clientId,
        registrationId: base32Id(deps.random),
        expiresAt: expiresAt.toISOString(),
        labels,
        adminFqdn,
        createdAt: previous?.value.createdAt ?? now.toISOString(),
        updatedAt: now.toISOString(),
      }
      await deps.mafClients.put(record)
      return record
    },
    { mutating: true },
  )
}

/** MAF Client Configuration Retrieval. Another client's registration: admins only (else NOT_FOUND). */
export async function getMafClient(deps: AuthnDeps, caller: Caller, requested: string): Promise<MafClientRecord> {
  const clientId = requested === '' ? caller.id : requested
  if (clientId !== caller.id && !isAdmin(caller)) throw clientNotFound()
  const found = await activeClient(deps, caller.tenant, clientId)
  if (found === undefined) throw clientNotFound()
  return found.value
}

/** MAF Client De-Registration. */
export async function deregisterMafClient(deps: AuthnDeps, caller: Caller, requested: string): Promise<void> {
  const clientId = requested === '' ? caller.id : requested
  if (clientId !== caller.id && !isAdmin(caller)) throw clientNotFound()
  await audited(
    deps,
    caller,
    { action: 'authn.DeregisterMafClient', resource: `maf-client/${clientId}` },
    async () => {
      const found = await activeClient(deps, caller.tenant, clientId)
      if (found === undefined) throw clientNotFound()
      await deps.mafClients.delete(caller.tenant, clientId, found.revision)
    },
    { mutating: true },
  )
}

/** RegisterMafKey input. */
export interface RegisterMafKeyInput {
  readonly sourceClientId: string
  readonly suid: number
  readonly targetIds: readonly string[]
  readonly expirationTime: Date | undefined
  readonly labels: readonly string[]
  /** '' = the source registration's. */
  readonly adminFqdn: string
  readonly recipientPublicJwk: string
}

/**
 * MAF Key Registration: the source must be a registered MAF client; the key is generated in
 * the KMS and returned once, wrapped for the source's public key.
 */
export async function registerMafKey(
  deps: AuthnDeps,
  caller: Caller,
  input: RegisterMafKeyInput,
): Promise<{ key: MafKeyRecord; wrappedKey: string }> {
  const sourceId = clientOf(caller, input.sourceClientId, 'RegisterMafKey')
  if (!(MAF_SUIDS as readonly number[]).includes(input.suid)) {
    throw invalid('suid must be 32 (SAEF), 33 (ESPrim), 34 or 35 (ESData)', 'suid')
  }
  const targetIds = validateTargets(input.suid, input.targetIds)
  const now = deps.clock.now()
  const expiresAt = validateExpiration(
    input.expirationTime,
    now,
    deps.settings.maf.maxKeyLifetimeSec,
    'expiration_time',
  )
  const labels = validateLabels(input.labels, 'labels')
  if (input.adminFqdn !== '') validateFqdn(input.adminFqdn, 'admin_fqdn')
  parsePublicJwk(input.recipientPublicJwk, 'recipient_public_jwk', { p256Only: true })
  return audited(
    deps,
    caller,
    {
      action: 'authn.RegisterMafKey',
      resource: `maf-client/${sourceId}`,
      details: { suid: input.suid, targets: targetIds.length },
    },
    async () => {
      const { value: tenant } = await loadEnabledCallerTenant(deps, caller)
      const source = await activeClient(deps, tenant.id, sourceId)
      if (source === undefined) {
        throw new M2msecError('ERR_FAILED_PRECONDITION', 'the source is not a registered MAF client')
      }
      const relativeKeyId = Buffer.from(deps.random.bytes(16)).toString('hex')
      const kmsKey = await deps.kms.createKey(tenant.id, {
        algorithm: 'HMAC_SHA256',
        exportable: true,
        purpose: 'm2msec authn MAF-distributed key',
        labels: { owner: 'm2msec-authn', 'maf-key': relativeKeyId },
        secureEnvironment: tenant.secureEnvironment,
      })
      const record: MafKeyRecord = {
        tenant: tenant.id,
        relativeKeyId,
        kmsKeyId: kmsKey.id,
        sourceClientId: sourceId,
        suid: input.suid,
        targetIds,
        expiresAt: expiresAt.toISOString(),
        labels,
        adminFqdn: input.adminFqdn === '' ? source.value.adminFqdn : input.adminFqdn,
        createdAt: now.toISOString(),
        updatedAt: now.toISOString(),
      }
      let wrappedKey: string
      try {
        wrappedKey = await deps.kms.wrapKeyForJwk(tenant.id, kmsKey.id, input.recipientPublicJwk)
        await deps.mafKeys.create(record)
      } catch (err) {
        await retireKmsKey(deps, tenant.id, kmsKey.id).catch((e: unknown) => deps.onBackgroundError?.(e))
        throw err
      }
      publishInBackground(deps, { type: 'maf-key.registered', tenant: tenant.id, relativeKeyId })
      return { key: record, wrappedKey }
    },
    { mutating: true },
  )
}

/** The RelativeKeyID of `RelativeKeyID@MAF-FQDN` (or a bare RelativeKeyID) of this MAF, else undefined. */
export function parseKeyIdentifier(deps: Pick<AuthnDeps, 'settings'>, identifier: string): string | undefined {
  const at = identifier.indexOf('@')
  const relative = at < 0 ? identifier : identifier.slice(0, at)
  const fqdn = at < 0 ? undefined : identifier.slice(at + 1)
  if (!RELATIVE_KEY_ID.test(relative)) return undefined
  if (fqdn !== undefined && fqdn.toLowerCase() !== deps.settings.maf.fqdn.toLowerCase()) return undefined
  return relative
}

/**
 * MAF Key Retrieval: the caller must be a registered MAF client and one of the key's targets;
 * it receives the key wrapped for its public key.
 */
export async function retrieveMafKey(
  deps: AuthnDeps,
  caller: Caller,
  input: { keyIdentifier: string; recipientPublicJwk: string },
): Promise<{ key: MafKeyRecord; wrappedKey: string }> {
  parsePublicJwk(input.recipientPublicJwk, 'recipient_public_jwk', { p256Only: true })
  const relativeKeyId = parseKeyIdentifier(deps, input.keyIdentifier)
  return audited(
    deps,
    caller,
    { action: 'authn.RetrieveMafKey', resource: `maf-key/${relativeKeyId ?? '-'}` },
    async () => {
      await loadEnabledCallerTenant(deps, caller)
      if ((await activeClient(deps, caller.tenant, caller.id)) === undefined) {
        throw new M2msecError('ERR_FAILED_PRECONDITION', 'the caller is not a registered MAF client')
      }
      if (relativeKeyId === undefined) throw keyNotFound()
      const found = await deps.mafKeys.get(caller.tenant, relativeKeyId)
      if (found === undefined || expired(found.value, deps.clock.now())) throw keyNotFound()
      if (!found.value.targetIds.includes(caller.id)) throw keyNotFound()
      const wrappedKey = await deps.kms.wrapKeyForJwk(caller.tenant, found.value.kmsKeyId, input.recipientPublicJwk)
      return { key: found.value, wrappedKey }
    },
  )
}

/** A live key the caller manages (its source, or a tenant admin); anything else ERR_NOT_FOUND. */
async function managedKey(deps: AuthnDeps, caller: Caller, relativeKeyId: string): Promise<Versioned<MafKeyRecord>> {
  if (!RELATIVE_KEY_ID.test(relativeKeyId)) throw keyNotFound()
  const found = await deps.mafKeys.get(caller.tenant, relativeKeyId)
  if (found === undefined || expired(found.value, deps.clock.now())) throw keyNotFound()
  if (found.value.sourceClientId !== caller.id && !isAdmin(caller)) throw keyNotFound()
  return found
}

/** UpdateMafKey input: absent fields stay. */
export interface UpdateMafKeyInput {
  readonly relativeKeyId: string
  readonly expirationTime?: Date
  readonly targetIds?: readonly string[]
  readonly labels?: readonly string[]
}

/** MAF Key Registration Update (source or tenant admin). */
export async function updateMafKey(deps: AuthnDeps, caller: Caller, input: UpdateMafKeyInput): Promise<MafKeyRecord> {
  const now = deps.clock.now()
  const expiresAt =
    input.expirationTime === undefined
      ? undefined
      : validateExpiration(input.expirationTime, now, deps.settings.maf.maxKeyLifetimeSec, 'expiration_time')
  const labels = input.labels === undefined ? undefined : validateLabels(input.labels, 'labels')
  return audited(
    deps,
    caller,
    { action: 'authn.UpdateMafKey', resource: `maf-key/${input.relativeKeyId}` },
    async () => {
      const found = await managedKey(deps, caller, input.relativeKeyId)
      const cur = found.value
      const next: MafKeyRecord = {
        ...cur,
        ...(expiresAt === undefined ? {} : { expiresAt: expiresAt.toISOString() }),
        ...(input.targetIds === undefined ? {} : { targetIds: validateTargets(cur.suid, input.targetIds) }),
        ...(labels === undefined ? {} : { labels }),
        updatedAt: now.toISOString(),
      }
      await deps.mafKeys.update(next, found.revision)
      publishInBackground(deps, { type: 'maf-key.updated', tenant: cur.tenant, relativeKeyId: cur.relativeKeyId })
      return next
    },
    { mutating: true },
  )
}

/** MAF Key De-Registration (source or tenant admin): the record goes, the KMS key is retired. */
export async function deregisterMafKey(deps: AuthnDeps, caller: Caller, relativeKeyId: string): Promise<void> {
  await audited(
    deps,
    caller,
    { action: 'authn.DeregisterMafKey', resource: `maf-key/${relativeKeyId}` },
    async () => {
      const found = await managedKey(deps, caller, relativeKeyId)
      await retireKmsKey(deps, caller.tenant, found.value.kmsKeyId)
      try {
        await deps.mafKeys.delete(caller.tenant, relativeKeyId, found.revision)
      } catch (err) {
        // A concurrent update or the sweeper: the key is retired either way; delete what is there.
        if (!isM2msecError(err) || err.code !== 'ERR_REVISION_CONFLICT') throw err
        const again = await deps.mafKeys.get(caller.tenant, relativeKeyId)
        if (again !== undefined) await deps.mafKeys.delete(caller.tenant, relativeKeyId, again.revision)
      }
      publishInBackground(deps, { type: 'maf-key.deregistered', tenant: caller.tenant, relativeKeyId })
    },
    { mutating: true },
  )
}
