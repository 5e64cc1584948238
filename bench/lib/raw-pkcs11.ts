/**
 * Raw pkcs11js calls on one logged-in session, for the "raw PKCS#11 rate" of a token: the same
 * mechanisms and parameters as the KMS pkcs11 SE (services/kms/src/se/pkcs11/token.ts) but
 * synchronous on the calling thread, with no worker, no message passing and no checks.
 */
import { createHash, randomBytes } from 'node:crypto'
import pkcs11js from 'pkcs11js'

const P = pkcs11js
const GCM_TAG_BYTES = 16

/** One session on a token, with the three operations the KMS benchmark compares. */
export interface RawPkcs11Session {
  /** The object handle of the key with CKA_ID = `id` (private or secret key). */
  keyById(id: Buffer, cls: number): Buffer
  /** AES-256-GCM (CKM_AES_GCM) with a fresh 96-bit IV; returns ciphertext||tag. */
  encrypt(key: Buffer, plaintext: Buffer, aad: Buffer): Buffer
  /** ECDSA P-256 (CKM_ECDSA) over a host-side SHA-256 digest; returns r||s. */
  signEs256(key: Buffer, message: Buffer): Buffer
  /** HMAC-SHA-256 (CKM_SHA256_HMAC). */
  mac(key: Buffer, data: Buffer): Buffer
  /** Closes the session; never C_Finalize (other users share the module). */
  close(): void
}

/**
 * Opens a session on the token labelled `tokenLabel` and logs in. The module may already be
 * initialised by someone else in this process (CKR_CRYPTOKI_ALREADY_INITIALIZED is fine).
 */
export function openRawSession(modulePath: string, tokenLabel: string, pin: string): RawPkcs11Session {
  const p11 = new P.PKCS11()
  p11.load(modulePath)
  try {
    p11.C_Initialize({ flags: P.CKF_OS_LOCKING_OK })
  } catch (err) {
    if (!String(err).includes('CKR_CRYPTOKI_ALREADY_INITIALIZED')) throw err
  }
  const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === tokenLabel)
  if (slot === undefined) throw new Error(`no token labelled ${tokenLabel}`)
  const session = p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION)
  try {
    p11.C_Login(session, P.CKU_USER, pin)
  } catch (err) {
    if (!String(err).includes('CKR_USER_ALREADY_LOGGED_IN')) throw err
  }
  return {
    keyById(id, cls) {
      p11.C_FindObjectsInit(session, [
        { type: P.CKA_ID, value: id },
        { type: P.CKA_CLASS, value: cls },
      ])
      try {
        const found = p11.C_FindObjects(session, 2)
        if (found.length !== 1 || found[0] === undefined)
          throw new Error(`expected one object with CKA_ID ${id.toString('hex')}`)
        return found[0]
      } finally {
        p11.C_FindObjectsFinal(session)
      }
    },
    encrypt(key, plaintext, aad) {
      const iv = randomBytes(12)
      const parameter: pkcs11js.AesGCM = { type: P.CK_PARAMS_AES_GCM, iv, aad, ivBits: 96, tagBits: GCM_TAG_BYTES * 8 }
      p11.C_EncryptInit(session, { mechanism: P.CKM_AES_GCM, parameter }, key)
      return p11.C_Encrypt(session, plaintext, Buffer.alloc(plaintext.length + GCM_TAG_BYTES))
    },
    signEs256(key, message) {
      p11.C_SignInit(session, { mechanism: P.CKM_ECDSA }, key)
      return p11.C_Sign(session, createHash('sha256').update(message).digest(), Buffer.alloc(64))
    },
    mac(key, data) {
      p11.C_SignInit(session, { mechanism: P.CKM_SHA256_HMAC }, key)
      return p11.C_Sign(session, data, Buffer.alloc(32))
    },
    close() {
      p11.C_CloseSession(session)
    },
  }
}

/** The CKA_ID of a pkcs11 SE ref (`p11.<32 hex digits>`). */
export function idOfRef(ref: string): Buffer {
  const m = /^p11\.([0-9a-f]{32})$/.exec(ref)
  if (m?.[1] === undefined) throw new Error('not a plain pkcs11 SE ref')
  return Buffer.from(m[1], 'hex')
}
