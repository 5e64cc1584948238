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
  close(): Promise<void>
}

export async function createKeyStore(repo: KvRepository<KeyRecord>): Promise<CachedKeyStore> {
  const cache = new Map<string, Versioned<KeyRecord>>()
  const watcher = await repo.watch('', (e) => {
    if (e.op === 'delete' || e.value === undefined) {
      cache.delete(e.key)
      return
    }
    const current = cache.get(e.key)
    if (current === undefined || current.revision < e.revision)
      cache.set(e.key, { value: e.value, revision: e.revision })
  })

  async function read(k: string): Promise<Versioned<KeyRecord> | undefined> {
    const hit = cache.get(k)
    if (hit !== undefined) return hit
    const fresh = await repo.get(k)
    if (fresh !== undefined) cache.set(k, fresh)
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
      cache.set(k, { value: key, revision })
      return revision
    },
    async update(key, revision) {
      const k = kvKey(key.tenant, key.id)
      try {
        const next = await repo.update(k, key, revision)
        const cur = cache.get(k)
        if (cur === undefined || cur.revision < next) cache.set(k, { value: key, revision: next })
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
    async close() {
      await watcher.stop()
    },
  }
}
