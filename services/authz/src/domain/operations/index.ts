/**
 * The authz use cases, one file each. `createAuthzOperations(deps)` binds them to their ports
 * so the gRPC layer (and tests) call `ops.check(caller, input)`.
 */
import type { Caller } from '../model.ts'
import type { AuthzDeps } from '../ports.ts'
import { check } from './check.ts'
import { deletePolicy } from './delete-policy.ts'
import { explain } from './explain.ts'
import { getPolicy } from './get-policy.ts'
import { issueToken } from './issue-token.ts'
import { listPolicies } from './list-policies.ts'
import { putPolicy } from './put-policy.ts'

type Bound<F> = F extends (deps: AuthzDeps, caller: Caller, ...rest: infer A) => infer R
  ? (caller: Caller, ...rest: A) => R
  : never

function bind<F extends (deps: AuthzDeps, caller: Caller, ...rest: never[]) => unknown>(
  deps: AuthzDeps,
  f: F,
): Bound<F> {
  return ((caller: Caller, ...rest: never[]) => f(deps, caller, ...rest)) as Bound<F>
}

/**
 * @example
 * ```ts
 * const ops = createAuthzOperations({ store, index: store, audit, clock, sampler, allowSampleRate: 0.01 })
 * const { decision } = await ops.check(caller, { operation: 'retrieve', targetPolicyIds: ['acp-1'], authenticated: true })
 * ```
 */
export function createAuthzOperations(deps: AuthzDeps) {
  return {
    putPolicy: bind(deps, putPolicy),
    getPolicy: bind(deps, getPolicy),
    deletePolicy: bind(deps, deletePolicy),
    listPolicies: bind(deps, listPolicies),
    check: bind(deps, check),
    explain: bind(deps, explain),
    issueToken: bind(deps, issueToken),
  }
}

export type AuthzOperations = ReturnType<typeof createAuthzOperations>
export type { PutPolicyInput, PutPolicyResult } from './put-policy.ts'
export type { IssueTokenInput, IssueTokenPermission, IssueTokenResult } from './issue-token.ts'
