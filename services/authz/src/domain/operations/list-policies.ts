import { isAdmin, selfPrivilegesAllow } from '../access.ts'
import { audited } from '../audit.ts'
import { pageSize } from '../limits.ts'
import type { Caller, PolicyRecord, Versioned } from '../model.ts'
import type { AuthzDeps } from '../ports.ts'

/**
 * ListPolicies: the tenant's policies ordered by id. Admins see all; other callers see the
 * policies whose selfPrivileges grant them DISCOVERY.
 *
 * @example
 * ```ts
 * const page = await ops.listPolicies(caller, { pageSize: 50 })
 * ```
 */
export async function listPolicies(
  deps: AuthzDeps,
  caller: Caller,
  page: { pageSize: number; pageToken?: string },
): Promise<{ policies: Array<Versioned<PolicyRecord>>; nextPageToken?: string }> {
  return audited(deps, caller, { action: 'authz.ListPolicies', resource: 'policies' }, async () => {
    const limit = pageSize(page.pageSize)
    const admin = isAdmin(caller)
    const policies: Array<Versioned<PolicyRecord>> = []
    let after = page.pageToken === undefined || page.pageToken === '' ? undefined : page.pageToken
    // Non-admins may see only some policies: keep reading pages until this one is full.
    for (;;) {
      const res = await deps.store.list(caller.tenant, { limit, ...(after === undefined ? {} : { after }) })
      for (const p of res.items) {
        if (admin || selfPrivilegesAllow(deps, caller, p.value, 'discovery')) policies.push(p)
        if (policies.length === limit) {
          return res.next === undefined && p === res.items.at(-1)
            ? { policies }
            : { policies, nextPageToken: p.value.policy.id }
        }
      }
      if (res.next === undefined) return { policies }
      after = res.next
    }
  })
}
