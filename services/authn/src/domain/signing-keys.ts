/**
 * The tenants' token signing keys: JWS signing through the KMS (the private key never leaves
 * it) and the public keys to publish. Key metadata is cached for `signingKeyCacheMs` and
 * dropped on rotation (`invalidate`, also driven by the rotation event of other replicas).
 */
import { base64url, type JWK } from 'jose'
import { M2msecError } from '@m2msec/errors'
import type { TenantRecord } from './model.ts'
import type { AuthnDeps, KmsKeyInfo } from './ports.ts'
import { jwsSigningInput, publishedJwks, signingKid } from './tokens.ts'

/** Token signing with the tenants’ KMS keys, and their public keys. */
export interface SigningKeys {
  /** Signs a JWT (header gets `alg` ES256 and `kid`) with the tenant's key; returns the compact JWS. */
  sign(
    tenant: TenantRecord,
    header: Readonly<Record<string, unknown>>,
    payload: Readonly<Record<string, unknown>>,
  ): Promise<string>
  /** The tenant's publishable public keys (see publishedJwks). */
  publicJwks(tenant: TenantRecord): Promise<JWK[]>
  /** Forgets the cached metadata of a tenant's key. */
  invalidate(tenantId: string): void
}

/** SigningKeys over the KMS port, with a per-tenant metadata cache. */
export function createSigningKeys(deps: Pick<AuthnDeps, 'kms' | 'clock' | 'settings'>): SigningKeys {
  const cache = new Map<string, { at: number; info: Promise<KmsKeyInfo> }>()

  function load(tenant: TenantRecord, fresh = false): Promise<KmsKeyInfo> {
    const now = deps.clock.now().getTime()
    const hit = cache.get(tenant.id)
    if (!fresh && hit !== undefined && now - hit.at < deps.settings.signingKeyCacheMs) return hit.info
    const info = deps.kms.getKey(tenant.id, tenant.signingKeyId)
    const entry = { at: now, info }
    cache.set(tenant.id, entry)
    info.catch(() => {
      if (cache.get(tenant.id) === entry) cache.delete(tenant.id)
    })
    return info
  }

  return {
    async sign(tenant, header, payload) {
      let info = await load(tenant)
      // The KMS signs with its primary version; if the cached primary is stale (a rotation
      // on another replica), the kid would be wrong: reload and sign again.
      for (let attempt = 0; attempt < 3; attempt++) {
        const input = jwsSigningInput(
          { ...header, alg: 'ES256', kid: signingKid(info.id, info.primaryVersion) },
          payload,
        )
        const { signature, version } = await deps.kms.sign(tenant.id, info.id, new TextEncoder().encode(input))
        if (version === info.primaryVersion) return `${input}.${base64url.encode(signature)}`
        info = await load(tenant, true)
      }
      throw new M2msecError('ERR_UNAVAILABLE', 'signing key changed during signing; retry')
    },
    async publicJwks(tenant) {
      const retainSec = deps.settings.tokenLifetimeSec + deps.settings.clockSkewSec
      return publishedJwks(await load(tenant), deps.clock.now(), retainSec)
    },
    invalidate(tenantId) {
      cache.delete(tenantId)
    },
  }
}
