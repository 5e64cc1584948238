import { M2msecError } from '@m2msec/errors'

/** Characters that stay as they are inside one token (a KV key part or a subject token). */
const SAFE = /^[A-Za-z0-9_\-/]$/
const VALID_TOKEN = /^(?:=|(?:[A-Za-z0-9_\-/]|=[0-9A-F]{2})+)$/
/**
 * Longest KV key accepted. The key becomes part of a NATS subject, and nats-server drops the
 * whole connection when a protocol line passes 4096 bytes (max_control_line): a longer key
 * from untrusted input would cut every user of that connection off.
 */
export const MAX_KV_KEY_LENGTH = 2048

const VALID_KEY = /^[-/=_A-Za-z0-9]+(?:\.[-/=_A-Za-z0-9]+)*$/

/**
 * Encodes any string as one token that is valid both in a JetStream KV key and in a NATS
 * subject: `[A-Za-z0-9_-/]` stay, every other character becomes `=HH` per UTF-8 byte
 * (uppercase hex), and the empty string becomes a lone `=`. The encoding is injective, and it
 * keeps `.`, `*`, `>` and whitespace out of the token, so user input can never add a level
 * or a wildcard.
 *
 * @example
 * ```ts
 * encodeToken('acme.corp') // 'acme=2Ecorp'
 * encodeToken('a=b')       // 'a=3Db'
 * ```
 */
export function encodeToken(value: string): string {
  if (value === '') return '='
  let out = ''
  for (const ch of value) {
    if (SAFE.test(ch)) {
      out += ch
    } else {
      for (const byte of Buffer.from(ch, 'utf8')) out += `=${byte.toString(16).toUpperCase().padStart(2, '0')}`
    }
  }
  return out
}

/**
 * Reverses {@link encodeToken}. Throws `ERR_INVALID_ARGUMENT` for a token that
 * `encodeToken` cannot have produced.
 */
export function decodeToken(token: string): string {
  if (!VALID_TOKEN.test(token)) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'not an encoded token', { token: token.slice(0, 100) })
  }
  if (token === '=') return ''
  const bytes: number[] = []
  for (let i = 0; i < token.length; i++) {
    const ch = token[i] as string
    if (ch === '=') {
      bytes.push(Number.parseInt(token.slice(i + 1, i + 3), 16))
      i += 2
    } else {
      bytes.push(ch.charCodeAt(0))
    }
  }
  const decoded = Buffer.from(bytes)
  const text = decoded.toString('utf8')
  // Reject byte sequences that are not UTF-8: they would not round-trip.
  if (!Buffer.from(text, 'utf8').equals(decoded) || encodeToken(text) !== token) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'not an encoded token', { token: token.slice(0, 100) })
  }
  return text
}

/**
 * Builds a JetStream KV key from parts: each part is encoded with {@link encodeToken} and the
 * parts are joined by `.`, so the key hierarchy follows the parts and prefix watches/listings
 * (`tenant.>`) work on part boundaries. Reverse it with {@link parseKvKey}.
 *
 * @example
 * ```ts
 * kvKey('acme', 'device:42') // 'acme.device=3A42'
 * parseKvKey('acme.device=3A42') // ['acme', 'device:42']
 * ```
 */
export function kvKey(...parts: string[]): string {
  if (parts.length === 0) throw new M2msecError('ERR_INVALID_ARGUMENT', 'kvKey needs at least one part')
  return parts.map(encodeToken).join('.')
}

/** Splits and decodes a key built by {@link kvKey}. */
export function parseKvKey(key: string): string[] {
  return key.split('.').map(decodeToken)
}

/**
 * True for a key that JetStream KV accepts: dot-separated, non-empty tokens of
 * `[-/=_A-Za-z0-9]`.
 */
export function isValidKvKey(key: string): boolean {
  return key.length <= MAX_KV_KEY_LENGTH && VALID_KEY.test(key)
}

/** Throws `ERR_INVALID_ARGUMENT` unless {@link isValidKvKey}. */
export function assertValidKvKey(key: string, what = 'key'): void {
  if (typeof key !== 'string' || !isValidKvKey(key)) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', `invalid ${what}: build it with kvKey()`, {
      [what]: String(key).slice(0, 100),
    })
  }
}
