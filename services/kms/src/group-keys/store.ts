/**
 * Storage of group key trees: one record per leaf slot and per keyed node, so a 100,000-member
 * tree stays far below the 1 MB JetStream KV value limit and a rekey writes O(log n) small
 * records. Node keys are stored sealed (see `sealing.ts`), never in the clear.
 *
 * Consistency across replicas: the tree's `head` record is the commit point. A change first
 * writes a journal record (the whole delta of one epoch), then moves the head to the new epoch
 * with a revision-checked update that names the journal, then applies the journal to the slot
 * and node records and clears it. Whoever finds a head that still names a journal (a writer
 * crashed half way) applies it again: every journal entry is a plain "set" or "delete", so
 * applying it twice is harmless. A writer that loses the head update deletes its journal and
 * fails with ERR_REVISION_CONFLICT; nothing else was written.
 */
import { isM2msecError } from '@m2msec/errors'
import { KvRepository, kvKey, parseKvKey, type NatsConnection } from '@m2msec/bus'

/** The commit record of a tree (no secrets). */
export interface TreeHead {
  readonly v: 1
  readonly groupId: string
  readonly arity: number
  readonly height: number
  readonly epoch: number
  /** High-water mark of leaf slots ever used. */
  readonly slotsUsed: number
  readonly memberCount: number
  readonly createdAt: string
  /** Set while the journal of `epoch` may not be applied to the slot and node records yet. */
  readonly journal?: string
}

/** One leaf slot: the member there and the KMS key id of its credential (null when free). */
export interface SlotRecord {
  readonly member: string | null
  readonly cred: string | null
}

/** One keyed node: its key version and the sealed key (base64 of a KMS ciphertext envelope). */
export interface NodeRecord {
  readonly version: number
  readonly sealed: string
}

/** The delta of one epoch. */
export interface Journal {
  readonly epoch: number
  readonly slots: readonly (readonly [number, string | null, string | null])[]
  /** [level, position, version, sealed] */
  readonly nodes: readonly (readonly [number, number, number, string])[]
  /** [level, position] of node keys that no longer exist. */
  readonly dropped: readonly (readonly [number, number])[]
}

/** A value with its store revision. */
export interface Revisioned<T> {
  readonly value: T
  readonly revision: number
}

/** Everything stored for one tree. */
export interface TreeRecords {
  readonly slots: ReadonlyMap<number, SlotRecord>
  /** Keyed by `<level>.<position>`. */
  readonly nodes: ReadonlyMap<string, NodeRecord>
}

/**
 * Storage port of group trees. Contract: `createHead` throws ERR_ALREADY_EXISTS for an existing
 * tree; `updateHead` throws ERR_REVISION_CONFLICT when the head moved since `revision`; reads of
 * unknown trees return undefined; store failures throw ERR_UNAVAILABLE.
 */
export interface GroupTreeStore {
  getHead(tenant: string, groupId: string): Promise<Revisioned<TreeHead> | undefined>
  createHead(tenant: string, groupId: string, head: TreeHead): Promise<number>
  updateHead(tenant: string, groupId: string, head: TreeHead, revision: number): Promise<number>
  putJournal(tenant: string, groupId: string, id: string, journal: Journal): Promise<void>
  getJournal(tenant: string, groupId: string, id: string): Promise<Journal | undefined>
  deleteJournal(tenant: string, groupId: string, id: string): Promise<void>
  /** Applies a journal to the slot and node records (idempotent). */
  applyJournal(tenant: string, groupId: string, journal: Journal): Promise<void>
  /** Every slot and node record of the tree. */
  loadRecords(tenant: string, groupId: string): Promise<TreeRecords>
  /** Removes every record of the tree, the head last. */
  deleteTree(tenant: string, groupId: string): Promise<void>
}

type StoredValue = TreeHead | SlotRecord | NodeRecord | Journal

/** Writes in flight per batch: enough to hide round trips, few enough not to flood NATS. */
const PARALLEL_WRITES = 64

