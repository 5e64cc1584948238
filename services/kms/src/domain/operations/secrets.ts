/**
 * Secure storage (TS-0003 "secure storage" sensitive function): per-owner values sealed with
 * AES-256-GCM by the tenant's internal storage key `_storage` in the default SE. The AAD binds
 * tenant, owner and name, so a sealed value cannot be moved to another owner or name. Only the
 * owning principal reads, lists or deletes its secrets; for anyone else a secret does not exist.
 */
import { M2msecError } from '@m2msec/errors'
import { audited } from '../audit.ts'
import { boundAad, decodeEnvelope, encodeEnvelope } from '../ciphertext.ts'
import { LIMITS, checkSize, pageSize } from '../limits.ts'
import type { Caller, KeyRecord } from '../model.ts'
import type { KmsDeps, StoredSecret } from '../ports.ts'

const STORAGE_KEY_ID = '_storage'
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/

export interface SecretInfo {
  readonly name: string
  readonly createdAt: string
  readonly updatedAt: string
}

function validateName(name: string): void {
  if (!NAME_PATTERN.test(name)) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'secret name must be 1-128 characters of A-Z a-z 0-9 . _ / -', {
      field: 'name',
    })
  }
}

/** The tenant's storage key, created on first use (two replicas racing: one create wins). */
async function storageKey(deps: KmsDeps, tenant: string): Promise<KeyRecord> {
  const existing = await deps.keys.get(tenant, STORAGE_KEY_ID)
  if (existing !== undefined) return existing.value
  const se = deps.ses.get(deps.ses.defaultName)
  const created = await se.generateKey({
    algorithm: 'AES_256_GCM',
    label: `${tenant}/${STORAGE_KEY_ID}/1`,
    exportable: false,
  })
  const now = deps.clock.now().toISOString()
  const record: KeyRecord = {
    tenant,
    id: STORAGE_KEY_ID,
    algorithm: 'AES_256_GCM',
    purpose: 'secure storage (internal)',
    state: 'ENABLED',
    secureEnvironment: se.name,
    exportable: false,
    primaryVersion: 1,
    versions: [{ version: 1, ref: created.ref, createdAt: now }],
    usagePolicy: [],
    labels: {},
    createdAt: now,
    updatedAt: now,
    createdBy: 'system',
  }
  try {
    await deps.keys.create(record)
    return record
  } catch (err) {
    await se.destroyKey({ ref: created.ref, algorithm: 'AES_256_GCM' }).catch(() => undefined)
    const again = await deps.keys.get(tenant, STORAGE_KEY_ID)
    if (again !== undefined) return again.value
    throw err
  }
}

function secretAad(caller: Caller, name: string): Uint8Array {
  return Buffer.from(`secret\0${caller.id}\0${name}`, 'utf8')
}

export async function putSecret(
  deps: KmsDeps,
  caller: Caller,
  req: { name: string; value: Uint8Array },
): Promise<SecretInfo> {
  return audited(
    deps,
    caller,
    { action: 'kms.PutSecret', resource: `secret/${caller.id}/${req.name}` },
    async () => {
      validateName(req.name)
      checkSize('value', req.value, LIMITS.secretBytes)
      const key = await storageKey(deps, caller.tenant)
      const v = key.versions.find((x) => x.version === key.primaryVersion)
      if (v === undefined) throw new M2msecError('ERR_INTERNAL', 'storage key has no primary version')
      const se = deps.ses.get(key.secureEnvironment)
      const sealed = await se.encrypt(
        { ref: v.ref, algorithm: key.algorithm },
        req.value,
        boundAad(caller.tenant, key.id, v.version, secretAad(caller, req.name)),
      )
      const now = deps.clock.now().toISOString()
      const previous = await deps.secrets.get(caller.tenant, caller.id, req.name)
      const stored: StoredSecret = {
        tenant: caller.tenant,
        owner: caller.id,
        name: req.name,
        keyId: key.id,
        sealed: Buffer.from(encodeEnvelope({ keyId: key.id, version: v.version, sealed })).toString('base64'),
        createdAt: previous?.createdAt ?? now,
        updatedAt: now,
      }
      await deps.secrets.put(stored)
      return { name: stored.name, createdAt: stored.createdAt, updatedAt: stored.updatedAt }
    },
    { mutating: true },
  )
}

export async function getSecret(
  deps: KmsDeps,
  caller: Caller,
  name: string,
): Promise<{ value: Uint8Array; info: SecretInfo }> {
  return audited(deps, caller, { action: 'kms.GetSecret', resource: `secret/${caller.id}/${name}` }, async () => {
    validateName(name)
    const stored = await deps.secrets.get(caller.tenant, caller.id, name)
    if (stored === undefined || stored.owner !== caller.id || stored.tenant !== caller.tenant) {
      throw new M2msecError('ERR_SECRET_NOT_FOUND', 'secret not found')
    }
    const env = decodeEnvelope(Buffer.from(stored.sealed, 'base64'))
    const key = (await deps.keys.get(caller.tenant, env.keyId))?.value
    const v = key?.versions.find((x) => x.version === env.version)
    if (key === undefined || v === undefined) throw new M2msecError('ERR_INTERNAL', 'storage key missing')
    const value = await deps.ses
      .get(key.secureEnvironment)
      .decrypt(
        { ref: v.ref, algorithm: key.algorithm },
        env.sealed,
        boundAad(caller.tenant, key.id, v.version, secretAad(caller, name)),
      )
    return { value, info: { name, createdAt: stored.createdAt, updatedAt: stored.updatedAt } }
  })
}

export async function deleteSecret(deps: KmsDeps, caller: Caller, name: string): Promise<void> {
  return audited(
    deps,
    caller,
    { action: 'kms.DeleteSecret', resource: `secret/${caller.id}/${name}` },
    async () => {
      validateName(name)
      if (!(await deps.secrets.delete(caller.tenant, caller.id, name))) {
        throw new M2msecError('ERR_SECRET_NOT_FOUND', 'secret not found')
      }
    },
    { mutating: true },
  )
}

export async function listSecrets(
  deps: KmsDeps,
  caller: Caller,
  page: { pageSize: number; pageToken?: string },
): Promise<{ secrets: SecretInfo[]; nextPageToken?: string }> {
  return audited(deps, caller, { action: 'kms.ListSecrets', resource: `secret/${caller.id}` }, async () => {
    const res = await deps.secrets.list(caller.tenant, caller.id, {
      limit: pageSize(page.pageSize),
      ...(page.pageToken === undefined || page.pageToken === '' ? {} : { after: page.pageToken }),
    })
    return {
      secrets: res.items.map((s) => ({ name: s.name, createdAt: s.createdAt, updatedAt: s.updatedAt })),
      ...(res.next === undefined ? {} : { nextPageToken: res.next }),
    }
  })
}
