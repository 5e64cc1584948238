import { M2msecError } from '@m2msec/errors'
import type { Clock } from './ports.ts'

/** A clock that only moves when told to. */
export type FixedClock = Clock & {
  /** Moves the clock forward (or back, with a negative value) by `ms` milliseconds. */
  advance(ms: number): void
}

/**
 * A clock frozen at `iso` (any string `Date.parse` accepts; use a full ISO 8601 timestamp with a
 * zone). Every `now()` returns a new `Date`, so callers cannot move the clock by mutating it.
 *
 * @example
 * ```ts
 * const clock = fixedClock('2026-01-01T00:00:00Z')
 * clock.advance(60_000)
 * clock.now().toISOString() // '2026-01-01T00:01:00.000Z'
 * ```
 */
export function fixedClock(iso: string): FixedClock {
  let ms = Date.parse(iso)
  if (Number.isNaN(ms)) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'fixedClock needs an ISO 8601 timestamp', { iso })
  }
  return {
    now: () => new Date(ms),
    advance(delta: number) {
      if (!Number.isFinite(delta)) {
        throw new M2msecError('ERR_INVALID_ARGUMENT', 'advance() needs a finite number of ms')
      }
      ms += delta
    },
  }
}
