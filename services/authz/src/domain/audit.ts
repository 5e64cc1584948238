/**
 * Audit records of authz operations. Management operations are audited in full (policy
 * changes also write an "attempt" record first, so nothing changes while the audit log is
 * down); decisions write one record per DENY and a sample of PERMITs. If a required record
 * cannot be written the operation fails with ERR_AUDIT_UNAVAILABLE instead of returning an
 * unaudited result.
 */
import { M2msecError, isM2msecError } from '@m2msec/errors'
import type { AccessRequest } from '@m2msec/acp'
import type { Caller, CheckResult, MatchedPolicyRule } from './model.ts'
import type { AuditEntry, AuthzDeps } from './ports.ts'

export interface AuditTarget {
  readonly action: string
  readonly resource: string
  readonly details?: Readonly<Record<string, string | number | boolean>>
}

/** Runs a management operation and audits its outcome (with an attempt record first when `mutating`). */
export async function audited<T>(
  deps: AuthzDeps,
  caller: Caller,
  target: AuditTarget,
  run: () => Promise<T>,
  opts: { mutating?: boolean } = {},
): Promise<T> {
  const base = { tenant: caller.tenant, principal: caller.id, action: target.action, resource: target.resource }
  if (opts.mutating === true) {
    await appendOrFail(deps, { ...base, result: 'ok', details: { ...target.details, phase: 'attempt' } })
  }
  let result: T
  try {
    result = await run()
  } catch (err) {
    const code = isM2msecError(err) ? err.code : 'ERR_INTERNAL'
    const denied = isM2msecError(err) && (err.status === 'PERMISSION_DENIED' || err.status === 'NOT_FOUND')
    // The caller gets the original error; if auditing it fails too, that failure is reported instead.
    if (code !== 'ERR_AUDIT_UNAVAILABLE') {
      await appendOrFail(deps, { ...base, result: denied ? 'denied' : 'error', code, ...detailsOf(target) })
    }
    throw err
  }
  await appendOrFail(deps, { ...base, result: 'ok', ...detailsOf(target) })
  return result
}

/** Longest value of a decision record's detail fields (ids can be long; records stay small). */
const DETAIL_MAX = 512

function clip(s: string): string {
  return s.length <= DETAIL_MAX ? s : `${s.slice(0, DETAIL_MAX)}…`
}

/** What a decision record says about the request (the engine request it was decided on). */
export interface DecisionAudit {
  readonly action: string
  readonly request: AccessRequest
  readonly targetResourceId: string | undefined
  /** `jti` of the verified tokens that took part. */
  readonly tokenIds?: readonly string[]
}

function describeMatch(m: MatchedPolicyRule): string {
  if (m.attribute === 'tokenPrivileges')
    return `token ${m.tokenId ?? ''}/tkps[${m.permissionIndex ?? 0}]/pv[${m.ruleIndex}]`
  const via = m.tokenId === undefined ? '' : ` via token ${m.tokenId}/tkps[${m.permissionIndex ?? 0}]`
  return `${m.policyId ?? ''}/${m.attribute}[${m.ruleIndex}]${via}`
}

/** True when this decision gets an audit record: every DENY, a PERMIT with probability `allowSampleRate`. */
export function decisionAudited(deps: AuthzDeps, result: CheckResult): boolean {
  if (result.decision === 'deny') return true
  const rate = deps.allowSampleRate
  return rate > 0 && (rate >= 1 || deps.sampler.next() < rate)
}

/**
 * Writes the audit record of a decision that `decisionAudited` selected. The record names
 * originator, operation, target, policies, tokens and the matching rule. Rejects with
 * ERR_AUDIT_UNAVAILABLE when it cannot be written.
 */
export function auditDecision(
  deps: AuthzDeps,
  caller: Caller,
  what: DecisionAudit,
  result: CheckResult,
): Promise<void> {
  const deny = result.decision === 'deny'
  const m = result.matched
  const r = what.request
  const policyIds = r.targetPolicyIds.join(',')
  const details: Record<string, string | number | boolean> = {
    decision: result.decision,
    originator: clip(r.originator),
    operation: r.operation,
    policyIds: clip(policyIds),
  }
  if (r.isPolicyChange === true) details['isPolicyChange'] = true
  if (what.tokenIds !== undefined && what.tokenIds.length > 0) details['tokenIds'] = clip(what.tokenIds.join(','))
  if (m !== undefined) details['matched'] = clip(describeMatch(m))
  if (!deny) details['sampled'] = true
  return appendOrFail(deps, {
    tenant: caller.tenant,
    principal: caller.id,
    action: what.action,
    resource: clip(
      what.targetResourceId !== undefined && what.targetResourceId !== ''
        ? `resource/${what.targetResourceId}`
        : `policies/${policyIds}`,
    ),
    result: deny ? 'denied' : 'ok',
    details,
  })
}

function detailsOf(target: AuditTarget): { details?: Readonly<Record<string, string | number | boolean>> } {
  return target.details === undefined ? {} : { details: target.details }
}

async function appendOrFail(deps: AuthzDeps, entry: AuditEntry): Promise<void> {
  try {
    await deps.audit.append(entry)
  } catch (err) {
    if (isM2msecError(err) && err.code === 'ERR_AUDIT_UNAVAILABLE') throw err
    throw new M2msecError('ERR_AUDIT_UNAVAILABLE', 'audit log unavailable; operation not performed', {}, { cause: err })
  }
}
