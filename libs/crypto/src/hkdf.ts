/**
 * HKDF with SHA-256 (RFC 5869). {@link hkdfSha256} is node:crypto's hkdfSync; the separate
 * {@link hkdfExtract} and {@link hkdfExpand} expose the PRK so it can be checked against the
 * RFC 5869 Appendix A values and reused for several expansions.
 */
import { createHmac, hkdfSync } from 'node:crypto'
import { invalidArgument } from '@m2msec/errors'
import { assertBytes, assertLength, concatBytes, toBytes } from './bytes.ts'

/** SHA-256 output length, HashLen in RFC 5869. */
export const SHA256_LENGTH = 32

/** Largest HKDF-SHA-256 output: 255 * HashLen (RFC 5869 §2.3). */
export const HKDF_SHA256_MAX_LENGTH = 255 * SHA256_LENGTH

function assertOutputLength(length: number): void {
  if (!Number.isInteger(length) || length < 1 || length > HKDF_SHA256_MAX_LENGTH) {
    throw invalidArgument(`length must be an integer in 1..${HKDF_SHA256_MAX_LENGTH}`, { field: 'length' })
  }
}

/**
 * HKDF-Extract: PRK = HMAC-SHA-256(salt, IKM). An empty salt means HashLen zero octets
 * (RFC 5869 §2.2), which HMAC's key padding makes identical to an empty key.
 *
 * @example
 * ```ts
 * const prk = hkdfExtract(salt, ikm) // 32 bytes
 * ```
 */
export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  assertBytes(salt, 'salt')
  assertBytes(ikm, 'ikm')
  const key = salt.length === 0 ? new Uint8Array(SHA256_LENGTH) : salt
  return toBytes(createHmac('sha256', key).update(ikm).digest())
}

/**
 * HKDF-Expand: T(i) = HMAC-SHA-256(PRK, T(i-1) || info || i), output the first `length`
 * octets of T(1) || T(2) || … (RFC 5869 §2.3).
 *
 * @example
 * ```ts
 * const okm = hkdfExpand(prk, info, 42)
 * ```
 */
export function hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  assertLength(prk, SHA256_LENGTH, 'prk')
  assertBytes(info, 'info')
  assertOutputLength(length)
  const blocks: Uint8Array[] = []
  let previous: Uint8Array = new Uint8Array(0)
  for (let i = 1, produced = 0; produced < length; i++) {
    previous = toBytes(
      createHmac('sha256', prk)
        .update(concatBytes(previous, info, Uint8Array.of(i)))
        .digest(),
    )
    blocks.push(previous)
    produced += previous.length
  }
  return concatBytes(...blocks).slice(0, length)
}

/**
 * HKDF-SHA-256 in one call (extract then expand), via node:crypto hkdfSync.
 *
 * @example
 * ```ts
 * const key = hkdfSha256(ikm, salt, new TextEncoder().encode('context'), 32)
 * ```
 */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  assertBytes(ikm, 'ikm')
  assertBytes(salt, 'salt')
  assertBytes(info, 'info')
  assertOutputLength(length)
  // hkdfSync rejects info longer than 1024 bytes; hkdfExpand has no such limit.
  if (info.length > 1024) {
    return hkdfExpand(hkdfExtract(salt, ikm), info, length)
  }
  return new Uint8Array(hkdfSync('sha256', ikm, salt, info, length))
}
