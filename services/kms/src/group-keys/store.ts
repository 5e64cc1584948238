/**
 * Storage of group key trees as a **snapshot plus a chain of journals**, so a membership
 * change costs a constant number of KV writes whatever the group size, and loading a tree
 * reads a few large records instead of one record per slot and node:
 *
 * - `head` (small, no secrets): the tree's description, the snapshot it starts from and the
 *   last journal. The head is the commit point: a change first writes its journal (the whole
 *   delta of one epoch, naming the previous journal), then moves the head to the new epoch
 *   with a revision-checked update that names the journal. A writer that loses the head update
 *   fails with ERR_REVISION_CONFLICT; its journal is an orphan nobody reads (removed by the
 *   next compaction or DeleteGroupTree).
 * - journals (immutable, written once): slot writes, new sealed node keys and dropped nodes of
 *   one epoch, and the id of the journal before it (the chain back to the snapshot).
 * - snapshots (immutable): the full state at one epoch (occupied slots with their credential
 *   key ids, every keyed node with its sealed key), in chunks well below the 1 MB KV value
 *   limit. Compaction writes a new snapshot and moves the head to it (revision-checked), then
 *   removes the old snapshot and the journals it covers.
 *
 * Node keys are stored sealed (see `sealing.ts`), never in the clear. Journals and snapshots
 * are never modified, so a reader that loaded the records a head names has a consistent
 * state; one that finds a record missing (a compaction removed it meanwhile) reads the head
 * again.
 */
import { isM2msecError } from '@m2msec/errors'
import { KvRepository, kvKey, type NatsConnection } from '@m2msec/bus'

/** The snapshot a head starts from. */
export interface SnapshotRef {
  readonly id: string
  readonly epoch: number
  readonly chunks: number
  /** Approximate encoded size (compaction policy). */
  readonly bytes: number
}

/** The journals of a head since its snapshot. */
export interface JournalRef {
  /** Id of the journal of the head's epoch. */
  readonly last: string
  /** Journals in the chain (epochs `snapshot.epoch + 1 .. epoch`). */
  readonly count: number
  /** Approximate encoded size of the chain. */
  readonly bytes: number
}

/** The commit record of a tree (no secrets). */
export interface TreeHead {
  readonly v: 2
  readonly groupId: string
  readonly arity: number
  readonly height: number
  readonly epoch: number
  /** High-water mark of leaf slots ever used. */
  readonly slotsUsed: number
  readonly memberCount: number
  readonly createdAt: string
  /** Null until the first compaction (the state then starts empty at epoch 0). */
  readonly snapshot: SnapshotRef | null
  /** Null when the snapshot is at the head's epoch. */
  readonly journal: JournalRef | null
}

/** [slot, member or null, credential key id or null] */
export type SlotEntry = readonly [number, string | null, string | null]
/** [level, position, version, sealed key (base64 of a KMS ciphertext envelope)] */
export type NodeEntry = readonly [number, number, number, string]

/** The delta of one epoch. */
export interface Journal {
  readonly epoch: number
  /** The journal of the previous epoch, null when the previous epoch is the snapshot's. */
  readonly prev: string | null
  readonly slots: readonly SlotEntry[]
  readonly nodes: readonly NodeEntry[]
  /** [level, position] of node keys that no longer exist. */
  readonly dropped: readonly (readonly [number, number])[]
}

/** One part of a snapshot: occupied slots and keyed nodes (parts may hold either). */
export interface SnapshotChunk {
  readonly epoch: number
  readonly slots: readonly SlotEntry[]
  readonly nodes: readonly NodeEntry[]
}

/** A value with its store revision. */
export interface Revisioned<T> {
  readonly value: T
  readonly revision: number
}

/**
 * Storage port of group trees. Contract: `createHead` throws ERR_ALREADY_EXISTS for an existing
 * tree; `updateHead` throws ERR_REVISION_CONFLICT when the head moved since `revision`;
 * `putJournal`/`putSnapshot` create new records (ERR_ALREADY_EXISTS for a taken id); reads of
 * unknown trees or records return undefined; store failures throw ERR_UNAVAILABLE.
 */
