/**
 * Who may manage a policy: admins of the tenant always; anyone else as the policy's own
 * selfPrivileges say (TS-0003 §7.1.5: for a target that is an <accessControlPolicy>, the
 * applicable rules are its selfPrivileges). The caller is the originator (its principal id),
 * authenticated, at the server's time and from the IP address of the call. Its platform roles
 * are not oneM2M Role-IDs and take no part.
 *
 * Another tenant's policy is reported exactly like an unknown one (ERR_NOT_FOUND), so ids
 * cannot be probed across tenants.
 */
import { compilePolicies, decide, type Operation } from '@m2msec/acp'
import { M2msecError } from '@m2msec/errors'
import { ADMIN_ROLE, type Caller, type PolicyRecord, type Versioned } from './model.ts'
import { validatePolicyId } from './limits.ts'
import type { AuthzDeps } from './ports.ts'

export function isAdmin(caller: Caller): boolean {
  return caller.roles.includes(ADMIN_ROLE)
}

/** Throws ERR_PERMISSION_DENIED unless the caller is a tenant admin. */
export function requireAdmin(caller: Caller, action: string): void {
  if (!isAdmin(caller)) {
    throw new M2msecError('ERR_PERMISSION_DENIED', `${action} needs the ${ADMIN_ROLE} role`)
  }
}

export function policyNotFound(): M2msecError {
  return new M2msecError('ERR_NOT_FOUND', 'policy not found')
}

/** Loads a policy of the caller's tenant, or throws ERR_NOT_FOUND (also for foreign ones). */
export async function loadPolicy(deps: AuthzDeps, caller: Caller, id: string): Promise<Versioned<PolicyRecord>> {
  validatePolicyId(id)
  const found = await deps.store.get(caller.tenant, id)
  if (found === undefined || found.value.tenant !== caller.tenant || found.value.policy.id !== id) {
    throw policyNotFound()
  }
  return found
}

/**
 * True when the stored policy's selfPrivileges grant `operation` to the caller. Decided on
 * the record itself (not the replica's index), so the check matches exactly the revision a
 * compare-and-set write will replace.
 */
export function selfPrivilegesAllow(
  deps: AuthzDeps,
  caller: Caller,
  record: PolicyRecord,
  operation: Operation,
): boolean {
  if (isAdmin(caller)) return true
  const index = compilePolicies([record.policy])
  const d = decide(index, {
    originator: caller.id,
    operation,
    targetPolicyIds: [record.policy.id],
    authenticated: true,
    isPolicyChange: true,
    context: {
      time: deps.clock.now(),
      ...(caller.ipAddress === undefined ? {} : { ipAddress: caller.ipAddress }),
    },
  })
  return d.decision === 'permit'
}

/** Throws ERR_PERMISSION_DENIED unless the caller is an admin or selfPrivileges grant `operation`. */
export function authorizeOnPolicy(deps: AuthzDeps, caller: Caller, record: PolicyRecord, operation: Operation): void {
  if (!selfPrivilegesAllow(deps, caller, record, operation)) {
    throw new M2msecError(
      'ERR_PERMISSION_DENIED',
      `the selfPrivileges of policy ${record.policy.id} do not grant ${operation.toUpperCase()} to the caller`,
      { policyId: record.policy.id, operation },
    )
  }
}
