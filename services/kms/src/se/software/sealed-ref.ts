/**
 * The stateless key reference of the software SE:
 *
 *   ref = "sw1." + base64url( header(2) | iv(12) | ciphertext | tag(16) )
 *   header = algorithm code (1 byte) | flags (1 byte, bit 0 = exportable)
 *   ciphertext, tag = AES-256-GCM(sealKey, iv, plaintext = key material, aad = "m2msec-sw1" | header)
 *
 * The header is in clear (it is not secret: the KMS key record holds the same facts) but it is
 * the GCM associated data, so a ref cannot be re-typed or re-labelled exportable without the
 * tag failing. The material is raw bytes for secret keys and PKCS#8 DER for private keys.
 */
import type { KeyObject } from 'node:crypto'
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import type { KeyAlgorithm } from '../api.ts'
import { unknownRef } from '../checks.ts'

/** Prefix of every ref this module produces. */
export const REF_PREFIX = 'sw1.'

const AAD_PREFIX = Buffer.from('m2msec-sw1', 'ascii')
const HEADER_LENGTH = 2
const IV_LENGTH = 12
const TAG_LENGTH = 16
const FLAG_EXPORTABLE = 0x01

// Fixed codes (never reorder): the ref format must not depend on the order of KEY_ALGORITHMS.
const ALGORITHM_CODES: Readonly<Record<KeyAlgorithm, number>> = {
  AES_256_GCM: 1,
  HMAC_SHA256: 2,
  EC_P256_SIGN: 3,
  ED25519_SIGN: 4,
  EC_P256_ECDH: 5,
  MILENAGE: 6,
}
const ALGORITHMS_BY_CODE = new Map<number, KeyAlgorithm>(
  Object.entries(ALGORITHM_CODES).map(([name, code]) => [code, name as KeyAlgorithm]),
)

/** What the clear header of a ref says. */
export interface RefHeader {
  readonly algorithm: KeyAlgorithm
  readonly exportable: boolean
}

/** Seals `material` under `sealKey` (an AES-256 secret KeyObject) into a ref. */
export function sealRef(sealKey: KeyObject, header: RefHeader, material: Uint8Array): string {
  const head = Buffer.from([ALGORITHM_CODES[header.algorithm], header.exportable ? FLAG_EXPORTABLE : 0])
  const iv = randomBytes(IV_LENGTH)
  const cipher = createCipheriv('aes-256-gcm', sealKey, iv)
  cipher.setAAD(Buffer.concat([AAD_PREFIX, head]))
  const ciphertext = Buffer.concat([cipher.update(material), cipher.final()])
  return REF_PREFIX + Buffer.concat([head, iv, ciphertext, cipher.getAuthTag()]).toString('base64url')
}

/** Reads the clear header without opening the ref; ERR_INVALID_ARGUMENT when malformed. */
export function readRefHeader(ref: string): RefHeader {
  return decode(ref).header
}

/**
 * Opens a ref. Throws ERR_INVALID_ARGUMENT for a malformed ref or one that does not
 * authenticate under this seal key (another master key, or edited).
 */
export function openRef(sealKey: KeyObject, ref: string): { header: RefHeader; material: Uint8Array } {
  const { header, head, body } = decode(ref)
  const iv = body.subarray(0, IV_LENGTH)
  const tag = body.subarray(body.length - TAG_LENGTH)
  const ciphertext = body.subarray(IV_LENGTH, body.length - TAG_LENGTH)
  try {
    const decipher = createDecipheriv('aes-256-gcm', sealKey, iv)
    decipher.setAAD(Buffer.concat([AAD_PREFIX, head]))
    decipher.setAuthTag(tag)
    const material = Buffer.concat([decipher.update(ciphertext), decipher.final()])
    return { header, material: new Uint8Array(material.buffer, material.byteOffset, material.length) }
  } catch {
    throw unknownRef()
  }
}

function decode(ref: string): { header: RefHeader; head: Buffer; body: Buffer } {
  if (!ref.startsWith(REF_PREFIX)) throw unknownRef()
  const text = ref.slice(REF_PREFIX.length)
  if (!/^[A-Za-z0-9_-]+$/.test(text)) throw unknownRef()
  const raw = Buffer.from(text, 'base64url')
  if (raw.length < HEADER_LENGTH + IV_LENGTH + TAG_LENGTH + 1) throw unknownRef()
  const head = raw.subarray(0, HEADER_LENGTH)
  const algorithm = ALGORITHMS_BY_CODE.get(head[0] ?? 0)
  const flags = head[1] ?? 0
  if (algorithm === undefined || (flags & ~FLAG_EXPORTABLE) !== 0) throw unknownRef()
  return { header: { algorithm, exportable: (flags & FLAG_EXPORTABLE) !== 0 }, head, body: raw.subarray(HEADER_LENGTH) }
}
