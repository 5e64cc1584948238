import { M2msecError } from '@m2msec/errors'
import { isKeyWrapper } from '../../se/api.ts'
import { loadKeyForUse, requireAdmin } from '../access.ts'
import { audited } from '../audit.ts'
import type { NewKeySpec } from '../key-spec.ts'
import { prepareNewKey, requireSeSupport, storeNewKey, validateAlgorithm } from '../key-spec.ts'
import { LIMITS, checkSize } from '../limits.ts'
import type { Caller, KeyRecord } from '../model.ts'
import type { KmsDeps } from '../ports.ts'

/**
 * Creates a key from wrapped material (a JWE for an AES_256_GCM key with A256KW, or for an
 * EC_P256_ECDH key with ECDH-ES+A256KW). The material is opened inside the SE of the
 * unwrapping key, and the new key lives there too. Shared by ImportKey (admin: bring your
 * own key) and UnwrapKey (any caller with UNWRAP on the unwrapping key).
 */
async function createFromWrapped(
  deps: KmsDeps,
  caller: Caller,
  req: { jwe: string; unwrappingKeyId: string; target: Omit<NewKeySpec, 'secureEnvironment'> },
): Promise<KeyRecord> {
  validateAlgorithm(req.target.algorithm)
  checkSize('wrapped_key', req.jwe, LIMITS.wrappedKeyBytes)
  const { key: wrapping, version } = await loadKeyForUse(deps, caller, req.unwrappingKeyId, 'UNWRAP')
  const spec: NewKeySpec = { ...req.target, secureEnvironment: wrapping.secureEnvironment }
  const prepared = prepareNewKey(deps, caller, spec)
  const se = prepared.se
  requireSeSupport(se, req.target.algorithm, 'unwrap')
  if (!isKeyWrapper(se))
    throw new M2msecError('ERR_SE_NOT_SUPPORTED', `secure environment ${se.name} cannot unwrap keys`)
  if (await deps.keys.get(caller.tenant, prepared.keyId)) {
    throw new M2msecError('ERR_ALREADY_EXISTS', 'a key with this id exists', { keyId: prepared.keyId })
  }
  const created = await se.unwrapKey(
    req.jwe,
    { ref: version.ref, algorithm: wrapping.algorithm },
    {
      algorithm: req.target.algorithm,
      label: `${caller.tenant}/${prepared.keyId}/1`,
      exportable: req.target.exportable === true,
    },
  )
  return storeNewKey(deps, caller, spec, prepared, created)
}

/** ImportKey: bring your own key, wrapped for a KMS key. Admin only. */
export async function importKey(
  deps: KmsDeps,
  caller: Caller,
  req: { jwe: string; unwrappingKeyId: string; target: Omit<NewKeySpec, 'secureEnvironment'> },
): Promise<KeyRecord> {
  return audited(
    deps,
    caller,
    {
      action: 'kms.ImportKey',
      resource: `key/${req.target.keyId ?? ''}`,
      details: { algorithm: req.target.algorithm },
    },
    async () => {
      requireAdmin(caller, 'ImportKey')
      return createFromWrapped(deps, caller, req)
    },
    { mutating: true },
  )
}

/** UnwrapKey: open a key someone wrapped for one of our keys and keep it as a new key handle. */
export async function unwrapKey(
  deps: KmsDeps,
  caller: Caller,
  req: { jwe: string; unwrappingKeyId: string; target: Omit<NewKeySpec, 'secureEnvironment'> },
): Promise<KeyRecord> {
  return audited(
    deps,
    caller,
    { action: 'kms.UnwrapKey', resource: `key/${req.unwrappingKeyId}`, details: { algorithm: req.target.algorithm } },
    () => createFromWrapped(deps, caller, req),
    { mutating: true },
  )
}
