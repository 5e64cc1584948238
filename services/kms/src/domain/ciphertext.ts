/**
 * The KMS ciphertext envelope. Callers get one opaque blob that names the key and version,
 * so Decrypt needs no key id and rotation is transparent:
 *
 *   "M2C1" | u8 ivLen | u8 tagLen | u16 keyIdLen | u32 version | keyId | iv | tag | ciphertext
 *
 * The associated data given to the SE binds tenant, key id and version in front of the
 * caller's AAD, so a blob cannot be replayed under another key, version or tenant.
 */
import { M2msecError } from '@m2msec/errors'
import type { SealedData } from '../se/api.ts'

const MAGIC = Buffer.from('M2C1', 'ascii')
const HEADER = MAGIC.length + 1 + 1 + 2 + 4

export interface Envelope {
  readonly keyId: string
  readonly version: number
  readonly sealed: SealedData
}

export function encodeEnvelope(e: Envelope): Uint8Array {
  return envelopeEncoder(e.keyId, e.version)(e.sealed)
}

/**
 * {@link encodeEnvelope} for many blobs of one key version: the header (magic, lengths, version,
 * key id) is built once and copied into each blob.
 */
export function envelopeEncoder(keyId: string, version: number): (sealed: SealedData) => Uint8Array {
  const id = Buffer.from(keyId, 'utf8')
  const head = Buffer.allocUnsafe(HEADER + id.length)
  MAGIC.copy(head, 0)
  head.writeUInt16BE(id.length, 6)
  head.writeUInt32BE(version, 8)
  id.copy(head, HEADER)
  return ({ iv, tag, ciphertext }) => {
    // One allocation, written in place: this runs once per item of a batch.
    const out = Buffer.allocUnsafe(head.length + iv.length + tag.length + ciphertext.length)
    head.copy(out, 0)
    out.writeUInt8(iv.length, 4)
    out.writeUInt8(tag.length, 5)
    let at = head.length
    out.set(iv, at)
    at += iv.length
    out.set(tag, at)
    at += tag.length
    out.set(ciphertext, at)
    return out
  }
}

export function decodeEnvelope(blob: Uint8Array): Envelope {
  const b = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength)
  if (b.length < HEADER || !b.subarray(0, 4).equals(MAGIC)) throw invalid()
  const ivLen = b.readUInt8(4)
  const tagLen = b.readUInt8(5)
  const idLen = b.readUInt16BE(6)
  const version = b.readUInt32BE(8)
  const idEnd = HEADER + idLen
  const tagEnd = idEnd + ivLen + tagLen
  if (idLen === 0 || b.length < tagEnd) throw invalid()
  return {
    keyId: b.subarray(HEADER, idEnd).toString('utf8'),
    version,
    sealed: {
      iv: b.subarray(idEnd, idEnd + ivLen),
      tag: b.subarray(idEnd + ivLen, tagEnd),
      ciphertext: b.subarray(tagEnd),
    },
  }
}

/** AAD passed to the SE: binds tenant, key and version to the caller's associated data. */
export function boundAad(tenant: string, keyId: string, version: number, aad: Uint8Array): Uint8Array {
  return aadBinder(tenant, keyId, version)(aad)
}

/** {@link boundAad} for many items of one key version: the prefix is encoded once. */
export function aadBinder(tenant: string, keyId: string, version: number): (aad: Uint8Array) => Uint8Array {
  const prefix = Buffer.from(`m2msec.kms.v1\0${tenant}\0${keyId}\0${version}\0`, 'utf8')
  return (aad) => Buffer.concat([prefix, aad])
}

function invalid(): M2msecError {
  return new M2msecError('ERR_CIPHERTEXT_INVALID', 'ciphertext is not a KMS envelope or is truncated')
}
