/** Entity registry of a tenant: register, read, list, disable. */
import { M2msecError, isM2msecError } from '@m2msec/errors'
import { entityNotFound, isAdmin, loadEnabledCallerTenant, loadEntity, requireAdmin } from '../access.ts'
import { audited, publishInBackground } from '../audit.ts'
import { validateEntityId } from '../entity-ids.ts'
import { ENTITY_KINDS, LIMITS, ROLE_PATTERN, type Caller, type EntityKind, type EntityRecord } from '../model.ts'
import { afterOf, pageSize, tokenOf } from '../paging.ts'
import type { AuthnDeps } from '../ports.ts'

/** RegisterEntity input. */
export interface RegisterEntityInput {
  readonly entityId: string
  readonly kind: EntityKind | undefined
  readonly roles: readonly string[]
  readonly labels: Readonly<Record<string, string>>
}

function validateRoles(roles: readonly string[]): void {
  if (
    roles.length > LIMITS.roles ||
    new Set(roles).size !== roles.length ||
    !roles.every((r) => ROLE_PATTERN.test(r))
  ) {
    throw new M2msecError(
      'ERR_INVALID_ARGUMENT',
      'roles: at most 16 distinct names of 1-64 characters from A-Z a-z 0-9 . _ : -',
      { field: 'roles' },
    )
  }
}

function validateLabels(labels: Readonly<Record<string, string>>): void {
  const entries = Object.entries(labels)
  const ok =
    entries.length <= LIMITS.labels &&
    entries.every(([k, v]) => k.length > 0 && Buffer.byteLength(k) + Buffer.byteLength(v) <= LIMITS.labelBytes)
  if (!ok) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'labels: at most 32, non-empty names, name plus value ≤ 256 bytes', {
      field: 'labels',
    })
  }
}

/** RegisterEntity (tenant admin): checks the id form of the kind, roles and labels. */
export async function registerEntity(
  deps: AuthnDeps,
  caller: Caller,
  input: RegisterEntityInput,
): Promise<EntityRecord> {
  requireAdmin(caller, 'RegisterEntity')
  const kind = input.kind
  if (kind === undefined || !ENTITY_KINDS.includes(kind)) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'kind is required', { field: 'kind' })
  }
  validateEntityId(kind, input.entityId)
  validateRoles(input.roles)
  validateLabels(input.labels)
  return audited(
    deps,
    caller,
    { action: 'authn.RegisterEntity', resource: `entity/${input.entityId}`, details: { kind } },
    async () => {
      await loadEnabledCallerTenant(deps, caller)
      const now = deps.clock.now().toISOString()
      const record: EntityRecord = {
        tenant: caller.tenant,
        id: input.entityId,
        kind,
        state: 'ENABLED',
        roles: [...input.roles],
        labels: { ...input.labels },
        credentials: [],
        createdAt: now,
        updatedAt: now,
      }
      await deps.entities.create(record)
      publishInBackground(deps, { type: 'entity.registered', tenant: caller.tenant, entityId: record.id })
      return record
    },
    { mutating: true },
  )
}

/** GetEntity: tenant admins see every entity; an entity sees itself; others get ERR_NOT_FOUND. */
export async function getEntity(deps: AuthnDeps, caller: Caller, entityId: string): Promise<EntityRecord> {
  if (!isAdmin(caller) && caller.id !== entityId) throw entityNotFound()
  return (await loadEntity(deps, caller, entityId)).value
}

/** ListEntities (tenant admin): the tenant’s entities ordered by id, paged. */
export async function listEntities(
  deps: AuthnDeps,
  caller: Caller,
  req: { pageSize: number; pageToken: string },
): Promise<{ entities: EntityRecord[]; nextPageToken?: string }> {
  requireAdmin(caller, 'ListEntities')
  const page = await deps.entities.list(caller.tenant, { limit: pageSize(req.pageSize), ...afterOf(req.pageToken) })
  const next = tokenOf(page.next)
  return next === undefined ? { entities: page.items } : { entities: page.items, nextPageToken: next }
}

/**
 * Applies `change` to the current entity with a revision check, re-reading on a conflict
 * (another replica wrote in between).
 */
export async function updateEntity(
  deps: AuthnDeps,
  caller: Caller,
  entityId: string,
  change: (e: EntityRecord) => EntityRecord,
): Promise<EntityRecord> {
  for (let attempt = 0; ; attempt++) {
    const found = await loadEntity(deps, caller, entityId)
    const next = { ...change(found.value), updatedAt: deps.clock.now().toISOString() }
    try {
      await deps.entities.update(next, found.revision)
      return next
    } catch (err) {
      if (!isM2msecError(err) || err.code !== 'ERR_REVISION_CONFLICT' || attempt >= 5) throw err
    }
  }
}

/** DisableEntity (tenant admin): no more tokens; its tokens introspect inactive. */
export async function disableEntity(deps: AuthnDeps, caller: Caller, entityId: string): Promise<EntityRecord> {
  requireAdmin(caller, 'DisableEntity')
  return audited(
    deps,
    caller,
    { action: 'authn.DisableEntity', resource: `entity/${entityId}` },
    async () => {
      const e = await updateEntity(deps, caller, entityId, (cur) => ({ ...cur, state: 'DISABLED' }))
      publishInBackground(deps, { type: 'entity.disabled', tenant: caller.tenant, entityId })
      return e
    },
    { mutating: true },
  )
}
