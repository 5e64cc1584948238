/**
 * Runs an operation and writes its audit record. The record names principal, key, version,
 * operation and result, never data or key bytes. If the record cannot be written the
 * operation fails with ERR_AUDIT_UNAVAILABLE instead of returning an unaudited result.
 */
import { M2msecError, isM2msecError } from '@m2msec/errors'
import type { Caller } from './model.ts'
import type { KmsDeps } from './ports.ts'

export interface AuditTarget {
  readonly action: string
  readonly resource: string
  readonly details?: Readonly<Record<string, string | number | boolean>>
}

/**
 * `mutating` operations also write an "attempt" record first, so that a state change never
 * happens while the audit log is down.
 */
export async function audited<T>(
  deps: KmsDeps,
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

function detailsOf(target: AuditTarget): { details?: Readonly<Record<string, string | number | boolean>> } {
  return target.details === undefined ? {} : { details: target.details }
}

async function appendOrFail(deps: KmsDeps, entry: Parameters<KmsDeps['audit']['append']>[0]): Promise<void> {
  try {
    await deps.audit.append(entry)
  } catch (err) {
    if (isM2msecError(err) && err.code === 'ERR_AUDIT_UNAVAILABLE') throw err
    throw new M2msecError('ERR_AUDIT_UNAVAILABLE', 'audit log unavailable; operation not performed', {}, { cause: err })
  }
}
