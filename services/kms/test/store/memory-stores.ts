/**
 * In-memory KeyStore / SecretStore for unit tests. They pass the same contract suite
 * (`store-contract.ts`) as the JetStream adapters, which is what makes them acceptable fakes.
 */
import { M2msecError } from '@m2msec/errors'
import type { KeyStore, SecretStore, StoredSecret, Versioned } from '../../src/domain/ports.ts'
import type { KeyRecord } from '../../src/domain/model.ts'

export function createMemoryKeyStore(): KeyStore {
  const rows = new Map<string, Versioned<KeyRecord>>()
  let seq = 0
  const k = (tenant: string, id: string) => `${tenant}\0${id}`
  return {
    async get(tenant, id) {
      const row = rows.get(k(tenant, id))
      return row === undefined ? undefined : structuredClone(row)
    },
    async create(key) {
      if (rows.has(k(key.tenant, key.id))) throw new M2msecError('ERR_ALREADY_EXISTS', 'key exists')
      rows.set(k(key.tenant, key.id), { value: structuredClone(key), revision: ++seq })
      return seq
    },
    async update(key, revision) {
      const row = rows.get(k(key.tenant, key.id))
      if (row === undefined || row.revision !== revision)
        throw new M2msecError('ERR_REVISION_CONFLICT', 'stale revision')
      rows.set(k(key.tenant, key.id), { value: structuredClone(key), revision: ++seq })
      return seq
    },
    async list(tenant, page) {
      const ids = [...rows.values()]
        .filter((r) => r.value.tenant === tenant && (page.after === undefined || r.value.id > page.after))
        .map((r) => r.value)
        .sort((a, b) => (a.id < b.id ? -1 : 1))
      const items = ids.slice(0, page.limit).map((x) => structuredClone(x))
      const last = items.at(-1)
      return ids.length > page.limit && last !== undefined ? { items, next: last.id } : { items }
    },
  }
}

export function createMemorySecretStore(): SecretStore {
  const rows = new Map<string, StoredSecret>()
  const k = (t: string, o: string, n: string) => `${t}\0${o}\0${n}`
  return {
    async get(t, o, n) {
      return rows.get(k(t, o, n))
    },
    async put(s) {
      rows.set(k(s.tenant, s.owner, s.name), s)
    },
    async delete(t, o, n) {
      return rows.delete(k(t, o, n))
    },
    async list(t, o, page) {
      const all = [...rows.values()]
        .filter((s) => s.tenant === t && s.owner === o && (page.after === undefined || s.name > page.after))
        .sort((a, b) => (a.name < b.name ? -1 : 1))
      const items = all.slice(0, page.limit)
      const last = items.at(-1)
      return all.length > page.limit && last !== undefined ? { items, next: last.name } : { items }
    },
  }
}
