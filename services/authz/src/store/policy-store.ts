/**
 * PolicyStore and DecisionIndex on JetStream KV (bucket `authz-policies`, one entry per policy:
 * `kvKey(tenant, policyId)`).
 *
 * Every replica keeps one compiled `@m2msec/acp` PolicyIndex per tenant, fed only by a KV watch
 * of the whole bucket: a write on any replica reaches every replica's index in milliseconds,
 * and decisions cost no NATS round trip. Writes go to KV with a revision check and then wait
 * until this replica's watch has applied them, so a caller that changed a policy sees the
 * change in its next decision (read-your-writes) without a second code path that could
 * reorder updates.
 *
 * Start-up: `createPolicyStore` resolves only after the watch has delivered every policy that
 * existed when it started, so a new replica never answers from a partial index. It knows that
 * point by writing a marker (`_sync`, a one-token key no policy can have) after the watch
 * started and waiting for it: the watch delivers in stream order.
 */
import { compilePolicies, type PolicyIndex } from '@m2msec/acp'
import { M2msecError } from '@m2msec/errors'
import { kvKey, parseKvKey, type KvChange, type KvRepository } from '@m2msec/bus'
import type { PolicyRecord } from '../domain/model.ts'
import type { DecisionIndex, PolicyStore } from '../domain/ports.ts'

/** The JetStream KV bucket of policies. */
export const POLICY_BUCKET = 'authz-policies'

/** What the start-up marker holds. */
export interface SyncMarker {
  readonly replica: string
  readonly at: string
}

/** Options of {@link createPolicyStore}. */
export interface PolicyStoreOptions {
  /** The same bucket, typed for the start-up marker. */
  readonly markers: KvRepository<SyncMarker>
  /** Names this replica in the marker. */
  readonly replica: string
  /** How long start-up may wait for the initial policies. Default 30 s. */
  readonly syncTimeoutMs?: number
  /** How long a write waits for this replica's watch before returning anyway. Default 5 s. */
  readonly applyTimeoutMs?: number
  /** Watch problems: a stored policy that does not compile (it is dropped: fail closed), a slow watch. */
  readonly onError: (err: unknown) => void
}

/** The JetStream adapter: both ports, plus shutdown. */
export interface JetStreamPolicyStore extends PolicyStore, DecisionIndex {
  /** Number of policies in the index, over all tenants. */
  readonly size: number
  close(): Promise<void>
}

const SYNC_KEY = '_sync'
const TOMBSTONE_MS = 60_000
/** Shared by tenants without policies; never written to. */
const EMPTY_INDEX: PolicyIndex = compilePolicies([])

interface Waiter {
  readonly minRevision: number
  readonly done: () => void
}

