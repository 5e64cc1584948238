/**
 * The authn model: tenants (service providers) with their trust anchors and token signing
 * key, entities (AEs, CSEs, devices, gateways) and their credentials. Records are what the
 * stores keep; they never hold key material (symmetric keys live in the KMS, certificates
 * are public).
 */

/** Lifecycle state of a tenant. */
export type TenantState = 'ENABLED' | 'DISABLED'

/** A CA certificate credentials of the tenant must chain to. */
export interface TrustAnchorRecord {
  readonly pem: string
  /** RFC 4514 subject. */
  readonly subject: string
  /** base64url SHA-256 of the DER. */
  readonly sha256: string
  readonly notAfter: string
}

/** A tenant as stored. */
export interface TenantRecord {
  readonly id: string
  readonly displayName: string
  readonly state: TenantState
  readonly trustAnchors: readonly TrustAnchorRecord[]
  /** KMS key id of the token signing key (EC_P256_SIGN) in the tenant's KMS scope. */
  readonly signingKeyId: string
  /** KMS secure environment of the tenant's keys; '' = the KMS default. */
  readonly secureEnvironment: string
  readonly createdAt: string
  readonly updatedAt: string
  /** Authentication policy; absent = defaults. */
  readonly policy?: AuthPolicyRecord
}

/** How a token's `sub` is formed: the entity id, or a pseudonym per relying party. */
export type SubjectType = 'PUBLIC' | 'PAIRWISE'

/** An authentication policy of a tenant or an entity; absent fields inherit. */
export interface AuthPolicyRecord {
  readonly subjectType?: SubjectType
  readonly sessionKeyLifetimeSec?: number
}

/** Kinds of entity (see entity-ids.ts for their id forms). */
export const ENTITY_KINDS = ['AE', 'CSE', 'DEVICE', 'GATEWAY'] as const
/** A kind of entity. */
export type EntityKind = (typeof ENTITY_KINDS)[number]
/** Lifecycle state of an entity. */
export type EntityState = 'ENABLED' | 'DISABLED'
/**
 * Kinds of credential. GBA covers a subscription (an IMPI bound to the entity, no key) and
 * the bootstrapping sessions authn registers for it (id = B-TID, key = Km in the KMS).
 */
export type CredentialType = 'SYMMETRIC' | 'CERTIFICATE' | 'GBA'
/** Lifecycle state of a credential. */
export type CredentialState = 'ACTIVE' | 'REVOKED'

/** A credential as stored (public data and KMS references only). */
export interface CredentialRecord {
  /** Unique within the entity: the assertion `kid`. */
  readonly id: string
  readonly type: CredentialType
  readonly state: CredentialState
  readonly notBefore: string
  /** Absent = no end. */
  readonly notAfter?: string
  /** SYMMETRIC: the HMAC_SHA256 key in the tenant's KMS scope. */
  readonly kmsKeyId?: string
  /** SYMMETRIC: true when authn generated the key. */
  readonly generated?: boolean
  /** CERTIFICATE: PEM chain, leaf first. */
  readonly certificateChainPem?: string
  readonly certificateSubject?: string
  /** CERTIFICATE: base64url SHA-256 of the leaf DER (`x5t#S256`). */
  readonly certificateSha256?: string
  /** GBA: the subscriber's IMPI. */
  readonly gbaImpi?: string
  /**
   * GBA session (id = B-TID, `kmsKeyId` = Km): the subscription credential it belongs to.
   * Absent on the subscription itself.
   */
  readonly gbaSubscriptionId?: string
  readonly createdAt: string
  readonly revokedAt?: string
}

/** An entity as stored, with its credentials. */
export interface EntityRecord {
  readonly tenant: string
  readonly id: string
  readonly kind: EntityKind
  readonly state: EntityState
  readonly roles: readonly string[]
  readonly labels: Readonly<Record<string, string>>
  readonly credentials: readonly CredentialRecord[]
  readonly createdAt: string
  readonly updatedAt: string
  /** Authentication policy; absent fields inherit the tenant's. */
  readonly policy?: AuthPolicyRecord
}

/** The authenticated caller as the domain sees it (structurally a runtime Principal). */
export interface Caller {
  readonly tenant: string
  readonly id: string
  readonly roles: readonly string[]
}

/** Manages tenants (only in the platform tenant). */
export const OPERATOR_ROLE = 'operator'
/** Manages one tenant's entities, credentials, signing key and tokens. */
export const ADMIN_ROLE = 'admin'
/** Platform services acting for a tenant (see platformServiceAuthenticator). */
export const SERVICE_ROLE = 'service'

/** Tenant ids: DNS-label-like, so never the platform tenant `_platform`. */
export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/
/** Credential ids (assertion `kid`) and KMS key ids. */
export const CREDENTIAL_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/
/** Role names. */
export const ROLE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/

/** Levels of assurance (1-4) of the credential types. */
export const LOA: Readonly<Record<CredentialType, number>> = { SYMMETRIC: 2, CERTIFICATE: 3, GBA: 2 }

/** True for a GBA bootstrapping session credential (id = B-TID, key = Km). */
export function isGbaSession(c: CredentialRecord): boolean {
  return c.type === 'GBA' && c.gbaSubscriptionId !== undefined
}

/** B-TIDs (TS 33.220 §4.5.2): base64(RAND)@BSF server name. */
export const BTID_PATTERN = /^[A-Za-z0-9+/]{1,64}={0,2}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})$/

/** IMPIs as authn accepts them: 1-256 printable ASCII characters without spaces. */
export const IMPI_PATTERN = /^[\x21-\x7e]{1,256}$/

/** Size limits of the registry and the token endpoint. */
export const LIMITS = {
  trustAnchors: 16,
  trustAnchorPemBytes: 8 * 1024,
  credentialsPerEntity: 16,
  chainPemBytes: 16 * 1024,
  chainIntermediates: 4,
  roles: 16,
  labels: 32,
  labelBytes: 256,
  displayNameBytes: 256,
  entityIdChars: 256,
  jwkBytes: 2048,
  audienceChars: 256,
  mafTargets: 64,
  mafLabels: 32,
  sessionGrantees: 8,
  /** GBA session credentials kept per entity (expired ones are dropped first, then the oldest). */
  gbaSessions: 8,
} as const

/** A MAF client registration (TS-0003 §8.8.2.3): one per entity. */
export interface MafClientRecord {
  readonly tenant: string
  /** The registered entity id (MAF Client ID). */
  readonly clientId: string
  readonly registrationId: string
  readonly expiresAt: string
  readonly labels: readonly string[]
  readonly adminFqdn: string
  readonly createdAt: string
  readonly updatedAt: string
}

/** Security usage identifiers of MAF-distributed keys (TS-0004 m2m:suid 32-35). */
export const MAF_SUIDS = [32, 33, 34, 35] as const

/** A MAF key registration (TS-0003 §8.8.2.7). The key lives in the KMS. */
export interface MafKeyRecord {
  readonly tenant: string
  /** hexBinary of 16 random bytes. */
  readonly relativeKeyId: string
  readonly kmsKeyId: string
  readonly sourceClientId: string
  readonly suid: number
  readonly targetIds: readonly string[]
  readonly expiresAt: string
  readonly labels: readonly string[]
  readonly adminFqdn: string
  readonly createdAt: string
  readonly updatedAt: string
}

/** A session key derived from a symmetric credential (its handle is a KMS key). */
export interface SessionKeyRecord {
  readonly tenant: string
  readonly sessionId: string
  readonly entityId: string
  readonly credentialId: string
  readonly kmsKeyId: string
  readonly expiresAt: string
  readonly createdAt: string
}
