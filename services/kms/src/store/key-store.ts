/**
 * KeyStore on JetStream KV (bucket `kms-keys`, one entry per key: `<tenant>.<id>`, each part
 * escaped by kvKey). Every replica keeps an in-memory copy fed by a KV watch, so the hot path
 * (Encrypt, Sign, …) costs no NATS round trip, and a state change written by any replica is
 * seen by all within milliseconds. Writes go to KV with a revision check; a conflict drops the
 * cached entry so the retry reads the current value.
 */
import type { KvRepository } from '@m2msec/bus'
import { kvKey, parseKvKey } from '@m2msec/bus'
import type { KeyRecord } from '../domain/model.ts'
import type { KeyStore, Versioned } from '../domain/ports.ts'

export interface CachedKeyStore extends KeyStore {
  /** Keys in state DESTRUCTION_SCHEDULED, from the in-memory copy (no KV round trip). */
  scheduledForDestruction(): Array<{ tenant: string; id: string }>
  close(): Promise<void>
}

export async function createKeyStore(repo: KvRepository<KeyRecord>): Promise<CachedKeyStore> {
  const cache = new Map<string, Versioned<KeyRecord>>()
  // Kept beside the cache so the destruction sweeper never walks every key.
  const scheduled = new Set<string>()
  const remember = (k: string, entry: Versioned<KeyRecord>): void => {
    cache.set(k, entry)
    if (entry.value.state === 'DESTRUCTION_SCHEDULED') scheduled.add(k)
    else scheduled.delete(k)
  }
  const watcher = await repo.watch('', (e) => {
    if (e.op === 'delete' || e.value === undefined) {
      cache.delete(e.key)
      scheduled.delete(e.key)
      return
    }
    const current = cache.get(e.key)
    if (current === undefined || current.revision < e.revision)
      remember(e.key, { value: e.value, revision: e.revision })
  })

  async function read(k: string): Promise<Versioned<KeyRecord> | undefined> {
    const hit = cache.get(k)
    if (hit !== undefined) return hit
    const fresh = await repo.get(k)
    if (fresh !== undefined) remember(k, fresh)
    return fresh
  }

  return {
    async get(tenant, id) {
      const found = await read(kvKey(tenant, id))
      return found !== undefined && found.value.tenant === tenant && found.value.id === id ? found : undefined
    },
    async create(key) {
      const k = kvKey(key.tenant, key.id)
      const revision = await repo.create(k, key)
      remember(k, { value: key, revision })
      return revision
    },
    async update(key, revision) {
      const k = kvKey(key.tenant, key.id)
      try {
        const next = await repo.update(k, key, revision)
        const cur = cache.get(k)
        if (cur === undefined || cur.revision < next) remember(k, { value: key, revision: next })
        return next
      } catch (err) {
        cache.delete(k)
        throw err
      }
    },
    async list(tenant, page) {
      const prefix = kvKey(tenant)
      const res = await repo.list(`${prefix}.`, {
        limit: page.limit,
        ...(page.after === undefined ? {} : { after: kvKey(tenant, page.after) }),
      })
      const items = res.items.map((i) => i.value)
      const last = res.items.at(-1)
      return res.next === undefined || last === undefined
        ? { items }
        : { items, next: parseKvKey(last.key).at(-1) ?? '' }
    },
    scheduledForDestruction() {
      return [...scheduled].flatMap((k) => {
        const [tenant, id] = parseKvKey(k)
        return tenant === undefined || id === undefined ? [] : [{ tenant, id }]
      })
    },
    async close() {
      await watcher.stop()
    },
  }
}
