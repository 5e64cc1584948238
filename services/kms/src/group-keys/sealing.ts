/**
 * Node keys at rest: each is sealed with AES-256-GCM by the tenant's internal `_groups` key
 * in the default secure environment (created on first use, like the `_storage` key of secure
 * storage). The associated data binds tenant, group, node and version, so a sealed node key
 * cannot be moved to another group, node or epoch.
 */
import { M2msecError } from '@m2msec/errors'
import { boundAad, decodeEnvelope, encodeEnvelope } from '../domain/ciphertext.ts'
import type { KeyRecord } from '../domain/model.ts'
import type { KmsDeps } from '../domain/ports.ts'

/** Id of the internal sealing key (ids starting with `_` are reserved and never listed). */
export const GROUPS_KEY_ID = '_groups'

/** The tenant's group sealing key, created on first use (two replicas racing: one create wins). */
export async function groupsSealingKey(deps: KmsDeps, tenant: string): Promise<KeyRecord> {
  const existing = await deps.keys.get(tenant, GROUPS_KEY_ID)
  if (existing !== undefined) return existing.value
  const se = deps.ses.get(deps.ses.defaultName)
  const created = await se.generateKey({
    algorithm: 'AES_256_GCM',
    label: `${tenant}/${GROUPS_KEY_ID}/1`,
    exportable: false,
  })
  const now = deps.clock.now().toISOString()
  const record: KeyRecord = {
    tenant,
    id: GROUPS_KEY_ID,
    algorithm: 'AES_256_GCM',
    purpose: 'group key trees (internal)',
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
    const again = await deps.keys.get(tenant, GROUPS_KEY_ID)
    if (again !== undefined) return again.value
    throw err
  }
}

function nodeAad(groupId: string, level: number, position: number, version: number): Uint8Array {
  return Buffer.from(`group-node\0${groupId}\0${level}.${position}\0${version}`, 'utf8')
}

/** Seals and opens node keys of one tenant with its `_groups` key. */
export interface NodeSealer {
  seal(groupId: string, level: number, position: number, version: number, key: Uint8Array): Promise<string>
  open(groupId: string, level: number, position: number, version: number, sealed: string): Promise<Uint8Array>
}

/**
 * @example
 * ```ts
 * const sealer = await nodeSealer(deps, 'acme')
 * const stored = await sealer.seal('meters', 3, 0, 7, key)
 * ```
 */
export async function nodeSealer(deps: KmsDeps, tenant: string): Promise<NodeSealer> {
  const key = await groupsSealingKey(deps, tenant)
  const se = deps.ses.get(key.secureEnvironment)
  const versionOf = (n: number) => {
    const v = key.versions.find((x) => x.version === n)
    if (v === undefined || v.destroyed === true) {
      throw new M2msecError('ERR_KEY_VERSION_NOT_FOUND', 'group sealing key version not found', { version: n })
    }
    return v
  }
  return {
    async seal(groupId, level, position, version, bytes) {
      const v = versionOf(key.primaryVersion)
      const sealed = await se.encrypt(
        { ref: v.ref, algorithm: key.algorithm },
        bytes,
        boundAad(tenant, key.id, v.version, nodeAad(groupId, level, position, version)),
      )
      return Buffer.from(encodeEnvelope({ keyId: key.id, version: v.version, sealed })).toString('base64')
    },
    async open(groupId, level, position, version, stored) {
      const envelope = decodeEnvelope(Buffer.from(stored, 'base64'))
      if (envelope.keyId !== key.id)
        throw new M2msecError('ERR_CIPHERTEXT_INVALID', 'node key is not sealed by _groups')
      const v = versionOf(envelope.version)
      return se.decrypt(
        { ref: v.ref, algorithm: key.algorithm },
        envelope.sealed,
        boundAad(tenant, key.id, v.version, nodeAad(groupId, level, position, version)),
      )
    },
  }
}
