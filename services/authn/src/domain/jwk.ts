/** Client-supplied public JWKs (PoP keys, key delivery): parsing and the RFC 7638 thumbprint. */
import { calculateJwkThumbprint, type JWK } from 'jose'
import { M2msecError } from '@m2msec/errors'
import { LIMITS } from './model.ts'

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']

/**
 * Parses a public JWK (JSON text, at most 2 KiB, no private members). With `p256Only`, it must
 * be an EC P-256 key (the KMS wraps keys only for those). ERR_INVALID_ARGUMENT names `field`.
 */
export function parsePublicJwk(text: string, field: string, opts: { p256Only?: boolean } = {}): JWK {
  const fail = (why: string) => new M2msecError('ERR_INVALID_ARGUMENT', `${field}: ${why}`, { field })
  if (Buffer.byteLength(text) > LIMITS.jwkBytes) throw fail('larger than 2 KiB')
  let jwk: unknown
  try {
    jwk = JSON.parse(text)
  } catch {
    throw fail('not JSON')
  }
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw fail('not a JWK object')
  const o = jwk as Record<string, unknown>
  if (PRIVATE_MEMBERS.some((m) => o[m] !== undefined)) throw fail('must be a public key (no private members)')
  if (!['EC', 'OKP', 'RSA'].includes(o['kty'] as string)) throw fail('kty must be EC, OKP or RSA')
  if (opts.p256Only === true && (o['kty'] !== 'EC' || o['crv'] !== 'P-256')) throw fail('must be an EC P-256 key')
  return o as JWK
}

/** RFC 7638 SHA-256 thumbprint (the `cnf.jkt` of a bound token). */
export async function jwkThumbprint(jwk: JWK, field: string): Promise<string> {
  try {
    return await calculateJwkThumbprint(jwk, 'sha256')
  } catch {
    throw new M2msecError('ERR_INVALID_ARGUMENT', `${field}: the JWK lacks required members`, { field })
  }
}
