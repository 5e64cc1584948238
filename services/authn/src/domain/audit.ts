/**
 * Runs an operation and writes its audit record (principal, action, resource, result, error
 * code; never assertions, tokens or key material). If the record cannot be written the
 * operation fails with ERR_AUDIT_UNAVAILABLE instead of returning an unaudited result.
 * Mutating operations also write an "attempt" record first, so that nothing changes while
 * the audit log is down.
 */
import { M2msecError, isM2msecError } from '@m2msec/errors'
import type { Caller } from './model.ts'
import type { AuditEntry, AuthnDeps } from './ports.ts'

/** What an audit record names besides the caller. */
export interface AuditTarget {
  readonly action: string
  readonly resource: string
  readonly details?: Readonly<Record<string, string | number | boolean>>
}

/** Runs `run` and writes its audit record (an attempt record first when `mutating`). */
export async function audited<T>(
  deps: AuthnDeps,
  caller: Pick<Caller, 'tenant' | 'id'>,
  target: AuditTarget,
  run: () => Promise<T>,
  opts: { mutating?: boolean } = {},
): Promise<T> {
  const base = { tenant: caller.tenant, principal: caller.id, action: target.action, resource: target.resource }
  const details = target.details === undefined ? {} : { details: target.details }
  if (opts.mutating === true) {
    await appendOrFail(deps, { ...base, result: 'ok', details: { ...target.details, phase: 'attempt' } })
  }
  let result: T
  try {
    result = await run()
  } catch (err) {
    const code = isM2msecError(err) ? err.code : 'ERR_INTERNAL'
    const denied = isM2msecError(err) && ['PERMISSION_DENIED', 'NOT_FOUND', 'UNAUTHENTICATED'].includes(err.status)
    if (code !== 'ERR_AUDIT_UNAVAILABLE') {
      await appendOrFail(deps, { ...base, result: denied ? 'denied' : 'error', code, ...details })
    }
    throw err
  }
  await appendOrFail(deps, { ...base, result: 'ok', ...details })
  return result
}

/** Appends one record; any failure becomes ERR_AUDIT_UNAVAILABLE. */
export async function appendOrFail(deps: AuthnDeps, entry: AuditEntry): Promise<void> {
  try {
    await deps.audit.append(entry)
  } catch (err) {
    if (isM2msecError(err) && err.code === 'ERR_AUDIT_UNAVAILABLE') throw err
    throw new M2msecError('ERR_AUDIT_UNAVAILABLE', 'audit log unavailable; operation not performed', {}, { cause: err })
  }
}

/** Publishes an event after the write; failures go to `onBackgroundError`, never to the caller. */
export function publishInBackground(deps: AuthnDeps, event: Parameters<AuthnDeps['events']['publish']>[0]): void {
  deps.events.publish(event).catch((err: unknown) => deps.onBackgroundError?.(err))
}
