import { M2msecError } from '@m2msec/errors'
import { loadKey, requireAdmin } from '../access.ts'
import { audited } from '../audit.ts'
import { publishInBackground } from '../key-spec.ts'
import type { Caller, KeyRecord, KeyState } from '../model.ts'
import type { KmsDeps } from '../ports.ts'

/** Shortest and default waiting time before scheduled destruction (Cloud KMS style). */
export const MIN_DESTRUCTION_DELAY_MS = 60_000
export const DEFAULT_DESTRUCTION_DELAY_MS = 24 * 3600_000

/**
 * SetKeyState: ENABLED <-> DISABLED, either -> DESTRUCTION_SCHEDULED (cancellable by ENABLED or
 * DISABLED until `destroyAfter`). Destruction itself is done by `destroyDueKeys`. A destroyed key
 * cannot change state again.
 */
export async function setKeyState(
  deps: KmsDeps,
  caller: Caller,
  keyId: string,
  state: Exclude<KeyState, 'DESTROYED'>,
  destroyAfter?: Date,
): Promise<KeyRecord> {
  return audited(
    deps,
    caller,
    { action: 'kms.SetKeyState', resource: `key/${keyId}`, details: { state } },
    async () => {
      requireAdmin(caller, 'SetKeyState')
      if (!['ENABLED', 'DISABLED', 'DESTRUCTION_SCHEDULED'].includes(state)) {
        throw new M2msecError('ERR_INVALID_ARGUMENT', 'state must be ENABLED, DISABLED or DESTRUCTION_SCHEDULED', {
          field: 'state',
        })
      }
      const now = deps.clock.now()
      let when: Date | undefined
      if (state === 'DESTRUCTION_SCHEDULED') {
        when = destroyAfter ?? new Date(now.getTime() + DEFAULT_DESTRUCTION_DELAY_MS)
        if (when.getTime() < now.getTime() + MIN_DESTRUCTION_DELAY_MS) {
          throw new M2msecError('ERR_INVALID_ARGUMENT', 'destroy_after must be at least one minute in the future', {
            field: 'destroy_after',
          })
        }
      } else if (destroyAfter !== undefined) {
        throw new M2msecError('ERR_INVALID_ARGUMENT', 'destroy_after applies only to DESTRUCTION_SCHEDULED', {
          field: 'destroy_after',
        })
      }
      const { value: key, revision } = await loadKey(deps, caller, keyId)
      if (key.state === 'DESTROYED') {
        throw new M2msecError('ERR_KEY_DESTROYED', 'key is destroyed', { keyId })
      }
      const { destroyAfter: _dropped, ...rest } = key
      const next: KeyRecord = {
        ...rest,
        state,
        updatedAt: now.toISOString(),
        ...(when === undefined ? {} : { destroyAfter: when.toISOString() }),
      }
      await deps.keys.update(next, revision)
      publishInBackground(deps, { type: 'key.state-changed', tenant: key.tenant, keyId: key.id, state })
      return next
    },
    { mutating: true },
  )
}

/**
 * Destroys the SE material of every key of `tenant` whose scheduled destruction is due and
 * marks it DESTROYED. Called periodically by the service; idempotent.
 */
export async function destroyDueKey(deps: KmsDeps, tenant: string, keyId: string): Promise<boolean> {
  const found = await deps.keys.get(tenant, keyId)
  if (found === undefined) return false
  const key = found.value
  if (key.state !== 'DESTRUCTION_SCHEDULED' || key.destroyAfter === undefined) return false
  if (new Date(key.destroyAfter).getTime() > deps.clock.now().getTime()) return false
  const se = deps.ses.get(key.secureEnvironment)
  for (const v of key.versions) {
    if (v.destroyed !== true) await se.destroyKey({ ref: v.ref, algorithm: key.algorithm })
  }
  const { destroyAfter: _dropped, ...rest } = key
  const next: KeyRecord = {
    ...rest,
    state: 'DESTROYED',
    updatedAt: deps.clock.now().toISOString(),
    versions: key.versions.map((v) => ({ version: v.version, createdAt: v.createdAt, ref: '', destroyed: true })),
  }
  await deps.keys.update(next, found.revision)
  await deps.audit.append({
    tenant,
    principal: 'system',
    action: 'kms.DestroyKey',
    resource: `key/${keyId}`,
    result: 'ok',
  })
  publishInBackground(deps, { type: 'key.state-changed', tenant, keyId, state: 'DESTROYED' })
  return true
}
