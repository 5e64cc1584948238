/**
 * Who may do what with a group. Tenant admins manage groups; the group's agent relays and
 * authenticates; a member reads its own envelopes. For anyone else, and for every caller of
 * another tenant, the group does not exist (ERR_NOT_FOUND).
 */
import { M2msecError } from '@m2msec/errors'
import { GROUP_ID_PATTERN, LIMITS, type Caller, type GroupRecord } from './model.ts'
import type { GroupsDeps, Versioned } from './ports.ts'

/** The caller's relation to a group. */
export type Role = 'admin' | 'agent' | 'member' | 'none'

export function isAdmin(caller: Caller): boolean {
  return caller.roles.includes('admin')
}

export function groupNotFound(): M2msecError {
  return new M2msecError('ERR_NOT_FOUND', 'group not found')
}

export function validateGroupId(groupId: string): void {
  if (typeof groupId !== 'string' || !GROUP_ID_PATTERN.test(groupId)) {
    throw new M2msecError(
      'ERR_INVALID_ARGUMENT',
      'group id must be 1-128 characters of A-Z a-z 0-9 . _ - starting with a letter or digit',
      {
        field: 'group_id',
      },
    )
  }
}

export function validateMemberId(id: string, field: string): void {
  if (typeof id !== 'string' || id.length === 0 || id.length > LIMITS.memberIdLength) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', `${field} must be 1-${LIMITS.memberIdLength} characters`, { field })
  }
}

export function roleOf(caller: Caller, group: GroupRecord): Role {
  if (caller.tenant !== group.tenant) return 'none'
  if (isAdmin(caller)) return 'admin'
  if (caller.id === group.agentId) return 'agent'
  return group.members.includes(caller.id) ? 'member' : 'none'
}

/**
 * Loads a group of the caller's tenant and checks the caller has one of `allowed`. Callers with
 * no relation to the group get ERR_NOT_FOUND; others without the needed role
 * ERR_PERMISSION_DENIED.
 */
export async function loadGroup(
  deps: GroupsDeps,
  caller: Caller,
  groupId: string,
  allowed: readonly Role[],
): Promise<Versioned<GroupRecord> & { role: Role }> {
  validateGroupId(groupId)
  const found = await deps.groups.get(caller.tenant, groupId)
  if (found === undefined || found.value.tenant !== caller.tenant) throw groupNotFound()
  const role = roleOf(caller, found.value)
  if (role === 'none') throw groupNotFound()
  if (!allowed.includes(role))
    throw new M2msecError('ERR_PERMISSION_DENIED', `this needs one of: ${allowed.join(', ')}`)
  return { ...found, role }
}

/** Throws ERR_PERMISSION_DENIED unless the caller is a tenant admin. */
export function requireAdmin(caller: Caller, action: string): void {
  if (!isAdmin(caller)) throw new M2msecError('ERR_PERMISSION_DENIED', `${action} needs the admin role`)
}

/** Page size: 0 means the default, at most the limit. */
export function pageSize(requested: number): number {
  if (!Number.isInteger(requested) || requested < 0) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'page_size must be a non-negative integer', { field: 'page_size' })
  }
  return requested === 0 ? LIMITS.defaultPageSize : Math.min(requested, LIMITS.pageSize)
}
