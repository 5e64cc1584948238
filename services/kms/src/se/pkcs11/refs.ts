/**
 * Key references of the pkcs11 SE.
 *
 *   p11.<hex CKA_ID>                                   every key (a key pair shares the CKA_ID)
 *   p11.<hex K id>.<hex OPc KEK id>.<base64url(iv|ciphertext|tag)>   MILENAGE
 *
 * User keys have random 16-byte CKA_IDs. The internal OPc KEK has a longer, prefixed id, so no
 * user ref can name it (and decrypt sealed OPc values with it).
 */
import { unknownRef } from '../checks.ts'

const REF_PREFIX = 'p11.'
/** Length of a user key's random CKA_ID. */
export const ID_LENGTH = 16
/** CKA_LABEL of the OPc KEK. */
export const OPC_KEK_LABEL = 'm2msec/opc-kek'
/** Start of every OPc KEK CKA_ID (followed by 8 random bytes). */
export const OPC_KEK_ID_PREFIX = Buffer.from('m2msec-opc-kek:', 'ascii')
/** GCM associated data prefix of a sealed OPc (followed by K's CKA_ID). */
export const OPC_AAD_PREFIX = Buffer.from('m2msec-opc|', 'ascii')
// iv 12 + OPc 16 + tag 16
const SEALED_OPC_LENGTH = 44

const HEX_ID = /^[0-9a-f]{32}$/
const HEX_KEK_ID = /^[0-9a-f]{46}$/
const B64URL = /^[A-Za-z0-9_-]+$/

/** A parsed ref: the key's CKA_ID and whether it is a MILENAGE ref. */
export interface ParsedRef {
  readonly id: Buffer
  readonly idHex: string
  readonly milenage: boolean
}

/** The ref of a key with CKA_ID `id`. */
export function refOf(id: Buffer): string {
  return REF_PREFIX + id.toString('hex')
}

/** The ref of a MILENAGE key: K's id, the OPc KEK's id and the sealed OPc. */
export function milenageRefOf(id: Buffer, kekId: Buffer, sealedOpc: Buffer): string {
  return `${refOf(id)}.${kekId.toString('hex')}.${sealedOpc.toString('base64url')}`
}

/** True for a CKA_ID of an OPc KEK. */
export function isOpcKekId(id: Buffer): boolean {
  return (
    id.length === OPC_KEK_ID_PREFIX.length + 8 && id.subarray(0, OPC_KEK_ID_PREFIX.length).equals(OPC_KEK_ID_PREFIX)
  )
}

/** Parses a ref; undefined when it is not one of ours. */
export function tryParseRef(ref: string): ParsedRef | undefined {
  if (typeof ref !== 'string' || !ref.startsWith(REF_PREFIX)) return undefined
  const parts = ref.slice(REF_PREFIX.length).split('.')
  const idHex = parts[0] ?? ''
  if (!HEX_ID.test(idHex)) return undefined
  if (parts.length === 1) return { id: Buffer.from(idHex, 'hex'), idHex, milenage: false }
  if (parts.length === 3 && HEX_KEK_ID.test(parts[1] ?? '') && B64URL.test(parts[2] ?? '')) {
    return { id: Buffer.from(idHex, 'hex'), idHex, milenage: true }
  }
  return undefined
}

/** The parts of a MILENAGE ref; ERR_INVALID_ARGUMENT when malformed. */
export function parseMilenageRef(ref: string): { id: Buffer; kekId: Buffer; sealedOpc: Buffer } {
  const parsed = tryParseRef(ref)
  if (parsed === undefined || !parsed.milenage) throw unknownRef()
  const [, kekHex, blob] = ref.slice(REF_PREFIX.length).split('.') as [string, string, string]
  const kekId = Buffer.from(kekHex, 'hex')
  const sealedOpc = Buffer.from(blob, 'base64url')
  if (!isOpcKekId(kekId) || sealedOpc.length !== SEALED_OPC_LENGTH) throw unknownRef()
  return { id: parsed.id, kekId, sealedOpc }
}
