import { M2msecError } from '@m2msec/errors'
import { requireAdmin } from '../access.ts'
import { audited } from '../audit.ts'
import type { NewKeySpec } from '../key-spec.ts'
import { prepareNewKey, requireSeSupport, storeNewKey, validateAlgorithm } from '../key-spec.ts'
import type { Caller, KeyRecord } from '../model.ts'
import type { KmsDeps } from '../ports.ts'

/** CreateKey: generates version 1 inside the chosen secure environment. Admin only. */
export async function createKey(deps: KmsDeps, caller: Caller, spec: NewKeySpec): Promise<KeyRecord> {
  return audited(
    deps,
    caller,
    { action: 'kms.CreateKey', resource: `key/${spec.keyId ?? ''}`, details: { algorithm: spec.algorithm } },
    async () => {
      requireAdmin(caller, 'CreateKey')
      validateAlgorithm(spec.algorithm)
      if (spec.algorithm === 'MILENAGE') {
        throw new M2msecError(
          'ERR_INVALID_ARGUMENT',
          'MILENAGE keys are imported (K and OPc come from SIM personalisation), not generated',
          { field: 'algorithm' },
        )
      }
      const prepared = prepareNewKey(deps, caller, spec)
      requireSeSupport(prepared.se, spec.algorithm, 'generate')
      if (spec.keyId !== undefined && spec.keyId !== '' && (await deps.keys.get(caller.tenant, prepared.keyId))) {
        throw new M2msecError('ERR_ALREADY_EXISTS', 'a key with this id exists', { keyId: prepared.keyId })
      }
      const created = await prepared.se.generateKey({
        algorithm: spec.algorithm,
        label: `${caller.tenant}/${prepared.keyId}/1`,
        exportable: spec.exportable === true,
      })
      return storeNewKey(deps, caller, spec, prepared, created)
    },
    { mutating: true },
  )
}
