/**
 * Records this replica wrote or read moments ago, with their KV revision, so the next step of
 * the same exchange can write with a revision check without reading the record again (the
 * Ub answer after its challenge, the next SQN of a subscriber). Only for records whose next
 * write is revision-checked BEFORE anything is acted on: a record another replica changed (or
 * deleted) since makes that write fail with ERR_REVISION_CONFLICT, and the caller re-reads or
 * refuses. Never for decisions taken without such a write (e.g. Zn's session lookup, where a
 * revoked or expired session must be seen at once). Bounded: the oldest entries go first.
 */
import type { Versioned } from '@m2msec/bus'

/** A bounded map of KV key to the last known value and revision. */
export interface RecentRecords<T> {
  get(key: string): Versioned<T> | undefined
  set(key: string, record: Versioned<T>): void
  delete(key: string): void
}

/**
 * @example
 * ```ts
 * const recent = createRecentRecords<ChallengeRecord>(RECENT_RECORDS_MAX)
 * recent.set(key, { value: challenge, revision })
 * ```
 */
export function createRecentRecords<T>(maxEntries: number): RecentRecords<T> {
  const map = new Map<string, Versioned<T>>()
  return {
    get: (key) => map.get(key),
    set(key, record) {
      map.delete(key)
      if (map.size >= maxEntries) map.delete(map.keys().next().value ?? '')
      map.set(key, record)
    },
    delete: (key) => void map.delete(key),
  }
}

/** Entries per bucket: a few seconds of Ub traffic at thousands of bootstraps per second. */
export const RECENT_RECORDS_MAX = 20_000