async function inBatches<T>(items: readonly T[], run: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += PARALLEL_WRITES) {
    await Promise.all(items.slice(i, i + PARALLEL_WRITES).map(run))
  }
}

/** The KV bucket of group trees (one per KMS deployment). */
export const GROUP_TREE_BUCKET = 'kms-group-keys'

/**
 * A {@link GroupTreeStore} on a JetStream KV bucket. Keys: `<tenant>.<group>.head`,
 * `<tenant>.<group>.s.<slot>`, `<tenant>.<group>.n.<level>-<position>`, `<tenant>.<group>.j.<id>`.
 *
 * @example
 * ```ts
 * const store = await openGroupTreeStore(nc, { replicas: 3 })
 * ```
 */
export async function openGroupTreeStore(nc: NatsConnection, opts: { replicas: number }): Promise<GroupTreeStore> {
  const repo = await KvRepository.open<StoredValue>(nc, GROUP_TREE_BUCKET, { replicas: opts.replicas })
  return createKvGroupTreeStore(repo)
}

/** A {@link GroupTreeStore} over an opened repository (tests pass their own bucket). */
export function createKvGroupTreeStore(repo: KvRepository<StoredValue>): GroupTreeStore {
  const head = (t: string, g: string) => kvKey(t, g, 'head')
  const slot = (t: string, g: string, s: number) => kvKey(t, g, 's', String(s))
  const node = (t: string, g: string, l: number, p: number) => kvKey(t, g, 'n', `${l}-${p}`)
  const journal = (t: string, g: string, id: string) => kvKey(t, g, 'j', id)
  const put = (key: string, value: StoredValue) => repo.modify(key, () => value)
  const remove = async (key: string) => {
    try {
      await repo.delete(key)
    } catch (err) {
      if (!isM2msecError(err) || err.code !== 'ERR_NOT_FOUND') throw err
    }
  }
  const allKeys = async (t: string, g: string) => {
    const out: { key: string; value: StoredValue }[] = []
    let after: string | undefined
    for (;;) {
      const page = await repo.list(kvKey(t, g), after === undefined ? { limit: 1000 } : { limit: 1000, after })
      out.push(...page.items)
      if (page.next === undefined) return out
      after = page.next
    }
  }
  return {
    async getHead(t, g) {
      const found = await repo.get(head(t, g))
      return found === undefined ? undefined : { value: found.value as TreeHead, revision: found.revision }
    },
    createHead: (t, g, h) => repo.create(head(t, g), h),
    updateHead: (t, g, h, revision) => repo.update(head(t, g), h, revision),
    async putJournal(t, g, id, j) {
      await repo.create(journal(t, g, id), j)
    },
    async getJournal(t, g, id) {
      return (await repo.get(journal(t, g, id)))?.value as Journal | undefined
    },
    deleteJournal: (t, g, id) => remove(journal(t, g, id)),
    async applyJournal(t, g, j) {
      await inBatches(j.slots, ([s, member, cred]) => put(slot(t, g, s), { member, cred }))
      await inBatches(j.nodes, ([l, p, version, sealed]) => put(node(t, g, l, p), { version, sealed }))
      await inBatches(j.dropped, ([l, p]) => remove(node(t, g, l, p)))
    },
    async loadRecords(t, g) {
      const slots = new Map<number, SlotRecord>()
      const nodes = new Map<string, NodeRecord>()
      for (const { key, value } of await allKeys(t, g)) {
        const parts = parseKvKey(key)
        if (parts[2] === 's' && parts[3] !== undefined) slots.set(Number(parts[3]), value as SlotRecord)
        if (parts[2] === 'n' && parts[3] !== undefined) nodes.set(parts[3].replace('-', '.'), value as NodeRecord)
      }
      return { slots, nodes }
    },
    async deleteTree(t, g) {
      const keys = (await allKeys(t, g)).map((i) => i.key).filter((k) => k !== head(t, g))
      await inBatches(keys, remove)
      await remove(head(t, g))
    },
  }
}
