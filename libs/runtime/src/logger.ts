/**
 * Structured JSON logging (pino) that cannot print secrets by accident.
 *
 * Two layers: pino `redact` paths for the common top-level and one-level-deep names (cheap,
 * done during serialisation), and a formatter that walks every log object and child binding
 * at any depth, replacing values of secret-looking fields, `Bearer …` strings and raw bytes.
 * What it cannot catch: secrets interpolated into the message string. Never do that.
 */
import { pino, stdSerializers, type DestinationStream, type Logger as PinoLogger } from 'pino'
import { z } from 'zod'

/** The project's logger type (a pino logger). */
export type Logger = PinoLogger

/** Log levels, most to least severe. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** A log level name. */
export type LogLevel = (typeof LOG_LEVELS)[number]

/** Schema of the `log` config section. */
export const logConfigSchema = z.object({
  level: z.enum(LOG_LEVELS).default('info').describe('minimum level written to stdout'),
})

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  readonly level: LogLevel
  /** Service name, written as `service` on every line. */
  readonly service: string
  /** Extra fields on every line. */
  readonly base?: Readonly<Record<string, unknown>>
}

/** Placeholder written instead of a secret value. */
export const LOG_REDACTED = '[REDACTED]'

/**
 * Field names (lower case) whose values are never logged. A field is secret when its name,
 * lower-cased, ends with one of these: `masterKey`, `api_key`, `clientSecret`, `keyMaterial`,
 * `Authorization` are redacted; `keyId`, `tokenId`, `secretRef` are not.
 */
export const SECRET_NAME_SUFFIXES = [
  'key',
  'keys',
  'secret',
  'secrets',
  'token',
  'tokens',
  'pin',
  'password',
  'passwd',
  'passphrase',
  'authorization',
  'material',
  'plaintext',
  'psk',
  'cookie',
  'credential',
  'credentials',
] as const

/** True when a field of this name must not be logged. */
export function isSecretFieldName(name: string): boolean {
  const lower = name.toLowerCase().replace(/[^a-z0-9]+$/, '')
  return SECRET_NAME_SUFFIXES.some((suffix) => lower.endsWith(suffix))
}

const MAX_DEPTH = 10

function isBytes(value: unknown): value is ArrayBufferView | ArrayBuffer {
  return ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof SharedArrayBuffer
}

/**
 * A copy of `value` that is safe to log: secret-named fields become `[REDACTED]`, byte arrays
 * become `<n bytes>`, `Bearer …` strings are redacted, errors are serialised (type, message,
 * stack, code, details, cause) and then cleaned the same way.
 *
 * @example
 * ```ts
 * sanitizeForLog({ keyId: 'k1', key: new Uint8Array(32) }) // { keyId: 'k1', key: '[REDACTED]' }
 * sanitizeForLog({ blob: new Uint8Array(32) })              // { blob: '<32 bytes>' }
 * ```
 */
export function sanitizeForLog(value: unknown): unknown {
  return sanitize(value, 0, new WeakSet())
}

function sanitize(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (typeof value === 'string') return /^bearer\s/i.test(value) ? LOG_REDACTED : value
  if (typeof value !== 'object' || value === null) return value
  if (isBytes(value)) return `<${value.byteLength} bytes>`
  if (value instanceof Date) return value
  if (seen.has(value)) return '[Circular]'
  if (depth >= MAX_DEPTH) return '[Truncated]'
  seen.add(value)
  try {
    if (value instanceof Error) return sanitize(stdSerializers.err(value), depth + 1, seen)
    if (Array.isArray(value)) return value.map((v: unknown) => sanitize(v, depth + 1, seen))
    if (value instanceof Map) {
      const out: Record<string, unknown> = {}
      for (const [k, v] of value)
        out[String(k)] = isSecretFieldName(String(k)) ? LOG_REDACTED : sanitize(v, depth + 1, seen)
      return out
    }
    if (value instanceof Set) return [...value].map((v: unknown) => sanitize(v, depth + 1, seen))
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      out[k] = isSecretFieldName(k) && v !== undefined && v !== null ? LOG_REDACTED : sanitize(v, depth + 1, seen)
    }
    return out
  } finally {
    seen.delete(value)
  }
}

// Belt and braces: pino's own redaction for the usual names, even if a formatter is bypassed.
const REDACT_NAMES = [
  'key',
  'secret',
  'token',
  'pin',
  'password',
  'passphrase',
  'authorization',
  'plaintext',
  'psk',
  'keyMaterial',
  'privateKey',
  'apiKey',
  'accessToken',
  'refreshToken',
  'clientSecret',
]
const REDACT_PATHS = [
  ...REDACT_NAMES,
  ...REDACT_NAMES.map((n) => `*.${n}`),
  'headers.authorization',
  'metadata.authorization',
]

/**
 * Creates the service logger: JSON lines on stdout (or `destination`), ISO timestamps, level
 * names, `service` on every line, secrets redacted at any depth.
 *
 * @example
 * ```ts
 * const log = createLogger({ level: 'info', service: 'kms' })
 * log.info({ keyId, key: rawKey }, 'key created') // key is written as "[REDACTED]"
 * ```
 */
export function createLogger(opts: LoggerOptions, destination?: DestinationStream): Logger {
  const options = {
    level: opts.level,
    base: sanitizeForLog({ service: opts.service, ...opts.base }) as Record<string, unknown>,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: LOG_REDACTED },
    formatters: {
      level: (label: string) => ({ level: label }),
      bindings: (bindings: Record<string, unknown>) => sanitizeForLog(bindings) as Record<string, unknown>,
      log: (object: Record<string, unknown>) => sanitizeForLog(object) as Record<string, unknown>,
    },
  }
  return destination === undefined ? pino(options) : pino(options, destination)
}
