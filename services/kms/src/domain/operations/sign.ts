import { loadKeyForUse } from '../access.ts'
import { audited } from '../audit.ts'
import { LIMITS, checkSize } from '../limits.ts'
import type { Caller } from '../model.ts'
import type { KmsDeps } from '../ports.ts'

/** Sign: ES256 (r||s, 64 bytes) or Ed25519 over `message` with the primary version. */
export async function sign(
  deps: KmsDeps,
  caller: Caller,
  req: { keyId: string; message: Uint8Array },
): Promise<{ signature: Uint8Array; version: number }> {
  return audited(deps, caller, { action: 'kms.Sign', resource: `key/${req.keyId}` }, async () => {
    checkSize('message', req.message, LIMITS.messageBytes)
    const { key, version } = await loadKeyForUse(deps, caller, req.keyId, 'SIGN')
    const signature = await deps.ses
      .get(key.secureEnvironment)
      .sign({ ref: version.ref, algorithm: key.algorithm }, req.message)
    return { signature, version: version.version }
  })
}
