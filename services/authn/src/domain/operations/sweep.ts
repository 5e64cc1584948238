/**
 * The sweeper: removes expired session keys, MAF keys and MAF client registrations, and
 * retires the KMS keys of the first two (scheduled destruction: unusable at once). Reads
 * already treat expired records as absent, so the sweeper only bounds how long a key stays
 * usable in the KMS after its expiry (one sweep interval) and keeps the buckets small.
 * Every replica may run it: a record is deleted with its revision, so each is handled once
 * (a retired key may be retired twice, which is harmless).
 */
import { isM2msecError } from '@m2msec/errors'
import { appendOrFail } from '../audit.ts'
import { retireKmsKey } from '../keys-lifecycle.ts'
import type { AuthnDeps, Versioned, VersionedPage } from '../ports.ts'

/** How many records one sweep removed. */
export interface SweepResult {
  readonly sessionKeys: number
  readonly mafKeys: number
  readonly mafClients: number
}

const PAGE = 500

async function sweepStore<T extends { tenant: string; expiresAt: string }>(
  deps: AuthnDeps,
  list: (page: { limit: number; after?: string }) => Promise<VersionedPage<T>>,
  remove: (item: Versioned<T>) => Promise<void>,
): Promise<number> {
  let removed = 0
  let after: string | undefined
  do {
    const page = await list({ limit: PAGE, ...(after === undefined ? {} : { after }) })
    const now = deps.clock.now().getTime()
    for (const item of page.items) {
      if (Date.parse(item.value.expiresAt) > now) continue
      try {
        await remove(item)
        removed++
      } catch (err) {
        // Another replica got there first; anything else waits for the next sweep.
        if (!isM2msecError(err) || err.code !== 'ERR_REVISION_CONFLICT') deps.onBackgroundError?.(err)
      }
    }
    after = page.next
  } while (after !== undefined)
  return removed
}

async function audit(deps: AuthnDeps, tenant: string, action: string, resource: string): Promise<void> {
  await appendOrFail(deps, {
    tenant,
    principal: 'system',
    action,
    resource,
    result: 'ok',
    details: { reason: 'expired' },
  })
}

/** One sweep over every tenant. */
export async function sweepExpired(deps: AuthnDeps): Promise<SweepResult> {
  const sessionKeys = await sweepStore(
    deps,
    (p) => deps.sessions.list(p),
    async ({ value, revision }) => {
      await retireKmsKey(deps, value.tenant, value.kmsKeyId)
      await deps.sessions.delete(value.tenant, value.sessionId, revision)
      await audit(deps, value.tenant, 'authn.ExpireSessionKey', `session/${value.sessionId}`)
    },
  )
  const mafKeys = await sweepStore(
    deps,
    (p) => deps.mafKeys.list(p),
    async ({ value, revision }) => {
      await retireKmsKey(deps, value.tenant, value.kmsKeyId)
      await deps.mafKeys.delete(value.tenant, value.relativeKeyId, revision)
      await audit(deps, value.tenant, 'authn.ExpireMafKey', `maf-key/${value.relativeKeyId}`)
    },
  )
  const mafClients = await sweepStore(
    deps,
    (p) => deps.mafClients.list(p),
    async ({ value, revision }) => {
      await deps.mafClients.delete(value.tenant, value.clientId, revision)
      await audit(deps, value.tenant, 'authn.ExpireMafClient', `maf-client/${value.clientId}`)
    },
  )
  return { sessionKeys, mafKeys, mafClients }
}
