import { M2msecError } from '@m2msec/errors'
import type { WrapRecipient } from '../../se/api.ts'
import { isKeyWrapper } from '../../se/api.ts'
import { loadKeyForUse } from '../access.ts'
import { audited } from '../audit.ts'
import { requireSeSupport } from '../key-spec.ts'
import { LIMITS, checkSize } from '../limits.ts'
import type { Caller } from '../model.ts'
import type { KmsDeps } from '../ports.ts'

/** Who a key is wrapped for: another KMS key (A256KW) or an external P-256 public key (ECDH-ES+A256KW). */
export type WrapFor = { readonly kmsKeyId: string } | { readonly publicJwk: string }

/**
 * WrapKey: exports an exportable key as a JWE for a recipient. Needs EXPORT on the key and,
 * for a KMS recipient, WRAP on the recipient key (same SE). Non-exportable keys never leave.
 */
export async function wrapKey(
  deps: KmsDeps,
  caller: Caller,
  req: { keyId: string; recipient: WrapFor },
): Promise<{ jwe: string; version: number }> {
  return audited(deps, caller, { action: 'kms.WrapKey', resource: `key/${req.keyId}` }, async () => {
    const { key, version } = await loadKeyForUse(deps, caller, req.keyId, 'EXPORT')
    if (!key.exportable) {
      throw new M2msecError('ERR_EXPORT_DENIED', 'key is not exportable', { keyId: key.id })
    }
    const se = deps.ses.get(key.secureEnvironment)
    requireSeSupport(se, key.algorithm, 'wrap')
    if (!isKeyWrapper(se))
      throw new M2msecError('ERR_SE_NOT_SUPPORTED', `secure environment ${se.name} cannot wrap keys`)
    let recipient: WrapRecipient
    if ('kmsKeyId' in req.recipient) {
      const r = await loadKeyForUse(deps, caller, req.recipient.kmsKeyId, 'WRAP')
      if (r.key.secureEnvironment !== key.secureEnvironment) {
        throw new M2msecError('ERR_FAILED_PRECONDITION', 'the wrapping key must be in the same secure environment')
      }
      recipient = {
        kind: 'kms-key',
        key: { ref: r.version.ref, algorithm: r.key.algorithm },
        kid: `${r.key.id}/${r.version.version}`,
      }
    } else {
      checkSize('public_jwk', req.recipient.publicJwk, LIMITS.wrappedKeyBytes)
      recipient = { kind: 'public-jwk', jwk: parsePublicJwk(req.recipient.publicJwk), kid: 'recipient' }
    }
    const jwe = await se.wrapKey({ ref: version.ref, algorithm: key.algorithm }, recipient)
    return { jwe, version: version.version }
  })
}

/** Accepts only a P-256 public EC JWK; a JWK with a private part is refused (never needed here). */
function parsePublicJwk(json: string): Readonly<Record<string, string>> {
  let jwk: unknown
  try {
    jwk = JSON.parse(json)
  } catch {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'public_jwk is not JSON', { field: 'public_jwk' })
  }
  if (typeof jwk !== 'object' || jwk === null) throw badJwk()
  const j = jwk as Record<string, unknown>
  if (j.kty !== 'EC' || j.crv !== 'P-256' || typeof j.x !== 'string' || typeof j.y !== 'string') throw badJwk()
  if ('d' in j)
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'public_jwk must not contain a private key', { field: 'public_jwk' })
  return { kty: 'EC', crv: 'P-256', x: j.x, y: j.y }
}

function badJwk(): M2msecError {
  return new M2msecError('ERR_INVALID_ARGUMENT', 'public_jwk must be an EC P-256 public JWK', { field: 'public_jwk' })
}
