import { M2msecError } from '@m2msec/errors'
import { kdf3gppInput } from '@m2msec/crypto'
import type { DeriveParams } from '../../se/api.ts'
import { isKeyDeriver } from '../../se/api.ts'
import { loadKeyForUse } from '../access.ts'
import { audited } from '../audit.ts'
import type { NewKeySpec } from '../key-spec.ts'
import { prepareNewKey, requireSeSupport, storeNewKey, validateAlgorithm } from '../key-spec.ts'
import { LIMITS, checkSize } from '../limits.ts'
import type { Caller, KeyRecord } from '../model.ts'
import type { KmsDeps } from '../ports.ts'

/** How the caller asks for a derivation. */
export type DeriveRequest =
  | { readonly kdf: 'HKDF_SHA256'; readonly salt: Uint8Array; readonly info: Uint8Array }
  | { readonly kdf: 'KDF_3GPP'; readonly fc: number; readonly params: readonly Uint8Array[] }
  /** HMAC-SHA-256(base, data) as the new key (oneM2M TS-0003 §10.3.2/§10.3.3/§10.3.7 from Ke). */
  | { readonly kdf: 'HMAC_SHA256'; readonly data: Uint8Array }

/**
 * DeriveKey: HKDF-SHA256, the 3GPP KDF (TS 33.220 Annex B) or plain HMAC-SHA-256 from a base key into a NEW key
 * handle in the same SE. Needs DERIVE on the base key. A derived key may be exportable only if
 * the base key is: otherwise derivation would launder a non-exportable secret out of the SE.
 */
export async function deriveKey(
  deps: KmsDeps,
  caller: Caller,
  req: { baseKeyId: string; derivation: DeriveRequest; target: Omit<NewKeySpec, 'secureEnvironment'> },
): Promise<KeyRecord> {
  return audited(
    deps,
    caller,
    { action: 'kms.DeriveKey', resource: `key/${req.baseKeyId}`, details: { kdf: req.derivation.kdf } },
    async () => {
      validateAlgorithm(req.target.algorithm)
      if (req.target.algorithm !== 'AES_256_GCM' && req.target.algorithm !== 'HMAC_SHA256') {
        throw new M2msecError('ERR_INVALID_ARGUMENT', 'derived keys are AES_256_GCM or HMAC_SHA256', {
          field: 'target.algorithm',
        })
      }
      const params = deriveParams(req.derivation)
      const { key: base, version } = await loadKeyForUse(deps, caller, req.baseKeyId, 'DERIVE')
      if (req.target.exportable === true && !base.exportable) {
        throw new M2msecError('ERR_EXPORT_DENIED', 'a key derived from a non-exportable key cannot be exportable', {
          keyId: base.id,
        })
      }
      const spec: NewKeySpec = { ...req.target, secureEnvironment: base.secureEnvironment }
      const prepared = prepareNewKey(deps, caller, spec)
      const se = prepared.se
      requireSeSupport(se, base.algorithm, params.kdf === 'HKDF_SHA256' ? 'derive-hkdf' : 'derive-3gpp-kdf')
      if (!isKeyDeriver(se))
        throw new M2msecError('ERR_SE_NOT_SUPPORTED', `secure environment ${se.name} cannot derive keys`)
      if (await deps.keys.get(caller.tenant, prepared.keyId)) {
        throw new M2msecError('ERR_ALREADY_EXISTS', 'a key with this id exists', { keyId: prepared.keyId })
      }
      const created = await se.deriveKey({ ref: version.ref, algorithm: base.algorithm }, params, {
        algorithm: req.target.algorithm,
        label: `${caller.tenant}/${prepared.keyId}/1`,
        exportable: req.target.exportable === true,
      })
      const labels = { ...prepared.labels, 'm2msec.derived-from': `${base.id}/${version.version}` }
      return storeNewKey(deps, caller, { ...spec, labels }, { ...prepared, labels }, created)
    },
  )
}

function deriveParams(d: DeriveRequest): DeriveParams {
  if (d.kdf === 'HKDF_SHA256') {
    checkSize('hkdf.salt', d.salt, LIMITS.kdfParamBytes)
    checkSize('hkdf.info', d.info, LIMITS.kdfParamBytes)
    return { kdf: 'HKDF_SHA256', salt: d.salt, info: d.info }
  }
  if (d.kdf === 'HMAC_SHA256') {
    if (d.data.length === 0) {
      throw new M2msecError('ERR_INVALID_ARGUMENT', 'hmac_sha256.data must not be empty', { field: 'hmac_sha256.data' })
    }
    checkSize('hmac_sha256.data', d.data, LIMITS.kdfParamBytes)
    // The 3GPP KDF of every SE is HMAC-SHA-256(base, S) over an already encoded S; plain HMAC
    // derivation hands it the caller's data as S.
    return { kdf: 'KDF_3GPP', s: d.data }
  }
  if (d.kdf !== 'KDF_3GPP') throw new M2msecError('ERR_INVALID_ARGUMENT', 'unknown kdf', { field: 'kdf' })
  if (!Number.isInteger(d.fc) || d.fc < 0 || d.fc > 0xff) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'fc is one octet (0-255)', { field: 'kdf_3gpp.fc' })
  }
  if (d.params.length > LIMITS.kdfParams) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', `at most ${LIMITS.kdfParams} parameters`, {
      field: 'kdf_3gpp.params',
    })
  }
  for (const p of d.params) checkSize('kdf_3gpp.params', p, LIMITS.kdfParamBytes)
  return { kdf: 'KDF_3GPP', s: kdf3gppInput(d.fc, [...d.params]) }
}
