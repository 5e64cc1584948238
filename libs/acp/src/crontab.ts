/**
 * The oneM2M extended crontab (`m2m:scheduleEntry`, TS-0004 table 7.4.9.1-4): seven
 * whitespace-separated fields `second minute hour dayOfMonth month dayOfWeek year`, matched
 * against a time in UTC. Each field is `*` or a comma list of elements; an element is a number,
 * a range `a-b`, a range with a step `a-b/n`, or `*\/n`.
 *
 * All seven fields must match (logical AND). TS-0004 says nothing of the Vixie-cron rule that
 * ORs day-of-month and day-of-week when both are restricted, so it is not applied.
 */
import { invalidArgument } from '@m2msec/errors'

interface FieldSpec {
  readonly name: string
  readonly min: number
  readonly max: number
}

const FIELDS: readonly FieldSpec[] = [
  { name: 'second', min: 0, max: 59 },
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'dayOfMonth', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  { name: 'dayOfWeek', min: 0, max: 6 },
  { name: 'year', min: 2000, max: 9999 },
]

interface Element {
  readonly lo: number
  readonly hi: number
  readonly step: number
}

/** A compiled field: `null` matches every value; otherwise any element must match. */
type CompiledField = readonly Element[] | null

/** A parsed schedule entry, ready for `crontabMatches`. */
export interface Crontab {
  /** The source text, kept for Explain output. */
  readonly source: string
  readonly fields: readonly CompiledField[]
}

const NUMBER = /^\d{1,4}$/

function parseNumber(text: string, spec: FieldSpec, path: string): number {
  if (!NUMBER.test(text)) {
    throw invalidArgument(`${path}: ${spec.name} value "${text}" is not a number`, { path })
  }
  const n = Number(text)
  if (n < spec.min || n > spec.max) {
    throw invalidArgument(`${path}: ${spec.name} value ${n} is outside ${spec.min}-${spec.max}`, {
      path,
    })
  }
  return n
}

function parseElement(text: string, spec: FieldSpec, path: string): Element {
  const slash = text.split('/')
  if (slash.length > 2) throw invalidArgument(`${path}: malformed ${spec.name} "${text}"`, { path })
  const [rangeText = '', stepText] = slash
  let lo: number
  let hi: number
  if (rangeText === '*') {
    // A bare `*` is handled by the caller; here it only appears as `*/n`.
    if (stepText === undefined) {
      throw invalidArgument(`${path}: "*" must stand alone in the ${spec.name} field`, { path })
    }
    lo = spec.min
    hi = spec.max
  } else {
    const dash = rangeText.split('-')
    if (dash.length === 1) {
      lo = parseNumber(rangeText, spec, path)
      hi = lo
      // TS-0004: "a range followed by a step value"; a step after a single number is not defined.
      if (stepText !== undefined) {
        throw invalidArgument(`${path}: a step needs a range or "*" in ${spec.name} "${text}"`, {
          path,
        })
      }
    } else if (dash.length === 2) {
      lo = parseNumber(dash[0] ?? '', spec, path)
      hi = parseNumber(dash[1] ?? '', spec, path)
      if (lo > hi) {
        throw invalidArgument(`${path}: ${spec.name} range "${rangeText}" is reversed`, { path })
      }
    } else {
      throw invalidArgument(`${path}: malformed ${spec.name} range "${rangeText}"`, { path })
    }
  }
  let step = 1
  if (stepText !== undefined) {
    if (!NUMBER.test(stepText) || Number(stepText) < 1) {
      throw invalidArgument(`${path}: ${spec.name} step "${stepText}" must be a positive number`, {
        path,
      })
    }
    step = Number(stepText)
  }
  return { lo, hi, step }
}

/**
 * Parses one schedule entry. Throws `ERR_INVALID_ARGUMENT` naming `path` when malformed.
 *
 * @example
 * ```ts
 * const c = parseCrontab('* 0-5 2,6,10 * * * *') // 02:00:00–02:05:59, 06:00–06:05:59, 10:00–10:05:59 UTC
 * crontabMatches(c, new Date('2025-01-01T02:05:59Z')) // true
 * ```
 */
export function parseCrontab(text: string, path = 'crontab'): Crontab {
  if (typeof text !== 'string') throw invalidArgument(`${path}: must be a string`, { path })
  const parts = text.trim().split(/\s+/)
  if (parts.length !== FIELDS.length || parts[0] === '') {
    throw invalidArgument(`${path}: a schedule entry has exactly 7 fields, got "${text}"`, { path })
  }
  const fields = FIELDS.map((spec, i): CompiledField => {
    const part = parts[i] ?? ''
    if (part === '*') return null
    return part.split(',').map((el) => parseElement(el, spec, path))
  })
  return { source: text, fields }
}

function fieldMatches(field: CompiledField | undefined, value: number): boolean {
  if (field === null || field === undefined) return true
  for (const el of field) {
    if (value >= el.lo && value <= el.hi && (value - el.lo) % el.step === 0) return true
  }
  return false
}

/**
 * True when `time` (interpreted in UTC, to the second) falls in the schedule. Returns false for
 * an invalid Date; the engine checks validity first so it can report "indeterminate".
 */
export function crontabMatches(crontab: Crontab, time: Date): boolean {
  const t = time.getTime()
  if (!Number.isFinite(t)) return false
  const f = crontab.fields
  return (
    fieldMatches(f[0], time.getUTCSeconds()) &&
    fieldMatches(f[1], time.getUTCMinutes()) &&
    fieldMatches(f[2], time.getUTCHours()) &&
    fieldMatches(f[3], time.getUTCDate()) &&
    fieldMatches(f[4], time.getUTCMonth() + 1) &&
    fieldMatches(f[5], time.getUTCDay()) &&
    fieldMatches(f[6], time.getUTCFullYear())
  )
}
