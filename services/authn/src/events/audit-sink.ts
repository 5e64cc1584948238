import type { AuditLog } from '@m2msec/bus'
import type { AuditSink, Clock } from '../domain/ports.ts'

/** The authn domain's AuditSink on the bus's hash-chained AUDIT stream (adds the time). */
export function createAuditSink(log: AuditLog, clock: Clock): AuditSink {
  return {
    append: (e) =>
      log.append({
        time: clock.now().toISOString(),
        tenant: e.tenant,
        principal: e.principal,
        action: e.action,
        resource: e.resource,
        result: e.result,
        ...(e.code === undefined ? {} : { code: e.code }),
        ...(e.details === undefined ? {} : { details: { ...e.details } }),
      }),
  }
}
