import { auditDecision } from '../audit.ts'
import { decideForCaller, toAccessRequest } from '../decision.ts'
import type { Caller, CheckInput, ExplainResult } from '../model.ts'
import type { AuthzDeps } from '../ports.ts'

/**
 * Explain: the same decision as Check, with every rule considered and why it did not apply,
 * which rule of which policy permitted, or that none did. Audited like Check.
 *
 * @example
 * ```ts
 * const r = await ops.explain(caller, { originator: 'Cae1', operation: 'delete',
 *   targetPolicyIds: ['acp-1'], authenticated: true })
 * r.reasons // ['policy acp-1 privileges[0]: operation not in accessControlOperations', 'deny: …']
 * ```
 */
export async function explain(deps: AuthzDeps, caller: Caller, input: CheckInput): Promise<ExplainResult> {
  const request = toAccessRequest(deps, caller, input)
  const { result, reasons } = decideForCaller(deps, caller, request, true)
  await auditDecision(
    deps,
    caller,
    {
      action: 'authz.Explain',
      originator: request.originator,
      operation: request.operation,
      ...(input.targetResourceId === undefined ? {} : { targetResourceId: input.targetResourceId }),
      targetPolicyIds: request.targetPolicyIds,
      isPolicyChange: request.isPolicyChange === true,
    },
    result,
  )
  return { ...result, reasons }
}
