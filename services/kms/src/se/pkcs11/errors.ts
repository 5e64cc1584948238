/**
 * PKCS#11 return values, sorted by what the pkcs11 SE does about them, and their mapping to
 * M2msecError codes. The CKR name is kept as a detail for logs: it holds no secret.
 */
import pkcs11js from 'pkcs11js'
import { M2msecError } from '@m2msec/errors'
import { unknownRef } from '../checks.ts'

const P = pkcs11js

/** The session or token went away: reopen the session once, then give up. */
export const SESSION_ERRORS: ReadonlySet<number> = new Set([
  P.CKR_SESSION_HANDLE_INVALID,
  P.CKR_SESSION_CLOSED,
  P.CKR_USER_NOT_LOGGED_IN,
  P.CKR_DEVICE_REMOVED,
  P.CKR_TOKEN_NOT_PRESENT,
  P.CKR_DEVICE_ERROR,
  P.CKR_CRYPTOKI_NOT_INITIALIZED,
  // An earlier failure left a crypto operation open in the session (PKCS#11 2.40 has no
  // C_SessionCancel): a fresh session clears it.
  P.CKR_OPERATION_ACTIVE,
])

/** A cached object handle is stale: look the object up again once. */
export const HANDLE_ERRORS: ReadonlySet<number> = new Set([P.CKR_OBJECT_HANDLE_INVALID, P.CKR_KEY_HANDLE_INVALID])

/** The key's type or usage flags forbid the operation. */
const KEY_TYPE_ERRORS: ReadonlySet<number> = new Set([P.CKR_KEY_TYPE_INCONSISTENT, P.CKR_KEY_FUNCTION_NOT_PERMITTED])

/**
 * An AEAD tag or key-wrap check failed. SoftHSM 2.6.1 reports a failed GCM tag as
 * CKR_GENERAL_ERROR, so in decrypt and unwrap calls (only there) that code means the same.
 */
export const DECRYPT_ERRORS: ReadonlySet<number> = new Set([
  P.CKR_ENCRYPTED_DATA_INVALID,
  P.CKR_ENCRYPTED_DATA_LEN_RANGE,
  P.CKR_WRAPPED_KEY_INVALID,
  P.CKR_WRAPPED_KEY_LEN_RANGE,
  P.CKR_GENERAL_ERROR,
])

/** The CKR_* value of a pkcs11js error, or undefined for any other error. */
export function ckrCode(err: unknown): number | undefined {
  return err instanceof P.Pkcs11Error ? err.code : undefined
}

/** The CKR_* name pkcs11js puts in the message (for logs and details). */
export function ckrName(err: unknown): string {
  return err instanceof Error ? err.message.slice(0, 64) : 'unknown'
}

/**
 * The PKCS#11 function that failed (`C_Sign`), from the pkcs11js error or, failing that, the
 * stack frame of the pkcs11js wrapper; 'C_?' when neither names one.
 */
export function ckrFunction(err: unknown): string {
  if (!(err instanceof Error)) return 'C_?'
  const method = (err as { method?: unknown }).method
  if (typeof method === 'string' && /^C_\w+$/.test(method)) return method
  return /\bPKCS11\.(C_\w+)/.exec(err.stack ?? '')?.[1] ?? 'C_?'
}

/** `C_Sign returned CKR_X` plus the same as details: no arguments, so no secrets. */
function describe(err: unknown): { text: string; details: { ckr: string; function: string } } {
  const details = { ckr: ckrName(err), function: ckrFunction(err) }
  return { text: `${details.function} returned ${details.ckr}`, details }
}

/**
 * PKCS#11 errors to M2msecErrors; M2msecErrors and other errors pass through. Every mapped
 * error names the PKCS#11 function and CKR (message and details) for the logs.
 */
export function mapError(err: unknown): unknown {
  if (err instanceof M2msecError) return err
  const code = ckrCode(err)
  if (code === undefined) return err
  const { text, details } = describe(err)
  if (KEY_TYPE_ERRORS.has(code)) {
    return new M2msecError('ERR_KEY_TYPE_MISMATCH', `the key does not permit this operation (${text})`, details)
  }
  if (code === P.CKR_KEY_UNEXTRACTABLE || code === P.CKR_KEY_NOT_WRAPPABLE) {
    return new M2msecError('ERR_EXPORT_DENIED', `the token refuses to wrap this key (${text})`, details)
  }
  if (code === P.CKR_MECHANISM_INVALID || code === P.CKR_MECHANISM_PARAM_INVALID) {
    return new M2msecError('ERR_SE_NOT_SUPPORTED', `the token does not support this mechanism (${text})`, details)
  }
  if (SESSION_ERRORS.has(code) || code === P.CKR_DEVICE_MEMORY || code === P.CKR_HOST_MEMORY) {
    return new M2msecError('ERR_SE_UNAVAILABLE', `the PKCS#11 token is not usable (${text})`, details, { cause: err })
  }
  if (HANDLE_ERRORS.has(code)) return unknownRef()
  return new M2msecError('ERR_INTERNAL', `unexpected PKCS#11 result: ${text}`, details, { cause: err })
}
