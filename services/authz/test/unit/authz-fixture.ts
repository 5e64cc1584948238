/**
 * Domain test fixture: the authz operations on the in-memory store, a recording audit sink, a
 * fixed clock and a scripted sampler.
 */
import { M2msecError } from '@m2msec/errors'
import { fixedClock, type FixedClock } from '@m2msec/testkit'
import type { Caller } from '../../src/domain/model.ts'
import type { AuditEntry, DasDeps } from '../../src/domain/ports.ts'
import { createAuthzOperations, type AuthzOperations } from '../../src/domain/operations/index.ts'
import { createMemoryPolicyStore, type MemoryPolicyStore } from '../store/memory-store.ts'

export interface AuthzFixture {
  readonly ops: AuthzOperations
  readonly store: MemoryPolicyStore
  readonly audit: AuditEntry[]
  readonly clock: FixedClock
  /** Makes every audit append fail while set. */
  auditDown: boolean
  /** What the sampler returns next (uniform [0, 1)). */
  sample: number
}

/** Tuesday 2025-03-04, 02:03:04 UTC. */
export const T0 = '2025-03-04T02:03:04Z'

export function authzFixture(allowSampleRate = 0.01, das?: DasDeps): AuthzFixture {
  const store = createMemoryPolicyStore()
  const audit: AuditEntry[] = []
  const clock = fixedClock(T0)
  const f: AuthzFixture = {
    store,
    audit,
    clock,
    auditDown: false,
    sample: 0.5,
    ops: createAuthzOperations({
      store,
      index: store,
      clock,
      allowSampleRate,
      ...(das === undefined ? {} : { das }),
      sampler: { next: () => f.sample },
      audit: {
        async append(e) {
          if (f.auditDown) throw new M2msecError('ERR_AUDIT_UNAVAILABLE', 'audit down')
          audit.push(e)
        },
      },
    }),
  }
  return f
}

export const admin: Caller = { tenant: 'acme', id: 'ops', roles: ['admin'] }
export const owner: Caller = { tenant: 'acme', id: 'owner', roles: [], ipAddress: '10.1.2.3' }
export const stranger: Caller = { tenant: 'acme', id: 'stranger', roles: ['device'] }
export const cse: Caller = { tenant: 'acme', id: 'in-cse', roles: ['cse'] }
export const otherAdmin: Caller = { tenant: 'globex', id: 'ops', roles: ['admin'] }

/**
 * A policy as a PEP would send it (TS-0004 long names): `reader` may RETRIEVE, `owner` may do
 * everything to the policy itself.
 */
export function policyJson(id: string, reader = 'Cae-reader', selfRules?: unknown[]): Record<string, unknown> {
  return {
    id,
    privileges: { accessControlRule: [{ accessControlOriginators: [reader], accessControlOperations: 2 }] },
    selfPrivileges: {
      accessControlRule: selfRules ?? [{ accessControlOriginators: ['owner'], accessControlOperations: 63 }],
    },
  }
}
