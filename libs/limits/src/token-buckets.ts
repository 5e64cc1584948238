/**
 * Per-replica token buckets keyed by string (a source address, an entity). In memory, so R
 * replicas allow R times the rate; at most `maxKeys` keys are remembered (the least recently
 * granted are dropped, which only ever gives a forgotten key a full bucket again).
 */

/** Buckets of one rate. */
export interface TokenBuckets {
  /** Takes one token; returns 0 when taken, else the ms until one is available. */
  take(key: string, now: number): number
}

/**
 * @example
 * ```ts
 * const buckets = createTokenBuckets({ perSec: 5, burst: 10 })
 * if (buckets.take('s:10.0.0.7', Date.now()) > 0) refuse()
 * ```
 */
export function createTokenBuckets(rate: { perSec: number; burst: number }, maxKeys = 100_000): TokenBuckets {
  const buckets = new Map<string, { tokens: number; at: number }>()
  return {
    take(key, now) {
      if (rate.perSec <= 0) return 0
      const b = buckets.get(key)
      const tokens = b === undefined ? rate.burst : Math.min(rate.burst, b.tokens + ((now - b.at) / 1000) * rate.perSec)
      if (tokens < 1) {
        buckets.set(key, { tokens, at: now })
        return Math.ceil(((1 - tokens) / rate.perSec) * 1000)
      }
      // Re-inserting keeps the Map in least-recently-used order for the eviction below.
      buckets.delete(key)
      buckets.set(key, { tokens: tokens - 1, at: now })
      if (buckets.size > maxKeys) {
        const oldest = buckets.keys().next().value
        if (oldest !== undefined) buckets.delete(oldest)
      }
      return 0
    },
  }
}
