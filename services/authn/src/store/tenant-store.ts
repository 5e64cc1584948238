/**
 * TenantStore on JetStream KV (bucket `authn-tenants`, key = the tenant id). Every replica
 * keeps an in-memory copy fed by a KV watch, so the token path reads tenants without a NATS
 * round trip and a disabled tenant is seen by every replica within milliseconds. Writes are
 * revision-checked; a conflict drops the cached entry so the retry reads the current value.
 */
import { kvKey, parseKvKey, type KvRepository } from '@m2msec/bus'
import type { TenantRecord } from '../domain/model.ts'
import type { TenantStore, Versioned } from '../domain/ports.ts'

/** A TenantStore whose KV watch must be stopped. */
export interface CachedTenantStore extends TenantStore {
  close(): Promise<void>
}

/** The TenantStore port on the `authn-tenants` bucket; resolves once the watch runs. */
export async function createTenantStore(repo: KvRepository<TenantRecord>): Promise<CachedTenantStore> {
  const cache = new Map<string, Versioned<TenantRecord>>()
  const watcher = await repo.watch('', (e) => {
    if (e.op === 'delete' || e.value === undefined) {
      cache.delete(e.key)
      return
    }
    const cur = cache.get(e.key)
    if (cur === undefined || cur.revision < e.revision) cache.set(e.key, { value: e.value, revision: e.revision })
  })
  const remember = (k: string, value: TenantRecord, revision: number) => {
    const cur = cache.get(k)
    if (cur === undefined || cur.revision < revision) cache.set(k, { value, revision })
  }
  return {
    async get(id) {
      const k = kvKey(id)
      const hit = cache.get(k)
      if (hit !== undefined) return hit
      const fresh = await repo.get(k)
      if (fresh !== undefined) remember(k, fresh.value, fresh.revision)
      return fresh
    },
    async create(tenant) {
      const k = kvKey(tenant.id)
      const revision = await repo.create(k, tenant)
      remember(k, tenant, revision)
      return revision
    },
    async update(tenant, revision) {
      const k = kvKey(tenant.id)
      try {
        const next = await repo.update(k, tenant, revision)
        remember(k, tenant, next)
        return next
      } catch (err) {
        cache.delete(k)
        throw err
      }
    },
    async list(page) {
      const res = await repo.list('', {
        limit: page.limit,
        ...(page.after === undefined ? {} : { after: kvKey(page.after) }),
      })
      const items = res.items.map((i) => i.value)
      const last = res.items.at(-1)
      return res.next === undefined || last === undefined ? { items } : { items, next: parseKvKey(last.key)[0] ?? '' }
    },
    async close() {
      await watcher.stop()
    },
  }
}
