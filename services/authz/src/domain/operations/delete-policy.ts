import { M2msecError, invalidArgument, isM2msecError } from '@m2msec/errors'
import { authorizeOnPolicy, loadPolicy } from '../access.ts'
import { audited } from '../audit.ts'
import type { Caller } from '../model.ts'
import type { AuthzDeps } from '../ports.ts'
import { checkExpectedRevision, MAX_WRITE_ATTEMPTS } from './revision.ts'

/**
 * DeletePolicy: admins, or DELETE in the policy's selfPrivileges. Afterwards decisions that list
 * the id treat it as unknown (it grants nothing).
 *
 * @example
 * ```ts
 * await ops.deletePolicy(admin, 'acp-1')
 * ```
 */
export async function deletePolicy(
  deps: AuthzDeps,
  caller: Caller,
  policyId: string,
  expectedRevision?: number,
): Promise<void> {
  return audited(
    deps,
    caller,
    { action: 'authz.DeletePolicy', resource: `policy/${policyId.slice(0, 256)}` },
    async () => {
      checkExpectedRevision(expectedRevision)
      if (expectedRevision === 0) {
        throw invalidArgument('expected_revision 0 cannot name a stored policy', { field: 'expected_revision' })
      }
      for (let attempt = 1; ; attempt++) {
        const current = await loadPolicy(deps, caller, policyId)
        authorizeOnPolicy(deps, caller, current.value, 'delete')
        if (expectedRevision !== undefined && expectedRevision !== current.revision) {
          throw new M2msecError('ERR_REVISION_CONFLICT', 'the policy changed since the expected revision', {
            policyId,
          })
        }
        try {
          await deps.store.delete(caller.tenant, policyId, current.revision)
          return
        } catch (err) {
          const race = isM2msecError(err) && err.code === 'ERR_REVISION_CONFLICT'
          if (!race || expectedRevision !== undefined || attempt >= MAX_WRITE_ATTEMPTS) throw err
        }
      }
    },
    { mutating: true },
  )
}
