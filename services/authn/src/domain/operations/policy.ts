/**
 * Authentication policies: per tenant (defaults) and per entity (overrides). A policy says
 * how token subjects are formed (public id or pairwise pseudonym) and how long derived
 * session keys live. Unset fields inherit: entity → tenant → service settings.
 */
import { M2msecError } from '@m2msec/errors'
import { loadEnabledCallerTenant, requireAdmin } from '../access.ts'
import { audited } from '../audit.ts'
import type { AuthPolicyRecord, Caller, EntityRecord, SubjectType, TenantRecord } from '../model.ts'
import type { AuthnDeps } from '../ports.ts'
import { updateEntity } from './entities.ts'
import { updateTenant } from './tenants.ts'

/** A policy with every field resolved. */
export interface EffectivePolicy {
  readonly subjectType: SubjectType
  readonly sessionKeyLifetimeSec: number
}

/** The policy in effect for an entity (or, without one, for the tenant's entities). */
export function effectivePolicy(deps: AuthnDeps, tenant: TenantRecord, entity?: EntityRecord): EffectivePolicy {
  return {
    subjectType: entity?.policy?.subjectType ?? tenant.policy?.subjectType ?? 'PUBLIC',
    sessionKeyLifetimeSec:
      entity?.policy?.sessionKeyLifetimeSec ??
      tenant.policy?.sessionKeyLifetimeSec ??
      deps.settings.session.defaultLifetimeSec,
  }
}

/** Checks a policy; drops unset fields. ERR_INVALID_ARGUMENT names the bad field. */
export function validatePolicy(deps: AuthnDeps, p: AuthPolicyRecord): AuthPolicyRecord {
  const out: { subjectType?: SubjectType; sessionKeyLifetimeSec?: number } = {}
  if (p.subjectType !== undefined) {
    if (p.subjectType !== 'PUBLIC' && p.subjectType !== 'PAIRWISE') {
      throw new M2msecError('ERR_INVALID_ARGUMENT', 'subject_type is PUBLIC or PAIRWISE', {
        field: 'policy.subject_type',
      })
    }
    out.subjectType = p.subjectType
  }
  if (p.sessionKeyLifetimeSec !== undefined) {
    const max = deps.settings.session.maxLifetimeSec
    const v = p.sessionKeyLifetimeSec
    if (!Number.isInteger(v) || v < 60 || v > max) {
      throw new M2msecError('ERR_INVALID_ARGUMENT', `session_key_lifetime_sec must be 60-${max}`, {
        field: 'policy.session_key_lifetime_sec',
        max,
      })
    }
    out.sessionKeyLifetimeSec = v
  }
  return out
}

/**
 * SetAuthPolicy (tenant admin): replaces the tenant's policy (`entityId` empty) or an entity's;
 * returns the policy then in effect.
 */
export async function setAuthPolicy(
  deps: AuthnDeps,
  caller: Caller,
  req: { entityId: string; policy: AuthPolicyRecord },
): Promise<EffectivePolicy> {
  requireAdmin(caller, 'SetAuthPolicy')
  const policy = validatePolicy(deps, req.policy)
  const resource = req.entityId === '' ? `tenant/${caller.tenant}` : `entity/${req.entityId}`
  return audited(
    deps,
    caller,
    {
      action: 'authn.SetAuthPolicy',
      resource,
      details: {
        subjectType: policy.subjectType ?? 'inherit',
        sessionKeyLifetimeSec: policy.sessionKeyLifetimeSec ?? 0,
      },
    },
    async () => {
      const { value: tenant } = await loadEnabledCallerTenant(deps, caller)
      if (req.entityId === '') {
        const next = await updateTenant(deps, caller.tenant, (cur) => ({ ...cur, policy }))
        return effectivePolicy(deps, next)
      }
      const entity = await updateEntity(deps, caller, req.entityId, (cur) => ({ ...cur, policy }))
      return effectivePolicy(deps, tenant, entity)
    },
    { mutating: true },
  )
}
