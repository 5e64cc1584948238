import { compilePolicy, parsePolicy } from '@m2msec/acp'
import { M2msecError, isM2msecError } from '@m2msec/errors'
import { authorizeOnPolicy, policyNotFound, requireAdmin } from '../access.ts'
import { audited } from '../audit.ts'
import { validatePolicyId } from '../limits.ts'
import type { Caller, PolicyRecord, Versioned } from '../model.ts'
import type { AuthzDeps } from '../ports.ts'
import { checkExpectedRevision, MAX_WRITE_ATTEMPTS } from './revision.ts'

/** PutPolicy input: the policy as untrusted JSON (TS-0004 long or short names). */
export interface PutPolicyInput {
  readonly policy: unknown
  /** Not set: create or replace. 0: create only. N > 0: replace only revision N. */
  readonly expectedRevision?: number
}

/** PutPolicy output. */
export interface PutPolicyResult {
  readonly policy: Versioned<PolicyRecord>
  readonly created: boolean
}

function rawId(policy: unknown): string {
  const id = typeof policy === 'object' && policy !== null ? (policy as { id?: unknown }).id : undefined
  return typeof id === 'string' ? id.slice(0, 256) : ''
}

/**
 * PutPolicy: validates the whole policy (a malformed one is ERR_INVALID_ARGUMENT naming the
 * field, and nothing changes), then creates it (admins only) or replaces it (admins, or UPDATE
 * in the stored policy's selfPrivileges). An unconditional write that loses a race re-reads,
 * re-authorizes and writes again; a conditional one reports the conflict.
 *
 * @example
 * ```ts
 * await ops.putPolicy(admin, { policy: { id: 'acp-1', privileges: { accessControlRule: [] },
 *   selfPrivileges: { accessControlRule: [{ accessControlOriginators: ['/cse1/owner'], accessControlOperations: 63 }] } } })
 * ```
 */
export async function putPolicy(deps: AuthzDeps, caller: Caller, input: PutPolicyInput): Promise<PutPolicyResult> {
  return audited(
    deps,
    caller,
    { action: 'authz.PutPolicy', resource: `policy/${rawId(input.policy)}` },
    async () => {
      const policy = parsePolicy(input.policy)
      validatePolicyId(policy.id, 'policy.id')
      // Every replica compiles what is stored: make sure it compiles before storing it.
      compilePolicy(policy)
      const expected = input.expectedRevision
      checkExpectedRevision(expected)
      for (let attempt = 1; ; attempt++) {
        const current = await deps.store.get(caller.tenant, policy.id)
        if (current === undefined) {
          requireAdmin(caller, 'creating a policy')
          if (expected !== undefined && expected > 0) throw policyNotFound()
        } else {
          authorizeOnPolicy(deps, caller, current.value, 'update')
          if (expected === 0) {
            throw new M2msecError('ERR_ALREADY_EXISTS', 'a policy with this id exists', { policyId: policy.id })
          }
          if (expected !== undefined && expected !== current.revision) {
            throw new M2msecError('ERR_REVISION_CONFLICT', 'the policy changed since the expected revision', {
              policyId: policy.id,
            })
          }
        }
        const now = deps.clock.now().toISOString()
        const record: PolicyRecord = {
          tenant: caller.tenant,
          policy,
          createdAt: current?.value.createdAt ?? now,
          updatedAt: now,
          createdBy: current?.value.createdBy ?? caller.id,
          updatedBy: caller.id,
        }
        try {
          const revision =
            current === undefined ? await deps.store.create(record) : await deps.store.update(record, current.revision)
          return { policy: { value: record, revision }, created: current === undefined }
        } catch (err) {
          const race = isM2msecError(err) && (err.code === 'ERR_REVISION_CONFLICT' || err.code === 'ERR_ALREADY_EXISTS')
          if (!race || expected !== undefined || attempt >= MAX_WRITE_ATTEMPTS) throw err
        }
      }
    },
    { mutating: true },
  )
}
