import { constantTimeEqual } from '@m2msec/crypto'
import { loadKeyForUse } from '../access.ts'
import { audited } from '../audit.ts'
import { LIMITS, checkSize } from '../limits.ts'
import type { Caller } from '../model.ts'
import type { KmsDeps } from '../ports.ts'

/** Mac: HMAC-SHA-256 with the primary version. */
export async function mac(
  deps: KmsDeps,
  caller: Caller,
  req: { keyId: string; data: Uint8Array },
): Promise<{ mac: Uint8Array; version: number }> {
  return audited(deps, caller, { action: 'kms.Mac', resource: `key/${req.keyId}` }, async () => {
    checkSize('data', req.data, LIMITS.messageBytes)
    const { key, version } = await loadKeyForUse(deps, caller, req.keyId, 'MAC')
    const out = await deps.ses.get(key.secureEnvironment).mac({ ref: version.ref, algorithm: key.algorithm }, req.data)
    return { mac: out, version: version.version }
  })
}

/** VerifyMac: recomputes inside the SE and compares in constant time. */
export async function verifyMac(
  deps: KmsDeps,
  caller: Caller,
  req: { keyId: string; data: Uint8Array; mac: Uint8Array; version?: number },
): Promise<{ valid: boolean }> {
  return audited(deps, caller, { action: 'kms.VerifyMac', resource: `key/${req.keyId}` }, async () => {
    checkSize('data', req.data, LIMITS.messageBytes)
    checkSize('mac', req.mac, LIMITS.macBytes)
    const { key, version } = await loadKeyForUse(deps, caller, req.keyId, 'VERIFY_MAC', req.version)
    const expected = await deps.ses
      .get(key.secureEnvironment)
      .mac({ ref: version.ref, algorithm: key.algorithm }, req.data)
    return { valid: constantTimeEqual(expected, req.mac) }
  })
}
