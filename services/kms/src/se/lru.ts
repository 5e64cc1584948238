/**
 * A small bounded least-recently-used map (Map insertion order = recency). Used by the SE
 * backends to cache unsealed keys (software) and object handles (pkcs11) without growing
 * without bound when millions of keys exist.
 *
 * @example
 * ```ts
 * const cache = new Lru<string, KeyObject>(10_000)
 * cache.set(ref, key)
 * cache.get(ref) // marks ref as most recently used
 * ```
 */
export class Lru<K, V> {
  readonly #max: number
  readonly #map = new Map<K, V>()

  /** `max` 0 disables caching (every `set` is dropped). */
  constructor(max: number) {
    if (!Number.isInteger(max) || max < 0) throw new RangeError('max must be a non-negative integer')
    this.#max = max
  }

  /** The value, moved to the most-recently-used position, or undefined. */
  get(key: K): V | undefined {
    const value = this.#map.get(key)
    if (value === undefined) return undefined
    this.#map.delete(key)
    this.#map.set(key, value)
    return value
  }

  /** Inserts or replaces; evicts the least recently used entry when full. */
  set(key: K, value: V): void {
    if (this.#max === 0) return
    this.#map.delete(key)
    this.#map.set(key, value)
    if (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next()
      if (oldest.done !== true) this.#map.delete(oldest.value)
    }
  }

  /** Removes one entry; true when it was present. */
  delete(key: K): boolean {
    return this.#map.delete(key)
  }

  /** Removes every entry. */
  clear(): void {
    this.#map.clear()
  }

  /** Number of cached entries. */
  get size(): number {
    return this.#map.size
  }
}
