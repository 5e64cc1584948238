import { auditDecision, decisionAudited } from '../audit.ts'
import { decideForCaller, toAccessRequest, withTokens } from '../decision.ts'
import type { Caller, CheckInput, CheckResult } from '../model.ts'
import type { AuthzDeps } from '../ports.ts'

/**
 * Check: decides one access request over the caller's tenant's policies (TS-0003 §7.1.5,
 * permit-overrides, default deny), together with the permissions of the oneM2M tokens the
 * request carries (§7.3.2.5; a token that fails verification fails the call with
 * ERR_TOKEN_INVALID / ERR_TOKEN_EXPIRED). Any authenticated principal of the tenant may ask.
 * A DENY is always audited, a PERMIT with probability `allowSampleRate`.
 *
 * @example
 * ```ts
 * const r = await ops.check(caller, { originator: 'Cae1', operation: 'retrieve',
 *   targetPolicyIds: ['acp-1'], authenticated: true })
 * r.decision // 'permit' | 'deny'
 * ```
 */
export async function check(deps: AuthzDeps, caller: Caller, input: CheckInput): Promise<CheckResult> {
  let request = toAccessRequest(deps, caller, input)
  let tokenIds: string[] | undefined
  if (input.tokens !== undefined && input.tokens.length > 0) {
    const verified = await withTokens(deps, caller, input, request)
    request = verified.request
    tokenIds = verified.tokens.map((t) => t.tokenId)
  }
  const { result } = decideForCaller(deps, caller, request, false)
  // The common case (a PERMIT that is not sampled) allocates nothing more and awaits nothing.
  if (decisionAudited(deps, result)) {
    await auditDecision(
      deps,
      caller,
      {
        action: 'authz.Check',
        request,
        targetResourceId: input.targetResourceId,
        ...(tokenIds === undefined ? {} : { tokenIds }),
      },
      result,
    )
  }
  return result
}
