/**
 * Who may do what with a group. Tenant admins manage groups; the group's agent relays and
 * authenticates (and, in a dynamic group, adds and removes members); a member reads its own
 * envelopes (and may leave a dynamic group); an entity the join policy allows may join a
 * dynamic group. For anyone else, and for every caller of
 * another tenant, the group does not exist (ERR_NOT_FOUND).
 */
import { M2msecError } from '@m2msec/errors'
import { GROUP_ID_PATTERN, LIMITS, type Caller, type GroupRecord, type MembershipMode } from './model.ts'
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

/** The group's membership mode (records from before modes existed are STATIC). */
export function membershipOf(group: GroupRecord): MembershipMode {
  return group.membership ?? 'STATIC'
}

/**
 * Checks a join policy: at most LIMITS.joinPatterns patterns of valid member-id length; `*`
 * only as the last character (a prefix pattern).
 */
export function validateJoinPolicy(patterns: readonly string[]): void {
  if (patterns.length > LIMITS.joinPatterns) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', `a join policy has at most ${LIMITS.joinPatterns} patterns`, {
      field: 'join_policy.allow',
    })
  }
  for (const p of patterns) {
    validateMemberId(p, 'join_policy.allow')
    if (p.slice(0, -1).includes('*')) {
      throw new M2msecError('ERR_INVALID_ARGUMENT', 'a join pattern is an exact id or a prefix ending in *', {
        field: 'join_policy.allow',
      })
    }
  }
}

/**
 * True when `entityId` matches one of the patterns: equal to it, or (for `prefix*`) starting
 * with the prefix. An empty list matches nobody.
 *
 * @example
 * ```ts
 * joinAllowed(['car-*', 'bus-7'], 'car-42') // true
 * ```
 */
export function joinAllowed(patterns: readonly string[], entityId: string): boolean {
  return patterns.some((p) => (p.endsWith('*') ? entityId.startsWith(p.slice(0, -1)) : entityId === p))
}

/**
 * Who may apply a membership change, checked on every (re)load of the record:
 * - `admin`: AddMembers/RemoveMembers/CreateGroup; a tenant admin, or the agent of a dynamic group.
 * - `join`: the caller joins itself; dynamic group whose join policy matches the caller.
 * - `leave`: the caller leaves itself; a member of a dynamic group.
 * Callers with no part in the group get ERR_NOT_FOUND (a caller allowed to join has one).
 */
export function authorizeChange(caller: Caller, group: GroupRecord, kind: ChangeKind): void {
  if (caller.tenant !== group.tenant) throw groupNotFound()
  const dynamic = membershipOf(group) === 'DYNAMIC'
  const role = roleOf(caller, group)
  if (kind === 'manage') {
    if (role === 'none') throw groupNotFound()
    if (role === 'admin' || (role === 'agent' && dynamic)) return
    throw new M2msecError(
      'ERR_PERMISSION_DENIED',
      dynamic
        ? 'membership changes need an admin or the agent'
        : 'membership of a static group is changed by admins only',
    )
  }
  if (kind === 'leave') {
    if (!group.members.includes(caller.id)) {
      if (role === 'none') throw groupNotFound()
      throw new M2msecError('ERR_NOT_FOUND', 'the caller is not a member of the group')
    }
    if (!dynamic) throw new M2msecError('ERR_PERMISSION_DENIED', 'members cannot leave a static group by themselves')
    return
  }
  if (!dynamic) throw new M2msecError('ERR_PERMISSION_DENIED', 'a static group cannot be joined by oneself')
  if (!joinAllowed(group.joinAllow ?? [], caller.id)) {
    throw new M2msecError('ERR_PERMISSION_DENIED', "the group's join policy does not allow this entity")
  }
}

/** What kind of membership change a caller asks for (see authorizeChange). */
export type ChangeKind = 'manage' | 'join' | 'leave'

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
