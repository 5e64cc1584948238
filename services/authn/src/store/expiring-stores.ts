/**
 * Session keys (bucket `authn-sessions`, key `<tenant>.<session id>`), MAF client
 * registrations (`authn-maf-clients`, `<tenant>.<client id>`) and MAF key registrations
 * (`authn-maf-keys`, `<tenant>.<RelativeKeyID>`) on JetStream KV. Records carry their own
 * expiry, which reads check; the sweeper deletes expired records (revision-checked) and
 * lists them across tenants through `list`.
 */
import { kvKey, type KvRepository } from '@m2msec/bus'
import type { MafClientRecord, MafKeyRecord, SessionKeyRecord } from '../domain/model.ts'
import type { MafClientStore, MafKeyStore, SessionKeyStore, Versioned, VersionedPage } from '../domain/ports.ts'

async function listAll<T>(repo: KvRepository<T>, page: { limit: number; after?: string }): Promise<VersionedPage<T>> {
  const res = await repo.list('', { limit: page.limit, ...(page.after === undefined ? {} : { after: page.after }) })
  const items = res.items.map((i) => ({ value: i.value, revision: i.revision }))
  return res.next === undefined ? { items } : { items, next: res.next }
}

function matching<T extends { tenant: string }>(
  found: Versioned<T> | undefined,
  tenant: string,
  same: (v: T) => boolean,
): Versioned<T> | undefined {
  return found !== undefined && found.value.tenant === tenant && same(found.value) ? found : undefined
}

/** The SessionKeyStore port on `authn-sessions`. */
export function createSessionKeyStore(repo: KvRepository<SessionKeyRecord>): SessionKeyStore {
  return {
    create: (r) => repo.create(kvKey(r.tenant, r.sessionId), r),
    get: async (tenant, id) => matching(await repo.get(kvKey(tenant, id)), tenant, (v) => v.sessionId === id),
    delete: (tenant, id, revision) => repo.delete(kvKey(tenant, id), revision),
    list: (page) => listAll(repo, page),
  }
}

/** The MafClientStore port on `authn-maf-clients`. */
export function createMafClientStore(repo: KvRepository<MafClientRecord>): MafClientStore {
  return {
    get: async (tenant, id) => matching(await repo.get(kvKey(tenant, id)), tenant, (v) => v.clientId === id),
    async put(r) {
      return (await repo.modify(kvKey(r.tenant, r.clientId), () => r)).revision
    },
    delete: (tenant, id, revision) => repo.delete(kvKey(tenant, id), revision),
    list: (page) => listAll(repo, page),
  }
}

/** The MafKeyStore port on `authn-maf-keys`. */
export function createMafKeyStore(repo: KvRepository<MafKeyRecord>): MafKeyStore {
  return {
    get: async (tenant, id) => matching(await repo.get(kvKey(tenant, id)), tenant, (v) => v.relativeKeyId === id),
    create: (r) => repo.create(kvKey(r.tenant, r.relativeKeyId), r),
    update: (r, revision) => repo.update(kvKey(r.tenant, r.relativeKeyId), r, revision),
    delete: (tenant, id, revision) => repo.delete(kvKey(tenant, id), revision),
    list: (page) => listAll(repo, page),
  }
}
