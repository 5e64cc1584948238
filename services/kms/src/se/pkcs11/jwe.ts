/**
 * Compact JWE (RFC 7516) pieces for the pkcs11 SE, whose wrapping keys stay in the token so
 * jose cannot use them: parsing and serialising the compact form, the ECDH-ES Concat KDF
 * (RFC 7518 §4.6.2) and AES Key Wrap on the host for ECDH-derived KEKs. Only the profile the
 * KMS uses is accepted: `alg` A256KW or ECDH-ES+A256KW, `enc` A256GCM, no `zip`, no `crit`.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'
import { invalidArgument } from '@m2msec/errors'
import { ciphertextInvalid } from '../checks.ts'
import { MAX_JWE_LENGTH, WRAP_ENC } from '../jwe-recipient.ts'

/** The parts of a compact JWE. `aad` is the ASCII of the encoded protected header. */
export interface CompactJwe {
  readonly header: Readonly<Record<string, unknown>>
  readonly aad: Buffer
  readonly encryptedKey: Buffer
  readonly iv: Buffer
  readonly ciphertext: Buffer
  readonly tag: Buffer
}

const B64URL = /^[A-Za-z0-9_-]*$/

function malformed(): Error {
  return invalidArgument('jwe must be a compact JWE with enc A256GCM', { field: 'jwe' })
}

/** Parses a compact JWE of the KMS profile; ERR_INVALID_ARGUMENT when it is not one. */
export function parseCompactJwe(jwe: string): CompactJwe {
  if (typeof jwe !== 'string' || jwe.length === 0 || jwe.length > MAX_JWE_LENGTH) throw malformed()
  const parts = jwe.split('.')
  if (parts.length !== 5 || !parts.every((p) => B64URL.test(p))) throw malformed()
  const [h, k, iv, c, t] = parts as [string, string, string, string, string]
  let header: unknown
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'))
  } catch {
    throw malformed()
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw malformed()
  const hdr = header as Record<string, unknown>
  if (hdr['enc'] !== WRAP_ENC || 'zip' in hdr || 'crit' in hdr) throw malformed()
  const out = {
    header: hdr,
    aad: Buffer.from(h, 'ascii'),
    encryptedKey: Buffer.from(k, 'base64url'),
    iv: Buffer.from(iv, 'base64url'),
    ciphertext: Buffer.from(c, 'base64url'),
    tag: Buffer.from(t, 'base64url'),
  }
  if (out.iv.length !== 12 || out.tag.length !== 16) throw malformed()
  return out
}

/** Encodes the protected header; its ASCII is the GCM associated data. */
export function encodeHeader(header: Readonly<Record<string, unknown>>): string {
  return Buffer.from(JSON.stringify(header), 'utf8').toString('base64url')
}

/**
 * Content-encrypts `plaintext` with A256GCM under `cek` and serialises the compact JWE.
 *
 * @example
 * ```ts
 * const jwe = sealCompactJwe(encodeHeader({ alg: 'A256KW', enc: 'A256GCM', kid }), wrappedCek, cek, pkcs8)
 * ```
 */
export function sealCompactJwe(
  protectedHeader: string,
  encryptedKey: Uint8Array,
  cek: Uint8Array,
  plaintext: Uint8Array,
): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', cek, iv)
  cipher.setAAD(Buffer.from(protectedHeader, 'ascii'))
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return [
    protectedHeader,
    Buffer.from(encryptedKey).toString('base64url'),
    iv.toString('base64url'),
    ciphertext.toString('base64url'),
    cipher.getAuthTag().toString('base64url'),
  ].join('.')
}

/** A256GCM content decryption on the host; ERR_CIPHERTEXT_INVALID when the tag fails. */
export function openContent(jwe: CompactJwe, cek: Uint8Array): Buffer {
  try {
    const decipher = createDecipheriv('aes-256-gcm', cek, jwe.iv)
    decipher.setAAD(jwe.aad)
    decipher.setAuthTag(jwe.tag)
    return Buffer.concat([decipher.update(jwe.ciphertext), decipher.final()])
  } catch {
    throw ciphertextInvalid()
  }
}

/** RFC 3394 AES-256 key unwrap on the host; ERR_CIPHERTEXT_INVALID when the check fails. */
export function aesKwUnwrap(kek: Uint8Array, wrapped: Uint8Array): Buffer {
  try {
    const decipher = createDecipheriv('id-aes256-wrap', kek, Buffer.from('a6a6a6a6a6a6a6a6', 'hex'))
    return Buffer.concat([decipher.update(wrapped), decipher.final()])
  } catch {
    throw ciphertextInvalid()
  }
}

/** RFC 5649 AES-256 key unwrap with padding (what CKM_AES_KEY_WRAP_PAD produces). */
export function aesKwpUnwrap(kek: Uint8Array, wrapped: Uint8Array): Buffer {
  const decipher = createDecipheriv('id-aes256-wrap-pad', kek, Buffer.from('a65959a6', 'hex'))
  return Buffer.concat([decipher.update(wrapped), decipher.final()])
}

function lengthPrefixed(bytes: Uint8Array): Buffer {
  const len = Buffer.alloc(4)
  len.writeUInt32BE(bytes.length)
  return Buffer.concat([len, bytes])
}

/**
 * The JWA Concat KDF for ECDH-ES with a 256-bit output (one SHA-256 round):
 * SHA-256(00000001 || Z || AlgorithmID || PartyUInfo || PartyVInfo || SuppPubInfo).
 */
export function concatKdf256(z: Uint8Array, alg: string, apu: Uint8Array, apv: Uint8Array): Buffer {
  const suppPubInfo = Buffer.alloc(4)
  suppPubInfo.writeUInt32BE(256)
  return createHash('sha256')
    .update(Buffer.from([0, 0, 0, 1]))
    .update(z)
    .update(lengthPrefixed(Buffer.from(alg, 'ascii')))
    .update(lengthPrefixed(apu))
    .update(lengthPrefixed(apv))
    .update(suppPubInfo)
    .digest()
}

/** An optional base64url header parameter (apu, apv) as bytes. */
export function optionalBytes(header: Readonly<Record<string, unknown>>, name: string): Buffer {
  const value = header[name]
  if (value === undefined) return Buffer.alloc(0)
  if (typeof value !== 'string' || !B64URL.test(value)) throw malformed()
  return Buffer.from(value, 'base64url')
}