export async function createPolicyStore(
  repo: KvRepository<PolicyRecord>,
  opts: PolicyStoreOptions,
): Promise<JetStreamPolicyStore> {
  const indexes = new Map<string, PolicyIndex>()
  /** Revision of the last change applied per key (for waiters; the watch itself is ordered). */
  const applied = new Map<string, number>()
  const tombstoneTimers = new Set<NodeJS.Timeout>()

  /**
   * A deleted key stays in `applied` only as long as a writer may still wait for its delete
   * (it registers right after its compare-and-set delete returns); then it is forgotten so
   * deleted policies cost no memory. No older change of the key can arrive later: the watch
   * delivers in stream order.
   */
  function forgetLater(key: string, revision: number): void {
    const timer = setTimeout(() => {
      tombstoneTimers.delete(timer)
      if (applied.get(key) === revision) applied.delete(key)
    }, TOMBSTONE_MS)
    timer.unref()
    tombstoneTimers.add(timer)
  }
  const waiters = new Map<string, Waiter[]>()
  let size = 0

  function release(key: string, revision: number): void {
    const list = waiters.get(key)
    if (list === undefined) return
    const rest = list.filter((w) => {
      if (w.minRevision > revision) return true
      w.done()
      return false
    })
    if (rest.length === 0) waiters.delete(key)
    else waiters.set(key, rest)
  }

  function removePolicy(tenant: string, id: string): void {
    const index = indexes.get(tenant)
    if (index === undefined || !index.remove(id)) return
    size--
    if (index.size === 0) indexes.delete(tenant)
  }

  function apply(change: KvChange<PolicyRecord>): void {
    const known = applied.get(change.key)
    if (known !== undefined && change.revision <= known) return
    const parts = parseKvKey(change.key)
    if (parts.length === 2) {
      const [tenant, id] = parts as [string, string]
      if (change.op === 'delete' || change.value === undefined) {
        removePolicy(tenant, id)
      } else {
        const v = change.value
        try {
          if (v.tenant !== tenant || v.policy?.id !== id) {
            throw new M2msecError('ERR_INTERNAL', 'stored policy does not match its key', { key: change.key })
          }
          let index = indexes.get(tenant)
          if (index === undefined) {
            index = compilePolicies([])
            indexes.set(tenant, index)
          }
          const existed = index.get(id) !== undefined
          index.upsert(v.policy)
          if (!existed) size++
        } catch (err) {
          // Fail closed: a policy this replica cannot compile grants nothing here.
          removePolicy(tenant, id)
          opts.onError(err)
        }
      }
    }
    applied.set(change.key, change.revision)
    if (change.op === 'delete') forgetLater(change.key, change.revision)
    release(change.key, change.revision)
  }

  /** Resolves once the watch applied a change of `key` at `minRevision` or later (or after the timeout). */
  function appliedAt(key: string, minRevision: number, timeoutMs: number): Promise<boolean> {
    const known = applied.get(key)
    if (known !== undefined && known >= minRevision) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const list = waiters.get(key)?.filter((w) => w !== waiter)
        if (list === undefined || list.length === 0) waiters.delete(key)
        else waiters.set(key, list)
        resolve(false)
      }, timeoutMs)
      const waiter: Waiter = {
        minRevision,
        done: () => {
          clearTimeout(timer)
          resolve(true)
        },
      }
      waiters.set(key, [...(waiters.get(key) ?? []), waiter])
    })
  }

  const applyTimeoutMs = opts.applyTimeoutMs ?? 5_000
  async function afterWrite(key: string, minRevision: number): Promise<void> {
    if (!(await appliedAt(key, minRevision, applyTimeoutMs))) {
      // The write is durable and other replicas will apply it; only this replica's index lags.
      opts.onError(new M2msecError('ERR_UNAVAILABLE', `policy watch did not apply ${key} within ${applyTimeoutMs} ms`))
    }
  }

  const watcher = await repo.watch('', apply, { onError: opts.onError })
  try {
    const marker = await opts.markers.modify(SYNC_KEY, () => ({
      replica: opts.replica,
      at: new Date().toISOString(),
    }))
    const syncTimeoutMs = opts.syncTimeoutMs ?? 30_000
    if (!(await appliedAt(SYNC_KEY, marker.revision, syncTimeoutMs))) {
      throw new M2msecError('ERR_UNAVAILABLE', `policies not loaded within ${syncTimeoutMs} ms`)
    }
  } catch (err) {
    await watcher.stop()
    throw err
  }

  return {
    get size() {
      return size
    },
    forTenant(tenant) {
      return indexes.get(tenant) ?? EMPTY_INDEX
    },
    async get(tenant, id) {
      const found = await repo.get(kvKey(tenant, id))
      return found !== undefined && found.value.tenant === tenant && found.value.policy.id === id ? found : undefined
    },
    async create(record) {
      const key = kvKey(record.tenant, record.policy.id)
      const revision = await repo.create(key, record)
      await afterWrite(key, revision)
      return revision
    },
    async update(record, revision) {
      const key = kvKey(record.tenant, record.policy.id)
      const next = await repo.update(key, record, revision)
      await afterWrite(key, next)
      return next
    },
    async delete(tenant, id, revision) {
      const key = kvKey(tenant, id)
      await repo.delete(key, revision)
      // The delete marker's revision is unknown here but later than `revision`, and the
      // compare-and-set guarantees nothing else was written in between.
      await afterWrite(key, revision + 1)
    },
    async list(tenant, page) {
      const res = await repo.list(`${kvKey(tenant)}.`, {
        limit: page.limit,
        ...(page.after === undefined ? {} : { after: kvKey(tenant, page.after) }),
      })
      const items = res.items
        .filter((i) => i.value.tenant === tenant)
        .map((i) => ({ value: i.value, revision: i.revision }))
      const last = res.items.at(-1)
      return res.next === undefined || last === undefined
        ? { items }
        : { items, next: parseKvKey(last.key).at(-1) ?? '' }
    },
    async close() {
      await watcher.stop()
      for (const list of waiters.values()) for (const w of list) w.done()
      waiters.clear()
      for (const t of tombstoneTimers) clearTimeout(t)
      tombstoneTimers.clear()
    },
  }
}
