import { grantedOperations, isAdmin } from '../access.ts'
import { audited } from '../audit.ts'
import { pageSize } from '../limits.ts'
import type { Caller, KeyRecord } from '../model.ts'
import type { KmsDeps } from '../ports.ts'

/**
 * ListKeys: the tenant's keys ordered by id. Admins see all; other callers see the keys their
 * usage policy names. Internal keys (ids starting with `_`) are never listed.
 */
export async function listKeys(
  deps: KmsDeps,
  caller: Caller,
  page: { pageSize: number; pageToken?: string },
): Promise<{ keys: KeyRecord[]; nextPageToken?: string }> {
  return audited(deps, caller, { action: 'kms.ListKeys', resource: 'keys' }, async () => {
    const limit = pageSize(page.pageSize)
    const admin = isAdmin(caller)
    const keys: KeyRecord[] = []
    let after = page.pageToken === undefined || page.pageToken === '' ? undefined : page.pageToken
    // Non-admins may see only some keys: keep reading pages until this one is full.
    for (;;) {
      const res = await deps.keys.list(caller.tenant, { limit, ...(after === undefined ? {} : { after }) })
      for (const k of res.items) {
        if (k.id.startsWith('_')) continue
        if (admin || grantedOperations(k, caller).size > 0) keys.push(k)
        if (keys.length === limit) {
          return res.next === undefined && k === res.items.at(-1) ? { keys } : { keys, nextPageToken: k.id }
        }
      }
      if (res.next === undefined) return { keys }
      after = res.next
    }
  })
}
