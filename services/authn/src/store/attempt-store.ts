/**
 * AttemptStore on JetStream KV (bucket `authn-attempts`, key = the escaped flood key, bucket
 * TTL = failure window + longest back-off). Every replica keeps the bucket in memory from a
 * KV watch, so checking an attempt costs no round trip; failures are written with a
 * revision-checked read-modify-write, so concurrent replicas never lose a count. Entries the
 * server expired (no delete marker in nats-server 2.9) are dropped from memory by their age.
 */
import { createHash } from 'node:crypto'
import { kvKey, type KvRepository, type KvWatch } from '@m2msec/bus'
import type { AttemptStore, FailureState } from '../domain/ports.ts'

/** An AttemptStore whose KV watch must be stopped. */
export interface WatchedAttemptStore extends AttemptStore {
  close(): Promise<void>
}

/**
 * KV keys have a bounded alphabet and length; flood keys hold entity ids of up to 256
 * characters, so the key is a hash of the flood key.
 */
function storeKey(key: string): string {
  return kvKey(createHash('sha256').update(key).digest('base64url'))
}

/**
 * @example
 * ```ts
 * const attempts = await createAttemptStore(await KvRepository.open(nc, 'authn-attempts', { ttlMs }), ttlMs)
 * ```
 */
export async function createAttemptStore(
  repo: KvRepository<FailureState>,
  ttlMs: number,
  now: () => number = Date.now,
): Promise<WatchedAttemptStore> {
  const view = new Map<string, FailureState>()
  const watcher: KvWatch = await repo.watch('', (change) => {
    if (change.op === 'delete' || change.value === undefined) view.delete(change.key)
    else view.set(change.key, change.value)
  })
  const fresh = (s: FailureState | undefined, k: string): FailureState | undefined => {
    if (s === undefined) return undefined
    if (now() - s.lastFailureAt > ttlMs && s.blockedUntil < now()) {
      view.delete(k)
      return undefined
    }
    return s
  }
  return {
    get(key) {
      const k = storeKey(key)
      return fresh(view.get(k), k)
    },
    async record(key, next) {
      const k = storeKey(key)
      const written = await repo.modify(k, (cur) => next(fresh(cur, k)))
      view.set(k, written.value)
      return written.value
    },
    async clear(key) {
      const k = storeKey(key)
      view.delete(k)
      await repo.delete(k)
    },
    async close() {
      await watcher.stop()
    },
  }
}
