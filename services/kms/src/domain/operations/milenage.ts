import { M2msecError } from '@m2msec/errors'
import type { MilenageOutput } from '../../se/api.ts'
import { isMilenageCapable } from '../../se/api.ts'
import { loadKeyForUse } from '../access.ts'
import { audited } from '../audit.ts'
import type { NewKeySpec } from '../key-spec.ts'
import { prepareNewKey, requireSeSupport, storeNewKey } from '../key-spec.ts'
import { checkLength } from '../limits.ts'
import type { Caller, KeyRecord } from '../model.ts'
import type { KmsDeps } from '../ports.ts'

/** What {@link milenage} returns: all outputs, CK/IK empty when Ks was kept or omitted. */
export interface MilenageResult extends MilenageOutput {
  /** The key holding Ks = CK || IK, when the request asked to keep it. */
  readonly ksKey?: KeyRecord
}

const EMPTY = new Uint8Array(0)

/**
 * Milenage: f1..f5* with K and OPc held in the SE. The outputs (RES, CK, IK, AK, MACs) are
 * authentication-vector material the BSF needs; K and OPc never leave the SE.
 *
 * With `ksKey` the GBA key Ks = CK || IK (TS 33.220 §4.5.2) is kept as a new HMAC_SHA256 key
 * in the MILENAGE key's SE and CK/IK are not returned: the BSF then holds only a handle to
 * derive Ks_NAF from. Its default usage policy is DERIVE for the caller (not every operation
 * of the algorithm, as for other new keys): Ks has no other use. With `omitCkIk` CK/IK are
 * simply not returned.
 */
export async function milenage(
  deps: KmsDeps,
  caller: Caller,
  req: {
    keyId: string
    rand: Uint8Array
    sqn: Uint8Array
    amf: Uint8Array
    ksKey?: Omit<NewKeySpec, 'secureEnvironment'>
    omitCkIk?: boolean
  },
): Promise<MilenageResult> {
  const keepKs = req.ksKey !== undefined
  return audited(
    deps,
    caller,
    { action: 'kms.Milenage', resource: `key/${req.keyId}`, ...(keepKs ? { details: { keepKs: true } } : {}) },
    async () => {
      checkLength('rand', req.rand, 16)
      checkLength('sqn', req.sqn, 6)
      checkLength('amf', req.amf, 2)
      if (req.ksKey !== undefined && req.ksKey.algorithm !== 'HMAC_SHA256') {
        throw new M2msecError('ERR_INVALID_ARGUMENT', 'Ks is kept as an HMAC_SHA256 key', {
          field: 'ks_key_spec.algorithm',
        })
      }
      const { key, version } = await loadKeyForUse(deps, caller, req.keyId, 'MILENAGE')
      const se = deps.ses.get(key.secureEnvironment)
      if (!isMilenageCapable(se)) {
        throw new M2msecError('ERR_SE_NOT_SUPPORTED', `secure environment ${se.name} cannot run Milenage`)
      }
      let prepared: ReturnType<typeof prepareNewKey> | undefined
      let spec: NewKeySpec | undefined
      if (req.ksKey !== undefined) {
        const usagePolicy =
          req.ksKey.usagePolicy === undefined || req.ksKey.usagePolicy.length === 0
            ? [{ principals: [caller.id], operations: ['DERIVE' as const] }]
            : req.ksKey.usagePolicy
        spec = { ...req.ksKey, usagePolicy, secureEnvironment: key.secureEnvironment }
        prepared = prepareNewKey(deps, caller, spec)
        requireSeSupport(prepared.se, 'HMAC_SHA256', 'import')
        if (await deps.keys.get(caller.tenant, prepared.keyId)) {
          throw new M2msecError('ERR_ALREADY_EXISTS', 'a key with this id exists', { keyId: prepared.keyId })
        }
      }
      const out = await se.milenage(
        { ref: version.ref, algorithm: key.algorithm },
        { rand: req.rand, sqn: req.sqn, amf: req.amf },
      )
      if (prepared === undefined || spec === undefined) {
        return req.omitCkIk === true ? { ...out, ck: EMPTY, ik: EMPTY } : out
      }
      const ks = new Uint8Array(32)
      ks.set(out.ck, 0)
      ks.set(out.ik, 16)
      let created
      try {
        created = await prepared.se.importKey({
          algorithm: 'HMAC_SHA256',
          label: `${caller.tenant}/${prepared.keyId}/1`,
          exportable: spec.exportable === true,
          material: ks,
        })
      } finally {
        ks.fill(0)
      }
      const labels = { ...prepared.labels, 'm2msec.derived-from': `${key.id}/${version.version}` }
      const ksKey = await storeNewKey(deps, caller, { ...spec, labels }, { ...prepared, labels }, created)
      return { ...out, ck: EMPTY, ik: EMPTY, ksKey }
    },
    keepKs ? { mutating: true } : {},
  )
}
