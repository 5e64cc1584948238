import { loadKey, requireAdmin, requireUsable } from '../access.ts'
import { audited } from '../audit.ts'
import { publishInBackground, requireSeSupport } from '../key-spec.ts'
import { M2msecError } from '@m2msec/errors'
import type { Caller, KeyRecord } from '../model.ts'
import type { KmsDeps } from '../ports.ts'

/**
 * RotateKey: generates a new primary version in the same SE. Older versions keep decrypting
 * and verifying. Concurrent rotations on two replicas cannot both win (revision check); the
 * loser's SE material is destroyed and it retries on the new revision.
 */
export async function rotateKey(deps: KmsDeps, caller: Caller, keyId: string): Promise<KeyRecord> {
  return audited(
    deps,
    caller,
    { action: 'kms.RotateKey', resource: `key/${keyId}` },
    async () => {
      requireAdmin(caller, 'RotateKey')
      for (let attempt = 0; ; attempt++) {
        const { value: key, revision } = await loadKey(deps, caller, keyId)
        requireUsable(key)
        if (key.algorithm === 'MILENAGE') {
          throw new M2msecError('ERR_FAILED_PRECONDITION', 'MILENAGE keys cannot be rotated; import a new key', {
            keyId,
          })
        }
        const se = deps.ses.get(key.secureEnvironment)
        requireSeSupport(se, key.algorithm, 'generate')
        const version = key.primaryVersion + 1
        const created = await se.generateKey({
          algorithm: key.algorithm,
          label: `${key.tenant}/${key.id}/${version}`,
          exportable: key.exportable,
        })
        const now = deps.clock.now().toISOString()
        const next: KeyRecord = {
          ...key,
          primaryVersion: version,
          updatedAt: now,
          versions: [
            ...key.versions,
            {
              version,
              ref: created.ref,
              createdAt: now,
              ...(created.publicKey === undefined
                ? {}
                : { publicKeySpki: Buffer.from(created.publicKey).toString('base64') }),
            },
          ],
        }
        try {
          await deps.keys.update(next, revision)
        } catch (err) {
          await se.destroyKey({ ref: created.ref, algorithm: key.algorithm }).catch(() => undefined)
          if ((err as { code?: string }).code === 'ERR_REVISION_CONFLICT' && attempt < 3) continue
          throw err
        }
        publishInBackground(deps, { type: 'key.rotated', tenant: key.tenant, keyId: key.id, version })
        return next
      }
    },
    { mutating: true },
  )
}
