/**
 * Role checks and tenant-scoped loads shared by the operations. An entity of another tenant
 * is reported exactly like an unknown one (ERR_NOT_FOUND).
 */
import { M2msecError } from '@m2msec/errors'
import { ADMIN_ROLE, OPERATOR_ROLE, type Caller, type EntityRecord, type TenantRecord } from './model.ts'
import type { AuthnDeps, Versioned } from './ports.ts'

/** Throws ERR_PERMISSION_DENIED unless the caller is an operator of the platform tenant. */
export function requireOperator(deps: AuthnDeps, caller: Caller, action: string): void {
  if (caller.tenant !== deps.settings.operatorTenant || !caller.roles.includes(OPERATOR_ROLE)) {
    throw new M2msecError('ERR_PERMISSION_DENIED', `${action} needs the ${OPERATOR_ROLE} role of the platform`)
  }
}

/** True for tenant admins. */
export function isAdmin(caller: Caller): boolean {
  return caller.roles.includes(ADMIN_ROLE)
}

/** Throws ERR_PERMISSION_DENIED unless the caller is an admin of its tenant. */
export function requireAdmin(caller: Caller, action: string): void {
  if (!isAdmin(caller)) throw new M2msecError('ERR_PERMISSION_DENIED', `${action} needs the ${ADMIN_ROLE} role`)
}

/** The caller's tenant record; ERR_FAILED_PRECONDITION when authn does not know the tenant. */
export async function loadCallerTenant(deps: AuthnDeps, caller: Caller): Promise<Versioned<TenantRecord>> {
  const found = await deps.tenants.get(caller.tenant)
  if (found === undefined) {
    throw new M2msecError('ERR_FAILED_PRECONDITION', 'the caller’s tenant is not registered with authn')
  }
  return found
}

/** Like {@link loadCallerTenant}, and the tenant must be enabled. */
export async function loadEnabledCallerTenant(deps: AuthnDeps, caller: Caller): Promise<Versioned<TenantRecord>> {
  const found = await loadCallerTenant(deps, caller)
  if (found.value.state !== 'ENABLED') throw new M2msecError('ERR_FAILED_PRECONDITION', 'tenant is disabled')
  return found
}

/** The error for unknown and foreign entities alike. */
export function entityNotFound(): M2msecError {
  return new M2msecError('ERR_NOT_FOUND', 'entity not found')
}

/** An entity of the caller's tenant, or ERR_NOT_FOUND (also for malformed ids). */
export async function loadEntity(deps: AuthnDeps, caller: Caller, entityId: string): Promise<Versioned<EntityRecord>> {
  if (typeof entityId !== 'string' || entityId.length === 0 || entityId.length > 256) throw entityNotFound()
  const found = await deps.entities.get(caller.tenant, entityId)
  if (found === undefined || found.value.tenant !== caller.tenant) throw entityNotFound()
  return found
}
