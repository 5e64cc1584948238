/**
 * Byte helpers shared by the crypto modules: hex, base64/base64url, UTF-8 (NFKC),
 * concatenation, XOR and constant-time comparison.
 *
 * Every function returns a plain `Uint8Array` (never a Node `Buffer`), so results compare
 * equal with `assert.deepStrictEqual` and do not alias Node's shared Buffer pool.
 * Error messages name the argument, never its value (values may be key material).
 */
import { timingSafeEqual } from 'node:crypto'
import { invalidArgument } from '@m2msec/errors'

/** Copies a Buffer (or any byte view) into a fresh, unshared Uint8Array. */
export function toBytes(view: Uint8Array): Uint8Array {
  return new Uint8Array(view)
}

/**
 * Throws ERR_INVALID_ARGUMENT unless `value` is a Uint8Array of exactly `length` octets.
 *
 * @example
 * ```ts
 * assertLength(rand, 16, 'rand') // message: "rand must be 16 bytes"
 * ```
 */
export function assertLength(value: unknown, length: number, field: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw invalidArgument(`${field} must be ${length} bytes`, { field, expectedLength: length })
  }
}

/** Throws ERR_INVALID_ARGUMENT unless `value` is a Uint8Array (any length). */
export function assertBytes(value: unknown, field: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw invalidArgument(`${field} must be a Uint8Array`, { field })
  }
}

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/

/**
 * Decodes a hex string (either case, no separators, even length).
 *
 * @example
 * ```ts
 * hexToBytes('b9b9') // Uint8Array [0xb9, 0xb9]
 * ```
 */
export function hexToBytes(hex: string): Uint8Array {
  if (typeof hex !== 'string' || !HEX_RE.test(hex)) {
    throw invalidArgument('hex string must have an even number of hex digits', { field: 'hex' })
  }
  return toBytes(Buffer.from(hex, 'hex'))
}

/** Encodes bytes as lowercase hex. */
export function bytesToHex(bytes: Uint8Array): string {
  assertBytes(bytes, 'bytes')
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex')
}

/** Encodes bytes as standard base64 with padding (RFC 4648 §4), as used in B-TID and Digest nonces. */
export function bytesToBase64(bytes: Uint8Array): string {
  assertBytes(bytes, 'bytes')
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64')
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** Decodes standard padded base64 (RFC 4648 §4); rejects anything Node would silently skip. */
export function base64ToBytes(text: string): Uint8Array {
  if (typeof text !== 'string' || !BASE64_RE.test(text)) {
    throw invalidArgument('base64 string is malformed', { field: 'base64' })
  }
  return toBytes(Buffer.from(text, 'base64'))
}

/** Encodes bytes as unpadded base64url (RFC 4648 §5), as used by JOSE. */
export function bytesToBase64Url(bytes: Uint8Array): string {
  assertBytes(bytes, 'bytes')
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64url')
}

const BASE64URL_RE = /^[A-Za-z0-9_-]*$/

/** Decodes unpadded base64url (RFC 4648 §5); rejects padding and foreign characters. */
export function base64UrlToBytes(text: string): Uint8Array {
  // A length of 1 mod 4 cannot come from any byte string.
  if (typeof text !== 'string' || !BASE64URL_RE.test(text) || text.length % 4 === 1) {
    throw invalidArgument('base64url string is malformed', { field: 'base64url' })
  }
  return toBytes(Buffer.from(text, 'base64url'))
}

/**
 * UTF-8 of the NFKC normal form of `text`: the string encoding both TS 33.220 B.2.1.2 and
 * oneM2M TS-0003 §10.3 prescribe for identities fed into a KDF.
 *
 * @example
 * ```ts
 * utf8Nfkc('naf.example.com') // 15 bytes
 * ```
 */
export function utf8Nfkc(text: string): Uint8Array {
  if (typeof text !== 'string') {
    throw invalidArgument('text must be a string', { field: 'text' })
  }
  return new TextEncoder().encode(text.normalize('NFKC'))
}

/** Concatenates byte arrays into a new Uint8Array. */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let total = 0
  for (const p of parts) total += p.length
  const out = new Uint8Array(total)
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.length
  }
  return out
}

/**
 * XOR of two equal-length byte arrays.
 *
 * @example
 * ```ts
 * xorBytes(sqn, ak) // SQN ⊕ AK, 6 bytes
 * ```
 */
export function xorBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length !== b.length) {
    throw invalidArgument('xor operands must have the same length', { leftLength: a.length, rightLength: b.length })
  }
  const out = new Uint8Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = (a[i] ?? 0) ^ (b[i] ?? 0)
  return out
}

/**
 * Compares two byte arrays in time independent of their contents (node:crypto
 * timingSafeEqual). Arrays of different length compare unequal (the length itself is not
 * secret for MACs and digests of fixed size).
 *
 * @example
 * ```ts
 * if (!constantTimeEqual(expectedMac, receivedMac)) throw ...
 * ```
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  assertBytes(a, 'a')
  assertBytes(b, 'b')
  if (a.length !== b.length) return false
  return timingSafeEqual(a, b)
}
