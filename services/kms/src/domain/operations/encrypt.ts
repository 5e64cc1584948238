import { loadKeyForUse } from '../access.ts'
import { audited } from '../audit.ts'
import { boundAad, encodeEnvelope } from '../ciphertext.ts'
import { LIMITS, checkSize } from '../limits.ts'
import type { Caller, KeyRecord, KeyVersion } from '../model.ts'
import type { KmsDeps } from '../ports.ts'

/** Encrypts with an already authorized key version (shared by Encrypt and BatchEncrypt). */
export async function encryptWith(
  deps: KmsDeps,
  key: KeyRecord,
  version: KeyVersion,
  req: { plaintext: Uint8Array; aad: Uint8Array },
): Promise<{ ciphertext: Uint8Array; version: number }> {
  checkSize('plaintext', req.plaintext, LIMITS.plaintextBytes)
  checkSize('associated_data', req.aad, LIMITS.aadBytes)
  const sealed = await deps.ses
    .get(key.secureEnvironment)
    .encrypt(
      { ref: version.ref, algorithm: key.algorithm },
      req.plaintext,
      boundAad(key.tenant, key.id, version.version, req.aad),
    )
  return { ciphertext: encodeEnvelope({ keyId: key.id, version: version.version, sealed }), version: version.version }
}

/** Encrypt: AES-256-GCM under the primary version; returns a self-describing envelope. */
export async function encrypt(
  deps: KmsDeps,
  caller: Caller,
  req: { keyId: string; plaintext: Uint8Array; aad: Uint8Array },
): Promise<{ ciphertext: Uint8Array; version: number }> {
  return audited(deps, caller, { action: 'kms.Encrypt', resource: `key/${req.keyId}` }, async () => {
    checkSize('plaintext', req.plaintext, LIMITS.plaintextBytes)
    checkSize('associated_data', req.aad, LIMITS.aadBytes)
    const { key, version } = await loadKeyForUse(deps, caller, req.keyId, 'ENCRYPT')
    return encryptWith(deps, key, version, req)
  })
}
