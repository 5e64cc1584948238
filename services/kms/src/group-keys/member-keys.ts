/**
 * Keys derived from a member's own credential, computed inside the credential's secure
 * environment (docs/groups-protocol.md §3):
 *
 * - `KM = HKDF(credential, salt = "", info = fields(LABEL_member-wrap-key, groupId))`, a
 *   derived SE key handle; the member wrap key of an epoch is its HKDF-Expand
 *   `KW = HMAC(KM, fields(LABEL_member-wrap-key, groupId, epoch) || 0x01)`. Only those 32 bytes
 *   reach this process, to AES-key-wrap the envelope's CEK; the credential never does.
 * - `KA = HKDF(credential, salt = "", info = fields(LABEL_member-auth-key, groupId))`, an SE
 *   handle used for member MACs and agent proofs; `SK = HKDF(KA, salt = challenge, info)` is
 *   derived from it, also as a handle, and only its confirmation tag leaves the SE.
 *
 * Derived handles live for one operation and are destroyed afterwards.
 */
import { encodeFields, LABELS, memberWrapBaseInfo, memberWrapKeyInput } from '@m2msec/groupkeys'
import { M2msecError } from '@m2msec/errors'
import { isKeyDeriver, type SecureEnvironment, type SeKeyHandle } from '../se/api.ts'
import { loadKey, requireUsable } from '../domain/access.ts'
import { requireSeSupport } from '../domain/key-spec.ts'
import type { Caller } from '../domain/model.ts'
import type { KmsDeps } from '../domain/ports.ts'

/** Label of the session-key confirmation tag (§6.6). */
export const SESSION_CONFIRM_LABEL = 'm2msec/groups/v1/session-confirm'

const EMPTY = new Uint8Array(0)

/** A credential key opened for derivation: its SE and the handle of its primary version. */
export interface CredentialHandle {
  readonly keyId: string
  readonly se: SecureEnvironment
  readonly handle: SeKeyHandle
}

/**
 * Loads a credential key of the caller's tenant: HMAC_SHA256, enabled, in an SE that derives
 * with HKDF. Another tenant's key is ERR_KEY_NOT_FOUND.
 */
export async function openCredential(deps: KmsDeps, caller: Caller, keyId: string): Promise<CredentialHandle> {
  const { value: key } = await loadKey(deps, caller, keyId)
  if (key.algorithm !== 'HMAC_SHA256') {
    throw new M2msecError('ERR_KEY_TYPE_MISMATCH', 'a member credential must be an HMAC_SHA256 key', { keyId })
  }
  requireUsable(key)
  const version = key.versions.find((v) => v.version === key.primaryVersion)
  if (version === undefined || version.destroyed === true) {
    throw new M2msecError('ERR_KEY_VERSION_NOT_FOUND', 'credential key version not found', { keyId })
  }
  const se = deps.ses.get(key.secureEnvironment)
  requireSeSupport(se, 'HMAC_SHA256', 'derive-hkdf')
  requireSeSupport(se, 'HMAC_SHA256', 'mac')
  return { keyId, se, handle: { ref: version.ref, algorithm: 'HMAC_SHA256' } }
}

/** Derived SE handles of one operation; `release()` destroys them all. */
export interface DerivedKeys {
  /** KA of a credential for a group (memoised per credential key). */
  authKey(cred: CredentialHandle, groupId: string): Promise<CredentialHandle>
  /** KW(member, epoch): 32 bytes (memoised per credential key and epoch). */
  wrapKey(cred: CredentialHandle, groupId: string, epoch: number): Promise<Uint8Array>
  /** HMAC under a handle. */
  mac(key: CredentialHandle, data: Uint8Array): Promise<Uint8Array>
  /** SK from KA for one authentication; the handle is released with the others. */
  sessionKey(authKey: CredentialHandle, salt: Uint8Array, info: Uint8Array): Promise<CredentialHandle>
  release(): Promise<void>
}

/**
 * @example
 * ```ts
 * const keys = derivedKeys()
 * try { const kw = await keys.wrapKey(cred, 'meters', 7) } finally { await keys.release() }
 * ```
 */
export function derivedKeys(): DerivedKeys {
  const created: CredentialHandle[] = []
  const authKeys = new Map<string, Promise<CredentialHandle>>()
  const baseKeys = new Map<string, Promise<CredentialHandle>>()
  const wrapKeys = new Map<string, Promise<Uint8Array>>()

  const derive = async (base: CredentialHandle, salt: Uint8Array, info: Uint8Array): Promise<CredentialHandle> => {
    const se = base.se
    if (!isKeyDeriver(se))
      throw new M2msecError('ERR_SE_NOT_SUPPORTED', `secure environment ${se.name} cannot derive keys`)
    const out = await se.deriveKey(
      base.handle,
      { kdf: 'HKDF_SHA256', salt, info },
      { algorithm: 'HMAC_SHA256', label: `_groups/derived/${base.keyId}`, exportable: false },
    )
    const handle: CredentialHandle = { keyId: base.keyId, se, handle: { ref: out.ref, algorithm: 'HMAC_SHA256' } }
    created.push(handle)
    return handle
  }
  const memo = <T>(map: Map<string, Promise<T>>, key: string, make: () => Promise<T>): Promise<T> => {
    let p = map.get(key)
    if (p === undefined) {
      p = make()
      map.set(key, p)
    }
    return p
  }

  return {
    authKey: (cred, groupId) =>
      memo(authKeys, cred.keyId, () => derive(cred, EMPTY, encodeFields(LABELS.memberAuthKey, groupId))),
    wrapKey: (cred, groupId, epoch) =>
      memo(wrapKeys, `${cred.keyId}#${epoch}`, async () => {
        // The byte layout is the library's (deriveMemberWrapKey computes the same value from raw bytes).
        const km = await memo(baseKeys, cred.keyId, () => derive(cred, EMPTY, memberWrapBaseInfo(groupId)))
        return km.se.mac(km.handle, memberWrapKeyInput(groupId, epoch))
      }),
    mac: (key, data) => key.se.mac(key.handle, data),
    sessionKey: (authKey, salt, info) => derive(authKey, salt, info),
    async release() {
      const all = created.splice(0)
      await Promise.all(all.map((h) => h.se.destroyKey(h.handle).catch(() => undefined)))
    },
  }
}
