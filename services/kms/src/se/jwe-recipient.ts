/**
 * JWE pieces shared by the SE backends: the external recipient of a wrapped key (a P-256
 * public JWK, ECDH-ES+A256KW) and the header profile every wrapped key uses.
 */
import { CompactEncrypt, importJWK } from 'jose'
import { invalidArgument } from '@m2msec/errors'

/** `enc` of every JWE an SE produces or accepts. */
export const WRAP_ENC = 'A256GCM'
/** Longest compact JWE accepted by `unwrapKey` (a wrapped PKCS#8 key is well under 1 KiB). */
export const MAX_JWE_LENGTH = 64 * 1024

/**
 * Encrypts `plaintext` for an external P-256 public JWK with ECDH-ES+A256KW / A256GCM.
 * Throws ERR_INVALID_ARGUMENT for a JWK that is not a P-256 public key.
 *
 * @example
 * ```ts
 * const jwe = await encryptForPublicJwk(pkcs8, { kty: 'EC', crv: 'P-256', x, y }, 'device-7')
 * ```
 */
export async function encryptForPublicJwk(
  plaintext: Uint8Array,
  jwk: Readonly<Record<string, string>>,
  kid: string,
): Promise<string> {
  const { x, y } = requireP256PublicJwk(jwk)
  let key: Awaited<ReturnType<typeof importJWK>>
  try {
    key = await importJWK({ kty: 'EC', crv: 'P-256', x, y }, 'ECDH-ES+A256KW')
  } catch {
    throw invalidArgument('recipient must be an EC P-256 public JWK', { field: 'recipient.jwk' })
  }
  return new CompactEncrypt(plaintext).setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: WRAP_ENC, kid }).encrypt(key)
}

/**
 * Checks the shape of a P-256 public JWK (kty EC, crv P-256, x, y; no private `d`) and
 * returns a clean copy. Whether the point is on the curve is checked when it is imported.
 */
export function requireP256PublicJwk(jwk: unknown): { kty: 'EC'; crv: 'P-256'; x: string; y: string } {
  const j = (typeof jwk === 'object' && jwk !== null ? jwk : {}) as Record<string, unknown>
  const { x, y } = j
  if (j['kty'] !== 'EC' || j['crv'] !== 'P-256' || 'd' in j || typeof x !== 'string' || typeof y !== 'string') {
    throw invalidArgument('recipient must be an EC P-256 public JWK', { field: 'recipient.jwk' })
  }
  return { kty: 'EC', crv: 'P-256', x, y }
}

/** Validates the `kid` of a wrap recipient (printable, bounded). */
export function requireKid(kid: unknown): asserts kid is string {
  if (typeof kid !== 'string' || kid.length > 256)
    throw invalidArgument('recipient kid must be a string of at most 256 characters', { field: 'recipient.kid' })
}
