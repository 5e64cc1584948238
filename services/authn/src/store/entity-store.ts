/**
 * EntityStore on JetStream KV (bucket `authn-entities`, key `<tenant>.<entity id>`, each part
 * escaped by kvKey). Reads always go to KV: a disabled entity or revoked credential is refused
 * by every replica as soon as the write returned.
 */
import { kvKey, parseKvKey, type KvRepository } from '@m2msec/bus'
import type { EntityRecord } from '../domain/model.ts'
import type { EntityStore } from '../domain/ports.ts'

/** The EntityStore port on the `authn-entities` bucket. */
export function createEntityStore(repo: KvRepository<EntityRecord>): EntityStore {
  return {
    async get(tenant, id) {
      const found = await repo.get(kvKey(tenant, id))
      return found !== undefined && found.value.tenant === tenant && found.value.id === id ? found : undefined
    },
    create: (entity) => repo.create(kvKey(entity.tenant, entity.id), entity),
    update: (entity, revision) => repo.update(kvKey(entity.tenant, entity.id), entity, revision),
    async list(tenant, page) {
      const res = await repo.list(kvKey(tenant), {
        limit: page.limit,
        ...(page.after === undefined ? {} : { after: kvKey(tenant, page.after) }),
      })
      const items = res.items.map((i) => i.value)
      const last = res.items.at(-1)
      return res.next === undefined || last === undefined
        ? { items }
        : { items, next: parseKvKey(last.key).at(-1) ?? '' }
    },
  }
}
