import { loadVisibleKey } from '../access.ts'
import { audited } from '../audit.ts'
import type { Caller, KeyRecord } from '../model.ts'
import type { KmsDeps } from '../ports.ts'

/** GetKey: metadata and public keys only. Visible to admins and to principals the policy names. */
export async function getKey(deps: KmsDeps, caller: Caller, keyId: string): Promise<KeyRecord> {
  return audited(deps, caller, { action: 'kms.GetKey', resource: `key/${keyId}` }, async () => {
    return (await loadVisibleKey(deps, caller, keyId)).value
  })
}
