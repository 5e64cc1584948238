/** Tenant management (platform operators) and the tenant's trust anchors (tenant admins). */
import { M2msecError, isM2msecError } from '@m2msec/errors'
import { loadCallerTenant, requireAdmin, requireOperator } from '../access.ts'
import { audited, publishInBackground } from '../audit.ts'
import { parseTrustAnchors } from '../certificates.ts'
import { LIMITS, TENANT_ID_PATTERN, type Caller, type TenantRecord } from '../model.ts'
import { afterOf, pageSize, tokenOf } from '../paging.ts'
import type { AuthnDeps, KmsKeyInfo } from '../ports.ts'

/** CreateTenant input. */
export interface CreateTenantInput {
  readonly tenantId: string
  readonly displayName: string
  readonly trustAnchorsPem: readonly string[]
  readonly secureEnvironment: string
}

// The same prefix is parsed by @m2msec/runtime authnSigningKeyTenant (other services' token check).
const SIGNING_KEY_PREFIX = 'authn-signing-'

/**
 * The KMS key id of a tenant's signing key: fixed, so a retried CreateTenant finds it, and
 * naming the tenant, so kids are unique across tenants in the platform JWKS.
 */
export function signingKeyIdOf(tenantId: string): string {
  return `${SIGNING_KEY_PREFIX}${tenantId}`
}

/** The tenant a signing key id belongs to (the inverse of {@link signingKeyIdOf}). */
export function tenantOfSigningKey(keyId: string): string | undefined {
  return keyId.startsWith(SIGNING_KEY_PREFIX) ? keyId.slice(SIGNING_KEY_PREFIX.length) : undefined
}

function validateDisplayName(name: string): void {
  if (Buffer.byteLength(name) > LIMITS.displayNameBytes) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'display_name is longer than 256 bytes', { field: 'display_name' })
  }
}

/**
 * CreateTenant: checks id and trust anchors, creates (or, after an interrupted attempt,
 * finds) the tenant's EC_P256_SIGN signing key in the KMS, then stores the tenant.
 */
export async function createTenant(deps: AuthnDeps, caller: Caller, input: CreateTenantInput): Promise<TenantRecord> {
  requireOperator(deps, caller, 'CreateTenant')
  if (!TENANT_ID_PATTERN.test(input.tenantId)) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'tenant id must be 1-63 characters of a-z 0-9 - (no leading -)', {
      field: 'tenant_id',
    })
  }
  validateDisplayName(input.displayName)
  const trustAnchors = parseTrustAnchors(input.trustAnchorsPem)
  return audited(
    deps,
    caller,
    { action: 'authn.CreateTenant', resource: `tenant/${input.tenantId}` },
    async () => {
      if ((await deps.tenants.get(input.tenantId)) !== undefined) {
        throw new M2msecError('ERR_ALREADY_EXISTS', 'tenant exists', { tenant: input.tenantId })
      }
      const keyId = signingKeyIdOf(input.tenantId)
      let key: KmsKeyInfo
      try {
        key = await deps.kms.createKey(input.tenantId, {
          keyId,
          algorithm: 'EC_P256_SIGN',
          exportable: false,
          purpose: 'm2msec authn access token signing',
          labels: { owner: 'm2msec-authn' },
          secureEnvironment: input.secureEnvironment,
        })
      } catch (err) {
        if (!isM2msecError(err) || err.code !== 'ERR_ALREADY_EXISTS') throw err
        key = await deps.kms.getKey(input.tenantId, keyId)
      }
      if (key.algorithm !== 'EC_P256_SIGN') {
        throw new M2msecError('ERR_FAILED_PRECONDITION', `KMS key ${keyId} exists and is not an EC_P256_SIGN key`)
      }
      const now = deps.clock.now().toISOString()
      const record: TenantRecord = {
        id: input.tenantId,
        displayName: input.displayName,
        state: 'ENABLED',
        trustAnchors,
        signingKeyId: key.id,
        secureEnvironment: input.secureEnvironment,
        createdAt: now,
        updatedAt: now,
      }
      await deps.tenants.create(record)
      publishInBackground(deps, { type: 'tenant.created', tenant: record.id })
      return record
    },
    { mutating: true },
  )
}

