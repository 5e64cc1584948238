/**
 * Opening the PKCS#11 module and a logged-in session on the token with a given label.
 * The slot is always found by token label: slot ids are not stable (SoftHSM assigns a random
 * one per token, hardware HSMs renumber after a reboot).
 */
import pkcs11js from 'pkcs11js'
import { M2msecError } from '@m2msec/errors'
import { ckrCode, ckrName } from './errors.ts'
import { acquireLibrary } from './library.ts'

const P = pkcs11js
type Handle = pkcs11js.Handle

/**
 * Loads the module and initialises it for one more user (library.ts): C_Initialize is
 * process-wide and runs under a lock shared by every worker of the library.
 */
export function loadModule(modulePath: string, library: SharedArrayBuffer): pkcs11js.PKCS11 {
  const p11 = new P.PKCS11()
  try {
    p11.load(modulePath)
  } catch (err) {
    throw new M2msecError(
      'ERR_CONFIG_INVALID',
      'cannot load the PKCS#11 module',
      { field: 'modulePath' },
      { cause: err },
    )
  }
  acquireLibrary(p11, library)
  return p11
}

/** The slot holding the token labelled `label` (ERR_SE_UNAVAILABLE when absent). */
export function findSlot(p11: pkcs11js.PKCS11, label: string): Handle {
  const matches = p11.C_GetSlotList(true).filter((slot) => p11.C_GetTokenInfo(slot).label.trim() === label)
  if (matches.length === 0) {
    throw new M2msecError('ERR_SE_UNAVAILABLE', 'no PKCS#11 token with the configured label is present', {
      tokenLabel: label,
    })
  }
  if (matches.length > 1) {
    throw new M2msecError('ERR_CONFIG_INVALID', 'several PKCS#11 tokens carry the configured label', {
      tokenLabel: label,
    })
  }
  return matches[0] as Handle
}

/** Opens a read-write session and logs in as the user (ERR_CONFIG_INVALID for a wrong PIN). */
export function openSession(p11: pkcs11js.PKCS11, slot: Handle, pin: string): Handle {
  const session = p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION)
  try {
    p11.C_Login(session, P.CKU_USER, pin)
  } catch (err) {
    const code = ckrCode(err)
    // Login state is per application: another session of this process logged in already.
    if (code === P.CKR_USER_ALREADY_LOGGED_IN) return session
    p11.C_CloseSession(session)
    if (code === P.CKR_PIN_INCORRECT || code === P.CKR_PIN_LEN_RANGE) {
      throw new M2msecError('ERR_CONFIG_INVALID', 'the PKCS#11 token rejected the configured PIN', { field: 'pinFile' })
    }
    throw new M2msecError(
      'ERR_SE_UNAVAILABLE',
      `PKCS#11 C_Login returned ${ckrName(err)}`,
      { ckr: ckrName(err), function: 'C_Login' },
      { cause: err },
    )
  }
  return session
}
