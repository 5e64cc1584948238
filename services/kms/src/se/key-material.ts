/**
 * Key material formats shared by the SE backends: what `importKey` accepts and what a wrapped
 * key contains (ImportSpec in api.ts):
 * - AES_256_GCM: 32 raw bytes; HMAC_SHA256: 32..64 raw bytes; MILENAGE: K || OPc (16 + 16)
 * - EC_P256_SIGN, EC_P256_ECDH, ED25519_SIGN: a PKCS#8 DER private key of that curve
 *
 * Parsing uses node:crypto KeyObjects; errors are ERR_INVALID_ARGUMENT and never echo bytes.
 */
import type { KeyObject } from 'node:crypto'
import { createPrivateKey, createPublicKey } from 'node:crypto'
import { invalidArgument } from '@m2msec/errors'
import type { KeyAlgorithm } from './api.ts'
import { requireBytes } from './checks.ts'

/** Algorithms whose material is a private key (PKCS#8) with a public half (SPKI). */
export const ASYMMETRIC_ALGORITHMS: ReadonlySet<KeyAlgorithm> = new Set([
  'EC_P256_SIGN',
  'EC_P256_ECDH',
  'ED25519_SIGN',
])

/** Parsed, validated key material. */
export type KeyMaterial =
  | { readonly kind: 'secret'; readonly algorithm: KeyAlgorithm; readonly bytes: Uint8Array }
  | {
      readonly kind: 'private'
      readonly algorithm: KeyAlgorithm
      readonly privateKey: KeyObject
      readonly publicKey: KeyObject
    }

/** Allowed raw lengths per symmetric algorithm. */
export const SECRET_LENGTHS: Readonly<Partial<Record<KeyAlgorithm, { readonly min: number; readonly max: number }>>> = {
  AES_256_GCM: { min: 32, max: 32 },
  HMAC_SHA256: { min: 32, max: 64 },
  MILENAGE: { min: 32, max: 32 },
}

/**
 * Validates and parses import material for `algorithm`.
 *
 * @example
 * ```ts
 * const m = parseKeyMaterial('EC_P256_SIGN', pkcs8Der) // { kind: 'private', privateKey, publicKey }
 * ```
 */
export function parseKeyMaterial(algorithm: KeyAlgorithm, material: Uint8Array): KeyMaterial {
  requireBytes(material, 'material')
  const lengths = SECRET_LENGTHS[algorithm]
  if (lengths !== undefined) {
    if (material.length < lengths.min || material.length > lengths.max) {
      const range = lengths.min === lengths.max ? `${lengths.min}` : `${lengths.min}..${lengths.max}`
      throw invalidArgument(`${algorithm} material must be ${range} bytes`, { field: 'material' })
    }
    return { kind: 'secret', algorithm, bytes: new Uint8Array(material) }
  }
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey({ key: Buffer.from(material), format: 'der', type: 'pkcs8' })
  } catch {
    throw invalidArgument(`${algorithm} material must be a PKCS#8 DER private key`, { field: 'material' })
  }
  const fits =
    algorithm === 'ED25519_SIGN'
      ? privateKey.asymmetricKeyType === 'ed25519'
      : privateKey.asymmetricKeyType === 'ec' && privateKey.asymmetricKeyDetails?.namedCurve === 'prime256v1'
  if (!fits) throw invalidArgument(`material is not a ${algorithm} private key`, { field: 'material' })
  return { kind: 'private', algorithm, privateKey, publicKey: createPublicKey(privateKey) }
}

/** The bytes a wrapped key carries: raw secret, or PKCS#8 DER for a private key. */
export function exportMaterial(m: KeyMaterial): Uint8Array {
  if (m.kind === 'secret') return new Uint8Array(m.bytes)
  return new Uint8Array(m.privateKey.export({ format: 'der', type: 'pkcs8' }))
}

/** SubjectPublicKeyInfo DER of a public key. */
export function spkiOf(publicKey: KeyObject): Uint8Array {
  return new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }))
}

/** The private scalar / seed of a parsed private key (P-256 `d`, 32 bytes; Ed25519 seed, 32 bytes). */
export function privateScalar(privateKey: KeyObject): Uint8Array {
  const d = privateKey.export({ format: 'jwk' }).d
  if (typeof d !== 'string') throw invalidArgument('material is not a private key', { field: 'material' })
  return new Uint8Array(Buffer.from(d, 'base64url'))
}

/** The public point: P-256 uncompressed 0x04 || X || Y (65 bytes); Ed25519 the 32-byte key. */
export function publicPoint(publicKey: KeyObject): Uint8Array {
  const jwk = publicKey.export({ format: 'jwk' })
  const x = Buffer.from(jwk.x ?? '', 'base64url')
  if (jwk.kty === 'OKP') return new Uint8Array(x)
  const y = Buffer.from(jwk.y ?? '', 'base64url')
  return new Uint8Array(Buffer.concat([Buffer.from([4]), x, y]))
}

/**
 * The public KeyObject for a raw public point of `algorithm` (as {@link publicPoint} returns).
 * Throws ERR_INVALID_ARGUMENT for a point that is not on the curve.
 */
export function publicKeyFromPoint(algorithm: KeyAlgorithm, point: Uint8Array): KeyObject {
  try {
    if (algorithm === 'ED25519_SIGN') {
      if (point.length !== 32) throw new Error('length')
      return createPublicKey({
        key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(point).toString('base64url') },
        format: 'jwk',
      })
    }
    if (point.length !== 65 || point[0] !== 4) throw new Error('length')
    const x = Buffer.from(point.subarray(1, 33)).toString('base64url')
    const y = Buffer.from(point.subarray(33, 65)).toString('base64url')
    return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x, y }, format: 'jwk' })
  } catch {
    throw invalidArgument('public key point is malformed', { field: 'publicKey' })
  }
}
