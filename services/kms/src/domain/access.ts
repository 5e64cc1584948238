/**
 * Tenant isolation, role checks and usage-policy checks shared by every operation.
 *
 * A key of another tenant is reported exactly like an unknown key (ERR_KEY_NOT_FOUND), so
 * ids cannot be probed across tenants. A caller who may not use a key at all also gets
 * ERR_KEY_NOT_FOUND unless it is an admin of the tenant; a caller who may use the key but
 * not for this operation gets ERR_KEY_USAGE_DENIED.
 */
import { M2msecError } from '@m2msec/errors'
import type { KeyRecord, KeyOperation, Caller, KeyVersion } from './model.ts'
import { ADMIN_ROLE, KEY_ID_PATTERN, OPERATIONS_BY_ALGORITHM } from './model.ts'
import type { KmsDeps, Versioned } from './ports.ts'

export function isAdmin(caller: Caller): boolean {
  return caller.roles.includes(ADMIN_ROLE)
}

/** Throws ERR_PERMISSION_DENIED unless the caller is a tenant admin. */
export function requireAdmin(caller: Caller, action: string): void {
  if (!isAdmin(caller)) {
    throw new M2msecError('ERR_PERMISSION_DENIED', `${action} needs the ${ADMIN_ROLE} role`)
  }
}

export function validateKeyId(id: string): void {
  if (!KEY_ID_PATTERN.test(id)) {
    throw new M2msecError(
      'ERR_INVALID_ARGUMENT',
      'key id must be 1-128 characters of A-Z a-z 0-9 . _ - and start with a letter or digit',
      { field: 'key_id' },
    )
  }
}

function principalMatches(entry: string, caller: Caller): boolean {
  if (entry === '*') return true
  if (entry.startsWith('role:')) return caller.roles.includes(entry.slice(5))
  return entry === caller.id
}

/** The operations the usage policy grants this caller on this key. */
export function grantedOperations(key: KeyRecord, caller: Caller): Set<KeyOperation> {
  const granted = new Set<KeyOperation>()
  for (const rule of key.usagePolicy) {
    if (rule.principals.some((p) => principalMatches(p, caller))) {
      for (const op of rule.operations) granted.add(op)
    }
  }
  return granted
}

/** Loads a key of the caller's tenant, or throws ERR_KEY_NOT_FOUND (also for foreign keys). */
export async function loadKey(deps: KmsDeps, caller: Caller, keyId: string): Promise<Versioned<KeyRecord>> {
  if (!KEY_ID_PATTERN.test(keyId)) throw keyNotFound()
  const found = await deps.keys.get(caller.tenant, keyId)
  if (found === undefined || found.value.tenant !== caller.tenant) throw keyNotFound()
  return found
}

/** Loads a key the caller may see: admins see all keys of the tenant, others only keys they may use. */
export async function loadVisibleKey(deps: KmsDeps, caller: Caller, keyId: string): Promise<Versioned<KeyRecord>> {
  const found = await loadKey(deps, caller, keyId)
  if (!isAdmin(caller) && grantedOperations(found.value, caller).size === 0) throw keyNotFound()
  return found
}

/**
 * Loads a key for a cryptographic operation: tenant, visibility, usage policy, algorithm and
 * state are checked in that order; returns the key and the version to use.
 */
export async function loadKeyForUse(
  deps: KmsDeps,
  caller: Caller,
  keyId: string,
  operation: KeyOperation,
  version?: number,
): Promise<{ key: KeyRecord; version: KeyVersion }> {
  const { value: key } = await loadKey(deps, caller, keyId)
  const granted = grantedOperations(key, caller)
  if (granted.size === 0 && !isAdmin(caller)) throw keyNotFound()
  if (!OPERATIONS_BY_ALGORITHM[key.algorithm].includes(operation)) {
    throw new M2msecError('ERR_KEY_TYPE_MISMATCH', `a ${key.algorithm} key cannot be used for ${operation}`, {
      keyId,
      algorithm: key.algorithm,
    })
  }
  if (!granted.has(operation)) {
    throw new M2msecError(
      'ERR_KEY_USAGE_DENIED',
      `the key's usage policy does not allow ${operation} for this caller`,
      {
        keyId,
      },
    )
  }
  requireUsable(key)
  const wanted = version ?? key.primaryVersion
  const v = key.versions.find((x) => x.version === wanted)
  if (v === undefined || v.destroyed === true) {
    throw new M2msecError('ERR_KEY_VERSION_NOT_FOUND', 'key version not found', { keyId, version: wanted })
  }
  return { key, version: v }
}

/** Throws unless the key is ENABLED. */
export function requireUsable(key: KeyRecord): void {
  if (key.state === 'DESTROYED') {
    throw new M2msecError('ERR_KEY_DESTROYED', 'key is destroyed', { keyId: key.id })
  }
  if (key.state !== 'ENABLED') {
    throw new M2msecError('ERR_KEY_DISABLED', `key is ${key.state.toLowerCase().replace('_', ' ')}`, {
      keyId: key.id,
    })
  }
}

export function keyNotFound(): M2msecError {
  return new M2msecError('ERR_KEY_NOT_FOUND', 'key not found')
}
