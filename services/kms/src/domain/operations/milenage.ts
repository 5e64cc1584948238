import { M2msecError } from '@m2msec/errors'
import type { MilenageOutput } from '../../se/api.ts'
import { isMilenageCapable } from '../../se/api.ts'
import { loadKeyForUse } from '../access.ts'
import { audited } from '../audit.ts'
import { checkLength } from '../limits.ts'
import type { Caller } from '../model.ts'
import type { KmsDeps } from '../ports.ts'

/**
 * Milenage: f1..f5* with K and OPc held in the SE. The outputs (RES, CK, IK, AK, MACs) are
 * authentication-vector material the BSF needs; K and OPc never leave the SE.
 */
export async function milenage(
  deps: KmsDeps,
  caller: Caller,
  req: { keyId: string; rand: Uint8Array; sqn: Uint8Array; amf: Uint8Array },
): Promise<MilenageOutput> {
  return audited(deps, caller, { action: 'kms.Milenage', resource: `key/${req.keyId}` }, async () => {
    checkLength('rand', req.rand, 16)
    checkLength('sqn', req.sqn, 6)
    checkLength('amf', req.amf, 2)
    const { key, version } = await loadKeyForUse(deps, caller, req.keyId, 'MILENAGE')
    const se = deps.ses.get(key.secureEnvironment)
    if (!isMilenageCapable(se)) {
      throw new M2msecError('ERR_SE_NOT_SUPPORTED', `secure environment ${se.name} cannot run Milenage`)
    }
    return se.milenage({ ref: version.ref, algorithm: key.algorithm }, { rand: req.rand, sqn: req.sqn, amf: req.amf })
  })
}
