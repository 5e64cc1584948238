import { loadKeyForUse } from '../access.ts'
import { audited } from '../audit.ts'
import { LIMITS, checkSize } from '../limits.ts'
import type { Caller } from '../model.ts'
import type { KmsDeps } from '../ports.ts'

/** Verify: `valid` is false for a wrong signature; version defaults to the primary one. */
export async function verify(
  deps: KmsDeps,
  caller: Caller,
  req: { keyId: string; message: Uint8Array; signature: Uint8Array; version?: number },
): Promise<{ valid: boolean }> {
  return audited(deps, caller, { action: 'kms.Verify', resource: `key/${req.keyId}` }, async () => {
    checkSize('message', req.message, LIMITS.messageBytes)
    checkSize('signature', req.signature, LIMITS.signatureBytes)
    const { key, version } = await loadKeyForUse(deps, caller, req.keyId, 'VERIFY', req.version)
    const se = deps.ses.get(key.secureEnvironment)
    return { valid: await se.verify({ ref: version.ref, algorithm: key.algorithm }, req.message, req.signature) }
  })
}
