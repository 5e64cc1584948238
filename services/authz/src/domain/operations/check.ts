import { auditDecision } from '../audit.ts'
import { decideForCaller, toAccessRequest } from '../decision.ts'
import type { Caller, CheckInput, CheckResult } from '../model.ts'
import type { AuthzDeps } from '../ports.ts'

/**
 * Check: decides one access request over the caller's tenant's policies (TS-0003 §7.1.5,
 * permit-overrides, default deny). Any authenticated principal of the tenant may ask. A DENY
 * is always audited, a PERMIT with probability `allowSampleRate`.
 *
 * @example
 * ```ts
 * const r = await ops.check(caller, { originator: 'Cae1', operation: 'retrieve',
 *   targetPolicyIds: ['acp-1'], authenticated: true })
 * r.decision // 'permit' | 'deny'
 * ```
 */
export async function check(deps: AuthzDeps, caller: Caller, input: CheckInput): Promise<CheckResult> {
  const request = toAccessRequest(deps, caller, input)
  const { result } = decideForCaller(deps, caller, request, false)
  await auditDecision(
    deps,
    caller,
    {
      action: 'authz.Check',
      originator: request.originator,
      operation: request.operation,
      ...(input.targetResourceId === undefined ? {} : { targetResourceId: input.targetResourceId }),
      targetPolicyIds: request.targetPolicyIds,
      isPolicyChange: request.isPolicyChange === true,
    },
    result,
  )
  return result
}
