import { auditDecision, decisionAudited } from '../audit.ts'
import { decideForCaller, toAccessRequest, withTokens } from '../decision.ts'
import type { Caller, CheckInput, ExplainResult } from '../model.ts'
import type { AuthzDeps } from '../ports.ts'

/**
 * Explain: the same decision as Check, with every rule considered and why it did not apply,
 * which rule of which policy (or of which token permission) permitted, or that none did. Each
 * verified token gets a line first (its id, issuer and how many of its permissions apply to
 * the target); a token that fails verification fails the call exactly as in Check. Audited
 * like Check.
 *
 * @example
 * ```ts
 * const r = await ops.explain(caller, { originator: 'Cae1', operation: 'delete',
 *   targetPolicyIds: ['acp-1'], authenticated: true })
 * r.reasons // ['policy acp-1 privileges[0]: operation not in accessControlOperations', 'deny: …']
 * ```
 */
export async function explain(deps: AuthzDeps, caller: Caller, input: CheckInput): Promise<ExplainResult> {
  let request = toAccessRequest(deps, caller, input)
  const tokenLines: string[] = []
  let tokenIds: string[] | undefined
  if (input.tokens !== undefined && input.tokens.length > 0) {
    const verified = await withTokens(deps, caller, input, request)
    request = verified.request
    tokenIds = verified.tokens.map((t) => t.tokenId)
    verified.tokens.forEach((t, i) => {
      const applying = t.grants.map((g) => g.permissionIndex).join(', ')
      tokenLines.push(
        `tokens[${i}]: token ${t.tokenId} of ${t.issuer} verified; ` +
          (t.grants.length === 0
            ? `none of its ${t.permissions} permissions applies to the target`
            : `permissions [${applying}] of ${t.permissions} apply to the target`),
      )
    })
  }
  const { result, reasons } = decideForCaller(deps, caller, request, true)
  if (decisionAudited(deps, result)) {
    await auditDecision(
      deps,
      caller,
      {
        action: 'authz.Explain',
        request,
        targetResourceId: input.targetResourceId,
        ...(tokenIds === undefined ? {} : { tokenIds }),
      },
      result,
    )
  }
  return { ...result, reasons: [...tokenLines, ...reasons] }
}