export interface GroupTreeStore {
  getHead(tenant: string, groupId: string): Promise<Revisioned<TreeHead> | undefined>
  createHead(tenant: string, groupId: string, head: TreeHead): Promise<number>
  updateHead(tenant: string, groupId: string, head: TreeHead, revision: number): Promise<number>
  putJournal(tenant: string, groupId: string, id: string, journal: Journal): Promise<void>
  getJournal(tenant: string, groupId: string, id: string): Promise<Journal | undefined>
  putSnapshot(tenant: string, groupId: string, id: string, chunks: readonly SnapshotChunk[]): Promise<void>
  /** The chunks in order, or undefined when any of them is missing. */
  getSnapshot(tenant: string, groupId: string, ref: SnapshotRef): Promise<SnapshotChunk[] | undefined>
  /** Removes journals and a snapshot that no head names any more (missing ones are ignored). */
  deleteRecords(
    tenant: string,
    groupId: string,
    records: { readonly journals: readonly string[]; readonly snapshot?: SnapshotRef },
  ): Promise<void>
  /** Removes every record of the tree, the head last. */
  deleteTree(tenant: string, groupId: string): Promise<void>
}

type StoredValue = TreeHead | Journal | SnapshotChunk

/** Requests in flight per batch: enough to hide round trips, few enough not to flood NATS. */
const PARALLEL_REQUESTS = 64

async function inBatches<T>(items: readonly T[], run: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += PARALLEL_REQUESTS) {
    await Promise.all(items.slice(i, i + PARALLEL_REQUESTS).map(run))
  }
}

/** The KV bucket of group trees (one per KMS deployment). */
export const GROUP_TREE_BUCKET = 'kms-group-keys'

/**
 * A {@link GroupTreeStore} on a JetStream KV bucket. Keys: `<tenant>.<group>.head`,
 * `<tenant>.<group>.j.<id>` (journals), `<tenant>.<group>.c.<id>.<part>` (snapshot chunks).
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
  const journal = (t: string, g: string, id: string) => kvKey(t, g, 'j', id)
  const chunk = (t: string, g: string, id: string, part: number) => kvKey(t, g, 'c', id, String(part))
  const remove = async (key: string) => {
    try {
      await repo.delete(key)
    } catch (err) {
      if (!isM2msecError(err) || err.code !== 'ERR_NOT_FOUND') throw err
    }
  }
  const chunkKeys = (t: string, g: string, ref: SnapshotRef) =>
    Array.from({ length: ref.chunks }, (_, i) => chunk(t, g, ref.id, i))
  const allKeys = async (t: string, g: string) => {
    const out: string[] = []
    let after: string | undefined
    for (;;) {
      const page = await repo.list(kvKey(t, g), after === undefined ? { limit: 1000 } : { limit: 1000, after })
      out.push(...page.items.map((i) => i.key))
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
    async putSnapshot(t, g, id, chunks) {
      await inBatches(
        chunks.map((c, i) => [i, c] as const),
        ([i, c]) => repo.create(chunk(t, g, id, i), c),
      )
    },
    async getSnapshot(t, g, ref) {
      const found = await Promise.all(chunkKeys(t, g, ref).map((k) => repo.get(k)))
      const out: SnapshotChunk[] = []
      for (const f of found) {
        if (f === undefined) return undefined
        out.push(f.value as SnapshotChunk)
      }
      return out
    },
    async deleteRecords(t, g, records) {
      const keys = records.journals.map((id) => journal(t, g, id))
      if (records.snapshot !== undefined) keys.push(...chunkKeys(t, g, records.snapshot))
      await inBatches(keys, remove)
    },
    async deleteTree(t, g) {
      const keys = (await allKeys(t, g)).filter((k) => k !== head(t, g))
      await inBatches(keys, remove)
      await remove(head(t, g))
    },
  }
}
