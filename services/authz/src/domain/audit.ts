/**
 * Audit records of authz operations. Management operations are audited in full (policy
 * changes also write an "attempt" record first, so nothing changes while the audit log is
 * down); decisions write one record per DENY and a sample of PERMITs. If a required record
 * cannot be written the operation fails with ERR_AUDIT_UNAVAILABLE instead of returning an
 * unaudited result.
 */
import { M2msecError, isM2msecError } from '@m2msec/errors'
import type { Caller, CheckResult } from './model.ts'
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

/** What a decision record says about the request. */
export interface DecisionAudit {
  readonly action: string
  readonly originator: string
  readonly operation: string
  readonly targetResourceId?: string
  readonly targetPolicyIds: readonly string[]
  readonly isPolicyChange: boolean
}

/**
 * Audits a decision: always for DENY, for PERMIT with probability `allowSampleRate`. The
 * record names originator, operation, target, policies and the matching rule.
 */
export async function auditDecision(
  deps: AuthzDeps,
  caller: Caller,
  what: DecisionAudit,
  result: CheckResult,
): Promise<void> {
  const deny = result.decision === 'deny'
  if (!deny && !(deps.allowSampleRate > 0 && deps.sampler.next() < deps.allowSampleRate)) return
  const m = result.matched
  await appendOrFail(deps, {
    tenant: caller.tenant,
    principal: caller.id,
    action: what.action,
    resource: clip(
      what.targetResourceId !== undefined && what.targetResourceId !== ''
        ? `resource/${what.targetResourceId}`
        : `policies/${what.targetPolicyIds.join(',')}`,
    ),
    result: deny ? 'denied' : 'ok',
    details: {
      decision: result.decision,
      originator: clip(what.originator),
      operation: what.operation,
      policyIds: clip(what.targetPolicyIds.join(',')),
      ...(what.isPolicyChange ? { isPolicyChange: true } : {}),
      ...(m === undefined ? {} : { matched: clip(`${m.policyId}/${m.attribute}[${m.ruleIndex}]`) }),
      ...(deny ? {} : { sampled: true }),
    },
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