/** ListTenants (operator): tenants ordered by id, paged. */
export async function listTenants(
  deps: AuthnDeps,
  caller: Caller,
  req: { pageSize: number; pageToken: string },
): Promise<{ tenants: TenantRecord[]; nextPageToken?: string }> {
  requireOperator(deps, caller, 'ListTenants')
  const page = await deps.tenants.list({ limit: pageSize(req.pageSize), ...afterOf(req.pageToken) })
  const next = tokenOf(page.next)
  return next === undefined ? { tenants: page.items } : { tenants: page.items, nextPageToken: next }
}

/** Applies `change` to the current tenant with a revision check, re-reading on a conflict. */
export async function updateTenant(
  deps: AuthnDeps,
  tenantId: string,
  change: (t: TenantRecord) => TenantRecord,
): Promise<TenantRecord> {
  for (let attempt = 0; ; attempt++) {
    const found = await deps.tenants.get(tenantId)
    if (found === undefined) throw new M2msecError('ERR_NOT_FOUND', 'tenant not found')
    const next = { ...change(found.value), updatedAt: deps.clock.now().toISOString() }
    try {
      await deps.tenants.update(next, found.revision)
      return next
    } catch (err) {
      if (!isM2msecError(err) || err.code !== 'ERR_REVISION_CONFLICT' || attempt >= 5) throw err
    }
  }
}

/** DisableTenant: no more tokens for the tenant; its tokens introspect as inactive. */
export async function disableTenant(deps: AuthnDeps, caller: Caller, tenantId: string): Promise<TenantRecord> {
  requireOperator(deps, caller, 'DisableTenant')
  return audited(
    deps,
    caller,
    { action: 'authn.DisableTenant', resource: `tenant/${tenantId}` },
    async () => {
      if (!TENANT_ID_PATTERN.test(tenantId)) throw new M2msecError('ERR_NOT_FOUND', 'tenant not found')
      const t = await updateTenant(deps, tenantId, (cur) => ({ ...cur, state: 'DISABLED' }))
      publishInBackground(deps, { type: 'tenant.disabled', tenant: tenantId })
      return t
    },
    { mutating: true },
  )
}

/** SetTrustAnchors: replaces the caller's tenant's trust anchors. */
export async function setTrustAnchors(deps: AuthnDeps, caller: Caller, pems: readonly string[]): Promise<TenantRecord> {
  requireAdmin(caller, 'SetTrustAnchors')
  const trustAnchors = parseTrustAnchors(pems)
  await loadCallerTenant(deps, caller)
  return audited(
    deps,
    caller,
    { action: 'authn.SetTrustAnchors', resource: `tenant/${caller.tenant}`, details: { count: trustAnchors.length } },
    () => updateTenant(deps, caller.tenant, (cur) => ({ ...cur, trustAnchors })),
    { mutating: true },
  )
}

/**
 * AddTrustAnchors (tenant admin): adds CA certificates to the tenant's trust anchors (e.g. the
 * root CA of the tenant's PKI in the bootstrap service); anchors already present are kept once.
 * ERR_INVALID_ARGUMENT when one does not parse or the total would exceed 16.
 */
export async function addTrustAnchors(deps: AuthnDeps, caller: Caller, pems: readonly string[]): Promise<TenantRecord> {
  requireAdmin(caller, 'AddTrustAnchors')
  const added = parseTrustAnchors(pems)
  await loadCallerTenant(deps, caller)
  return audited(
    deps,
    caller,
    { action: 'authn.AddTrustAnchors', resource: `tenant/${caller.tenant}`, details: { count: added.length } },
    () =>
      updateTenant(deps, caller.tenant, (cur) => {
        const fresh = added.filter((a) => !cur.trustAnchors.some((t) => t.sha256 === a.sha256))
        const trustAnchors = [...cur.trustAnchors, ...fresh]
        if (trustAnchors.length > LIMITS.trustAnchors) {
          throw new M2msecError('ERR_INVALID_ARGUMENT', `at most ${LIMITS.trustAnchors} trust anchors`, {
            field: 'trust_anchors_pem',
          })
        }
        return { ...cur, trustAnchors }
      }),
    { mutating: true },
  )
}
