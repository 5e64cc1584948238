/**
 * In-memory PolicyStore + DecisionIndex for unit tests. It passes the same contract suite as
 * the JetStream adapter (store-contract.ts), which is what makes it acceptable as a fake.
 */
import { compilePolicies, type PolicyIndex } from '@m2msec/acp'
import { M2msecError } from '@m2msec/errors'
import type { PolicyRecord, Versioned } from '../../src/domain/model.ts'
import type { DecisionIndex, PolicyStore } from '../../src/domain/ports.ts'

export interface MemoryPolicyStore extends PolicyStore, DecisionIndex {
  /** Fails every call with ERR_UNAVAILABLE while set (store outage). */
  down: boolean
}

export function createMemoryPolicyStore(): MemoryPolicyStore {
  const records = new Map<string, Versioned<PolicyRecord>>()
  const indexes = new Map<string, PolicyIndex>()
  let revision = 0
  const key = (tenant: string, id: string) => JSON.stringify([tenant, id])
  const store: MemoryPolicyStore = {
    down: false,
    forTenant(tenant) {
      return indexes.get(tenant) ?? compilePolicies([])
    },
    async get(tenant, id) {
      guard()
      return records.get(key(tenant, id))
    },
    async create(record) {
      guard()
      const k = key(record.tenant, record.policy.id)
      if (records.has(k)) throw new M2msecError('ERR_ALREADY_EXISTS', 'exists')
      return write(k, record)
    },
    async update(record, rev) {
      guard()
      const k = key(record.tenant, record.policy.id)
      if (records.get(k)?.revision !== rev) throw new M2msecError('ERR_REVISION_CONFLICT', 'conflict')
      return write(k, record)
    },
    async delete(tenant, id, rev) {
      guard()
      const k = key(tenant, id)
      if (records.get(k)?.revision !== rev) throw new M2msecError('ERR_REVISION_CONFLICT', 'conflict')
      records.delete(k)
      revision++
      indexes.get(tenant)?.remove(id)
    },
    async list(tenant, page) {
      guard()
      const all = [...records.values()]
        .filter((r) => r.value.tenant === tenant)
        .sort((a, b) => (a.value.policy.id < b.value.policy.id ? -1 : 1))
        .filter((r) => page.after === undefined || r.value.policy.id > page.after)
      const items = all.slice(0, page.limit)
      const last = items.at(-1)
      return all.length > page.limit && last !== undefined ? { items, next: last.value.policy.id } : { items }
    },
  }
  function guard(): void {
    if (store.down) throw new M2msecError('ERR_UNAVAILABLE', 'store down')
  }
  function write(k: string, record: PolicyRecord): number {
    let index = indexes.get(record.tenant)
    if (index === undefined) {
      index = compilePolicies([])
      indexes.set(record.tenant, index)
    }
    index.upsert(record.policy)
    revision++
    records.set(k, { value: record, revision })
    return revision
  }
  return store
}
