/**
 * Pairwise pseudonymous subjects (oneM2M identity protection, TS-0003 §6.2.4; the OpenID
 * Connect "pairwise" subject type). For an entity whose policy asks for it, the `sub` of a
 * token for a relying party (its audience) is
 *
 *   "pw-" base64url(HMAC-SHA-256(K_tenant, "m2msec-pairwise-sub" 0x00 entity-id 0x00 audience))
 *
 * with K_tenant the tenant's non-exportable KMS key `authn-pseudonym-<tenant>` (HMAC_SHA256,
 * created on first use). The same entity gets the same pseudonym from one relying party every
 * time; two relying parties cannot link their pseudonyms without the key. Entity ids never
 * start with `pw-` (see entity-ids.ts), so a pseudonym is recognised by its prefix.
 *
 * The platform's own audience (token.defaultAudience: the KMS, authz) always sees the entity
 * id: key usage policies and access-control policies name entities by id.
 */
import { isM2msecError } from '@m2msec/errors'
import type { EntityRecord, SubjectType, TenantRecord } from './model.ts'
import type { AuthnDeps } from './ports.ts'

/** The prefix of every pseudonymous subject. */
export const PSEUDONYM_PREFIX = 'pw-'
const LABEL = 'm2msec-pairwise-sub'
const CACHE_LIMIT = 10_000

/** The KMS key id of a tenant's pseudonym key. */
export function pseudonymKeyIdOf(tenantId: string): string {
  return `authn-pseudonym-${tenantId}`
}

/** The MAC input of a pseudonym: UTF-8 `m2msec-pairwise-sub` 0x00 entity-id 0x00 audience. */
export function pseudonymInput(entityId: string, audience: string): Uint8Array {
  return new Uint8Array(Buffer.from(`${LABEL}\u0000${entityId}\u0000${audience}`, 'utf8'))
}

/** True for a subject made by {@link Pseudonyms.subjectFor} (never an entity id). */
export function isPseudonym(sub: string): boolean {
  return sub.startsWith(PSEUDONYM_PREFIX)
}

/** The subject type in effect: the entity's, else the tenant's, else PUBLIC. */
export function effectiveSubjectType(tenant: TenantRecord, entity: EntityRecord): SubjectType {
  return entity.policy?.subjectType ?? tenant.policy?.subjectType ?? 'PUBLIC'
}

/** Computes (and remembers, for Introspect) pairwise subjects. */
export interface Pseudonyms {
  /** The `sub` of a token of `entity` for `audience`, following the effective policy. */
  subjectFor(tenant: TenantRecord, entity: EntityRecord, audience: string): Promise<string>
}

/**
 * @example
 * ```ts
 * const pseudonyms = createPseudonyms(deps)
 * const sub = await pseudonyms.subjectFor(tenant, entity, 'https://rp.example.com') // "pw-…"
 * ```
 */
export function createPseudonyms(deps: Pick<AuthnDeps, 'kms' | 'pseudonyms' | 'settings'>): Pseudonyms {
  // Pseudonyms are deterministic, so a bounded cache only saves KMS and KV round trips.
  const cache = new Map<string, string>()

  async function mac(tenant: TenantRecord, data: Uint8Array): Promise<Uint8Array> {
    const keyId = pseudonymKeyIdOf(tenant.id)
    try {
      return await deps.kms.mac(tenant.id, keyId, data)
    } catch (err) {
      if (!isM2msecError(err) || err.code !== 'ERR_KEY_NOT_FOUND') throw err
    }
    try {
      await deps.kms.createKey(tenant.id, {
        keyId,
        algorithm: 'HMAC_SHA256',
        exportable: false,
        purpose: 'm2msec authn pairwise subject identifiers',
        labels: { owner: 'm2msec-authn' },
        secureEnvironment: tenant.secureEnvironment,
      })
    } catch (err) {
      // Another replica created it first: the same key serves both.
      if (!isM2msecError(err) || err.code !== 'ERR_ALREADY_EXISTS') throw err
    }
    return deps.kms.mac(tenant.id, keyId, data)
  }

  return {
    async subjectFor(tenant, entity, audience) {
      if (effectiveSubjectType(tenant, entity) !== 'PAIRWISE' || audience === deps.settings.defaultAudience) {
        return entity.id
      }
      const cacheKey = `${tenant.id}\u0000${entity.id}\u0000${audience}`
      const hit = cache.get(cacheKey)
      if (hit !== undefined) return hit
      const digest = await mac(tenant, pseudonymInput(entity.id, audience))
      const pseudonym = `${PSEUDONYM_PREFIX}${Buffer.from(digest).toString('base64url')}`
      await deps.pseudonyms.remember(tenant.id, pseudonym, { entityId: entity.id, audience })
      if (cache.size >= CACHE_LIMIT) cache.clear()
      cache.set(cacheKey, pseudonym)
      return pseudonym
    },
  }
}
