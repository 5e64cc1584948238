/**
 * Sharing of immutable compiled values (crontabs, CIDR blocks, wildcard patterns) between
 * rules. Real policy sets repeat the same windows, networks and patterns thousands of times;
 * sharing them keeps a 100k-policy index small and cache-friendly. The table is bounded, so
 * a stream of distinct values cannot grow it without limit; past the bound values are simply
 * not shared. Results never depend on whether a value was shared.
 */

/** Upper bound on the number of shared values per kind. */
export const INTERN_LIMIT = 20_000

/** A bounded table of shared values keyed by their source text. */
export interface InternTable<T> {
  get(key: string, make: () => T): T
}

/**
 * Creates a bounded intern table.
 *
 * @example
 * ```ts
 * const crontabs = createInternTable<Crontab>()
 * const c = crontabs.get('* * 2 * * * *', () => parseCrontab('* * 2 * * * *'))
 * ```
 */
export function createInternTable<T>(limit = INTERN_LIMIT): InternTable<T> {
  const values = new Map<string, T>()
  return {
    get(key: string, make: () => T): T {
      const hit = values.get(key)
      if (hit !== undefined) return hit
      const value = make()
      if (values.size < limit) values.set(key, value)
      return value
    },
  }
}
