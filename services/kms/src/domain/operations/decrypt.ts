import { M2msecError } from '@m2msec/errors'
import { loadKeyForUse } from '../access.ts'
import { audited } from '../audit.ts'
import { boundAad, decodeEnvelope } from '../ciphertext.ts'
import { LIMITS, checkSize } from '../limits.ts'
import type { Caller } from '../model.ts'
import type { KmsDeps } from '../ports.ts'

/**
 * Decrypt: the envelope names key and version. If the caller also names a key it must match.
 * A tampered blob, wrong AAD or a blob from another tenant fails with ERR_CIPHERTEXT_INVALID or
 * ERR_KEY_NOT_FOUND and reveals nothing else.
 */
export async function decrypt(
  deps: KmsDeps,
  caller: Caller,
  req: { keyId?: string; ciphertext: Uint8Array; aad: Uint8Array },
): Promise<{ plaintext: Uint8Array; keyId: string; version: number }> {
  return audited(deps, caller, { action: 'kms.Decrypt', resource: `key/${req.keyId ?? ''}` }, async () => {
    checkSize('ciphertext', req.ciphertext, LIMITS.ciphertextBytes)
    checkSize('associated_data', req.aad, LIMITS.aadBytes)
    const env = decodeEnvelope(req.ciphertext)
    if (req.keyId !== undefined && req.keyId !== '' && req.keyId !== env.keyId) {
      throw new M2msecError('ERR_CIPHERTEXT_INVALID', 'ciphertext was not made with this key')
    }
    const { key, version } = await loadKeyForUse(deps, caller, env.keyId, 'DECRYPT', env.version)
    const se = deps.ses.get(key.secureEnvironment)
    const plaintext = await se.decrypt(
      { ref: version.ref, algorithm: key.algorithm },
      env.sealed,
      boundAad(key.tenant, key.id, version.version, req.aad),
    )
    return { plaintext, keyId: key.id, version: version.version }
  })
}
