/**
 * The JOSE algorithm profile of oneM2M end-to-end security (TS-0003 V3.18.0 tables
 * 8.5.3.2-3/-4 and 8.5.3.3-2 for ESData, §10.3.8 for ESPrim), and the small helpers every
 * e2e module shares: key types, algorithm checks and the mapping of jose failures to
 * M2msecError codes.
 */
import type { KeyObject, webcrypto } from 'node:crypto'
import { M2msecError, type ErrorDetails } from '@m2msec/errors'

/** JWE `alg` values ESData allows (key management). */
export const ESDATA_KEY_ALGORITHMS = [
  'dir',
  'A128KW',
  'A192KW',
  'A256KW',
  'RSA-OAEP-256',
  'ECDH-ES+A128KW',
  'ECDH-ES+A192KW',
  'ECDH-ES+A256KW',
] as const

/** JWE `enc` values ESData and ESPrim allow (AES-GCM only). */
export const CONTENT_ENCRYPTION_ALGORITHMS = ['A128GCM', 'A192GCM', 'A256GCM'] as const

/** JWS `alg` values ESData allows (`none` is never accepted). */
export const ESDATA_SIGNATURE_ALGORITHMS = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'ES256',
  'ES384',
  'ES512',
] as const

/** An ESData JWE key management algorithm. */
export type EsDataKeyAlgorithm = (typeof ESDATA_KEY_ALGORITHMS)[number]
/** An AES-GCM content encryption algorithm. */
export type ContentEncryption = (typeof CONTENT_ENCRYPTION_ALGORITHMS)[number]
/** An ESData JWS algorithm. */
export type EsDataSignatureAlgorithm = (typeof ESDATA_SIGNATURE_ALGORITHMS)[number]

/**
 * Key material jose accepts: raw bytes for symmetric algorithms (`dir`, `A*KW`, `HS*`),
 * a node:crypto KeyObject or a WebCrypto CryptoKey for RSA and EC.
 */
export type JoseKey = Uint8Array | KeyObject | webcrypto.CryptoKey

/** `m2m:contentSecurity` (TS-0004 §6.3.4.2.38): how protected content is serialised. */
export const CONTENT_SECURITY = Object.freeze({
  none: 0,
  /** JWE/JWS compact, media type `application/jose`. */
  compact: 1,
  /** JWE/JWS JSON serialisation, media type `application/jose+json`. */
  json: 2,
})

/** Media types of the two JOSE serialisations (RFC 7515 §9.2.1, RFC 7516 §9.2.1). */
export const JOSE_MEDIA_TYPE = Object.freeze({ compact: 'application/jose', json: 'application/jose+json' })

/** The two JOSE serialisations. */
export type Serialization = 'compact' | 'json'

/**
 * Throws unless `alg` is in `allowed`. `none` gets its own reason so callers and logs can
 * tell an unsecured token from a merely unsupported algorithm.
 *
 * @example
 * ```ts
 * assertAlgorithm(header.alg, ESDATA_SIGNATURE_ALGORITHMS, 'alg') // throws for 'none'
 * ```
 */
export function assertAlgorithm<T extends string>(
  alg: unknown,
  allowed: readonly T[],
  field: string,
  details: ErrorDetails = {},
): asserts alg is T {
  if (typeof alg === 'string' && alg.toLowerCase() === 'none') {
    throw new M2msecError('ERR_INVALID_ARGUMENT', `${field} "none" is never accepted`, {
      ...details,
      field,
      reason: 'alg-none',
    })
  }
  if (typeof alg !== 'string' || !(allowed as readonly string[]).includes(alg)) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', `${field} is not an allowed algorithm`, {
      ...details,
      field,
      reason: 'unsupported-alg',
      ...(typeof alg === 'string' && alg.length <= 32 ? { alg } : {}),
    })
  }
}

/** Key length in bytes of an AES-GCM `enc`. */
export function contentKeyLength(enc: ContentEncryption): 16 | 24 | 32 {
  return enc === 'A128GCM' ? 16 : enc === 'A192GCM' ? 24 : 32
}

/**
 * Turns a jose failure while protecting into an M2msecError. The inputs were checked
 * before, so what jose still refuses is a key that does not fit the algorithm (wrong type,
 * curve or length): ERR_KEY_TYPE_MISMATCH. Other errors pass through unchanged.
 */
export function protectFailure(cause: unknown, what: string): unknown {
  const joseCode = (cause as { code?: unknown } | null)?.code
  const fromJose = typeof joseCode === 'string' && /^ERR_(JOSE|JWE|JWS|JWK)_/.test(joseCode)
  if (!(cause instanceof TypeError) && !fromJose) return cause
  return new M2msecError('ERR_KEY_TYPE_MISMATCH', `${what}: the key does not fit the algorithm`, {}, { cause })
}
