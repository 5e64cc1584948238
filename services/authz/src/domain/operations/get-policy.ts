import { authorizeOnPolicy, loadPolicy } from '../access.ts'
import { audited } from '../audit.ts'
import type { Caller, PolicyRecord, Versioned } from '../model.ts'
import type { AuthzDeps } from '../ports.ts'

/**
 * GetPolicy: admins, or RETRIEVE in the policy's selfPrivileges.
 *
 * @example
 * ```ts
 * const { value, revision } = await ops.getPolicy(caller, 'acp-1')
 * ```
 */
export async function getPolicy(deps: AuthzDeps, caller: Caller, policyId: string): Promise<Versioned<PolicyRecord>> {
  return audited(
    deps,
    caller,
    { action: 'authz.GetPolicy', resource: `policy/${policyId.slice(0, 256)}` },
    async () => {
      const found = await loadPolicy(deps, caller, policyId)
      authorizeOnPolicy(deps, caller, found.value, 'retrieve')
      return found
    },
  )
}
