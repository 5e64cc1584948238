/**
 * In-memory GroupTreeStore for the group key unit tests (same contract as the KV store:
 * revision-checked head, ERR_ALREADY_EXISTS on a second create of a head, journal or
 * snapshot). `failNext` makes a later call of one method throw ERR_UNAVAILABLE (a store that
 * goes away half way); `calls` counts calls per method.
 */
import { M2msecError } from '@m2msec/errors'
import type { GroupTreeStore, Journal, SnapshotChunk, TreeHead } from '../../src/group-keys/store.ts'

export interface MemoryTreeStore extends GroupTreeStore {
  /** The call of `method` after `skip` more calls throws ERR_UNAVAILABLE. */
  failNext(method: keyof GroupTreeStore, skip?: number): void
  /** Number of stored records of a tree (head, journals, snapshot chunks). */
  count(tenant: string, groupId: string): number
  /** Calls per store method since the last `resetCalls()`. */
  readonly calls: Map<string, number>
  resetCalls(): void
}

export function createMemoryTreeStore(): MemoryTreeStore {
  const heads = new Map<string, { value: TreeHead; revision: number }>()
  /** `<tenant>\0<group>\0j\0<id>` or `<tenant>\0<group>\0c\0<id>\0<part>` */
  const records = new Map<string, Journal | SnapshotChunk>()
  const calls = new Map<string, number>()
  const failing = new Map<string, number>()
  let revision = 0
  const k = (t: string, g: string) => `${t}\0${g}`
  const copy = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T
  const enter = (method: keyof GroupTreeStore): void => {
    calls.set(method, (calls.get(method) ?? 0) + 1)
    const skip = failing.get(method)
    if (skip === undefined) return
    if (skip > 0) failing.set(method, skip - 1)
    else {
      failing.delete(method)
      throw new M2msecError('ERR_UNAVAILABLE', 'store went away')
    }
  }
  const create = (key: string, value: Journal | SnapshotChunk): void => {
    if (records.has(key)) throw new M2msecError('ERR_ALREADY_EXISTS', 'exists')
    records.set(key, copy(value))
  }
  return {
    async getHead(t, g) {
      enter('getHead')
      const h = heads.get(k(t, g))
      return h === undefined ? undefined : { value: copy(h.value), revision: h.revision }
    },
    async createHead(t, g, head) {
      enter('createHead')
      if (heads.has(k(t, g))) throw new M2msecError('ERR_ALREADY_EXISTS', 'exists')
      heads.set(k(t, g), { value: copy(head), revision: ++revision })
      return revision
    },
    async updateHead(t, g, head, rev) {
      enter('updateHead')
      const h = heads.get(k(t, g))
      if (h === undefined || h.revision !== rev) throw new M2msecError('ERR_REVISION_CONFLICT', 'conflict')
      heads.set(k(t, g), { value: copy(head), revision: ++revision })
      return revision
    },
    async putJournal(t, g, id, j) {
      enter('putJournal')
      create(`${k(t, g)}\0j\0${id}`, j)
    },
    async getJournal(t, g, id) {
      enter('getJournal')
      const j = records.get(`${k(t, g)}\0j\0${id}`)
      return j === undefined ? undefined : (copy(j) as Journal)
    },
    async putSnapshot(t, g, id, chunks) {
      enter('putSnapshot')
      chunks.forEach((c, i) => create(`${k(t, g)}\0c\0${id}\0${i}`, c))
    },
    async getSnapshot(t, g, ref) {
      enter('getSnapshot')
      const out: SnapshotChunk[] = []
      for (let i = 0; i < ref.chunks; i++) {
        const c = records.get(`${k(t, g)}\0c\0${ref.id}\0${i}`)
        if (c === undefined) return undefined
        out.push(copy(c) as SnapshotChunk)
      }
      return out
    },
    async deleteRecords(t, g, r) {
      enter('deleteRecords')
      for (const id of r.journals) records.delete(`${k(t, g)}\0j\0${id}`)
      if (r.snapshot !== undefined) {
        for (let i = 0; i < r.snapshot.chunks; i++) records.delete(`${k(t, g)}\0c\0${r.snapshot.id}\0${i}`)
      }
    },
    async deleteTree(t, g) {
      enter('deleteTree')
      for (const key of records.keys()) if (key.startsWith(`${k(t, g)}\0`)) records.delete(key)
      heads.delete(k(t, g))
    },
    failNext(method, skip = 0) {
      failing.set(method, skip)
    },
    count(t, g) {
      let n = heads.has(k(t, g)) ? 1 : 0
      for (const key of records.keys()) if (key.startsWith(`${k(t, g)}\0`)) n++
      return n
    },
    calls,
    resetCalls() {
      calls.clear()
    },
  }
}
