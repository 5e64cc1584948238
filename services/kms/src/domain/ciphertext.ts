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
  const id = Buffer.from(e.keyId, 'utf8')
  const head = Buffer.alloc(HEADER)
  MAGIC.copy(head, 0)
  head.writeUInt8(e.sealed.iv.length, 4)
  head.writeUInt8(e.sealed.tag.length, 5)
  head.writeUInt16BE(id.length, 6)
  head.writeUInt32BE(e.version, 8)
  return Buffer.concat([head, id, e.sealed.iv, e.sealed.tag, e.sealed.ciphertext])
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
  const prefix = Buffer.from(`m2msec.kms.v1\0${tenant}\0${keyId}\0${version}\0`, 'utf8')
  return Buffer.concat([prefix, aad])
}

function invalid(): M2msecError {
  return new M2msecError('ERR_CIPHERTEXT_INVALID', 'ciphertext is not a KMS envelope or is truncated')
}
