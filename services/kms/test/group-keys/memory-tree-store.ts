/**
 * In-memory GroupTreeStore for the group key unit tests (same contract as the KV store:
 * revision-checked head, ERR_ALREADY_EXISTS on a second create). `failApplyOnce` simulates a
 * writer that dies after committing the head but before finishing the records.
 */
import { M2msecError } from '@m2msec/errors'
import type { GroupTreeStore, Journal, NodeRecord, SlotRecord, TreeHead } from '../../src/group-keys/store.ts'

export interface MemoryTreeStore extends GroupTreeStore {
  failApplyOnce(): void
  /** Number of stored records of a tree (head, slots, nodes, journals). */
  count(tenant: string, groupId: string): number
}

export function createMemoryTreeStore(): MemoryTreeStore {
  const heads = new Map<string, { value: TreeHead; revision: number }>()
  const slots = new Map<string, Map<number, SlotRecord>>()
  const nodes = new Map<string, Map<string, NodeRecord>>()
  const journals = new Map<string, Journal>()
  let revision = 0
  let failNext = false
  const k = (t: string, g: string) => `${t}\0${g}`
  const copy = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T
  const of = <V>(m: Map<string, Map<V extends SlotRecord ? number : string, V>>, key: string) => {
    let inner = m.get(key)
    if (inner === undefined) {
      inner = new Map()
      m.set(key, inner)
    }
    return inner
  }
  return {
    async getHead(t, g) {
      const h = heads.get(k(t, g))
      return h === undefined ? undefined : { value: copy(h.value), revision: h.revision }
    },
    async createHead(t, g, head) {
      if (heads.has(k(t, g))) throw new M2msecError('ERR_ALREADY_EXISTS', 'exists')
      heads.set(k(t, g), { value: copy(head), revision: ++revision })
      return revision
    },
    async updateHead(t, g, head, rev) {
      const h = heads.get(k(t, g))
      if (h === undefined || h.revision !== rev) throw new M2msecError('ERR_REVISION_CONFLICT', 'conflict')
      heads.set(k(t, g), { value: copy(head), revision: ++revision })
      return revision
    },
    async putJournal(t, g, id, j) {
      journals.set(`${k(t, g)}\0${id}`, copy(j))
    },
    async getJournal(t, g, id) {
      const j = journals.get(`${k(t, g)}\0${id}`)
      return j === undefined ? undefined : copy(j)
    },
    async deleteJournal(t, g, id) {
      journals.delete(`${k(t, g)}\0${id}`)
    },
    async applyJournal(t, g, j) {
      if (failNext) {
        failNext = false
        throw new M2msecError('ERR_UNAVAILABLE', 'store went away')
      }
      const s = of<SlotRecord>(slots, k(t, g))
      const n = of<NodeRecord>(nodes, k(t, g))
      for (const [slot, member, cred] of j.slots) s.set(slot, { member, cred })
      for (const [l, p, version, sealed] of j.nodes) n.set(`${l}.${p}`, { version, sealed })
      for (const [l, p] of j.dropped) n.delete(`${l}.${p}`)
    },
    async loadRecords(t, g) {
      return { slots: new Map(slots.get(k(t, g)) ?? []), nodes: new Map(nodes.get(k(t, g)) ?? []) }
    },
    async deleteTree(t, g) {
      slots.delete(k(t, g))
      nodes.delete(k(t, g))
      for (const key of journals.keys()) if (key.startsWith(`${k(t, g)}\0`)) journals.delete(key)
      heads.delete(k(t, g))
    },
    failApplyOnce() {
      failNext = true
    },
    count(t, g) {
      let n = heads.has(k(t, g)) ? 1 : 0
      n += slots.get(k(t, g))?.size ?? 0
      n += nodes.get(k(t, g))?.size ?? 0
      for (const key of journals.keys()) if (key.startsWith(`${k(t, g)}\0`)) n++
      return n
    },
  }
}
