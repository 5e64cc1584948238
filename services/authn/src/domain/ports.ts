/**
 * The ports the authn domain needs. Adapters live in `store/`, `events/` and `kms/`; unit
 * tests use the in-memory fakes in `test/unit/fakes.ts`.
 */
import type { X509Certificate } from '@peculiar/x509'
import type { Caller, EntityRecord, MafClientRecord, MafKeyRecord, SessionKeyRecord, TenantRecord } from './model.ts'

/** A value with the store revision it was read at (for compare-and-set updates). */
export interface Versioned<T> {
  readonly value: T
  readonly revision: number
}

/** A page of a listing; `next` is set when more items follow. */
export interface Page<T> {
  readonly items: T[]
  readonly next?: string
}

/**
 * Tenant records. `get` returns undefined for an unknown id. `create` throws
 * ERR_ALREADY_EXISTS when the id is taken; `update` throws ERR_REVISION_CONFLICT when
 * `revision` is stale. `list` orders by id. Store failures throw ERR_UNAVAILABLE.
 */
export interface TenantStore {
  get(id: string): Promise<Versioned<TenantRecord> | undefined>
  create(tenant: TenantRecord): Promise<number>
  update(tenant: TenantRecord, revision: number): Promise<number>
  list(page: { limit: number; after?: string }): Promise<Page<TenantRecord>>
}

/**
 * Entity records, scoped by tenant: `get` never returns another tenant's entity. Same error
 * contract as TenantStore. Reads are current (no cache), so a disabled entity is refused by
 * every replica once the write returned.
 */
export interface EntityStore {
  get(tenant: string, id: string): Promise<Versioned<EntityRecord> | undefined>
  create(entity: EntityRecord): Promise<number>
  update(entity: EntityRecord, revision: number): Promise<number>
  list(tenant: string, page: { limit: number; after?: string }): Promise<Page<EntityRecord>>
}

/**
 * Single use of assertion ids across all replicas. `claim` resolves true for the first use of
 * (tenant, entity, jti) and false for every later one, until the record expires (after at
 * least the longest assertion lifetime plus twice the clock skew).
 */
export interface JtiStore {
  claim(tenant: string, entityId: string, jti: string): Promise<boolean>
}

/** A revoked access token. `exp` is its expiry (seconds since the epoch). */
export interface RevokedToken {
  readonly tenant: string
  readonly jti: string
  readonly exp: number
  readonly revokedAt: string
  readonly revokedBy: string
}

/**
 * Revoked access tokens, shared by all replicas. `revoke` is idempotent; `isRevoked` answers
 * from what this replica has seen (a revocation reaches every replica within a second).
 */
export interface RevocationStore {
  revoke(token: RevokedToken): Promise<void>
  isRevoked(tenant: string, jti: string): boolean
}

/** One version of a KMS key as authn sees it (public data only). */
export interface KmsKeyVersion {
  readonly version: number
  readonly createdAt: Date
  /** The public key as JWK JSON (asymmetric keys). */
  readonly publicJwk?: string
  readonly destroyed: boolean
}

/** A KMS key's metadata as authn sees it. */
export interface KmsKeyInfo {
  readonly id: string
  /** KMS algorithm name without prefix: `HMAC_SHA256`, `EC_P256_SIGN`, … */
  readonly algorithm: string
  /** KMS state name without prefix: `ENABLED`, `DISABLED`, … */
  readonly state: string
  readonly exportable: boolean
  readonly primaryVersion: number
  readonly versions: readonly KmsKeyVersion[]
}

/**
 * The KMS, used for one tenant at a time (the tenant-scoped KMS sees authn as an admin of
 * that tenant). Errors are the KMS's M2msecErrors (ERR_KEY_NOT_FOUND, ERR_KEY_DISABLED, …);
 * ERR_UNAVAILABLE when the KMS cannot be reached.
 */
export interface TenantKms {
  createKey(
    tenant: string,
    spec: {
      keyId?: string
      algorithm: 'EC_P256_SIGN' | 'HMAC_SHA256'
      exportable: boolean
      purpose: string
      labels: Readonly<Record<string, string>>
      secureEnvironment: string
    },
  ): Promise<KmsKeyInfo>
  importHmacKey(
    tenant: string,
    spec: { wrappedKey: string; unwrappingKeyId: string; purpose: string; labels: Readonly<Record<string, string>> },
  ): Promise<KmsKeyInfo>
  getKey(tenant: string, keyId: string): Promise<KmsKeyInfo>
  rotateKey(tenant: string, keyId: string): Promise<KmsKeyInfo>
  /** ES256 signature (r||s, 64 bytes) with the primary version, and that version. */
  sign(tenant: string, keyId: string, message: Uint8Array): Promise<{ signature: Uint8Array; version: number }>
  mac(tenant: string, keyId: string, data: Uint8Array): Promise<Uint8Array>
  verifyMac(tenant: string, keyId: string, data: Uint8Array, mac: Uint8Array): Promise<boolean>
  /** JWE (ECDH-ES+A256KW, A256GCM) of the key's primary version for a P-256 public JWK. */
  wrapKeyForJwk(tenant: string, keyId: string, publicJwk: string): Promise<string>
  /**
   * HKDF-SHA256 of an HMAC key into a NEW non-exportable HMAC_SHA256 key (KMS DeriveKey).
   * `grantees` (KMS principal entries) get MAC and VERIFY_MAC; empty = the KMS default policy
   * (authn's own principal, every operation).
   */
  deriveHmacKey(
    tenant: string,
    baseKeyId: string,
    hkdf: { readonly salt: Uint8Array; readonly info: Uint8Array },
    spec: { purpose: string; labels: Readonly<Record<string, string>>; grantees: readonly string[] },
  ): Promise<KmsKeyInfo>
  /** Makes a key unusable at once and destroys it at `destroyAfter` (at least a minute ahead). */
  scheduleDestruction(tenant: string, keyId: string, destroyAfter: Date): Promise<void>
}

/** Km of a GBA bootstrapping session, as the BSF hands it to authn over Zn. */
export interface GbaMafKey {
  /** The KMS key handle (HMAC_SHA256, in the tenant's scope) authn may MAC and VERIFY_MAC with. */
  readonly keyId: string
  readonly impi: string
  readonly bootstrappedAt: Date
  readonly expiresAt: Date
}

/**
 * Zn towards the BSF (the bootstrap service), with authn as the NAF: the MAF of oneM2M's GBA
 * RSPF (TS-0003 §8.3.2.3). `mafKey` returns Km = Ks_NAF for authn's MAF FQDN of the session
 * `btid` of `tenant`. Errors: ERR_NOT_FOUND (unknown B-TID, or one of another tenant),
 * ERR_FAILED_PRECONDITION with `details.reason` `BTID_EXPIRED`, ERR_PERMISSION_DENIED (the
 * BSF's Zn policy does not name authn), ERR_UNAVAILABLE.
 */
export interface GbaZn {
  mafKey(tenant: string, btid: string): Promise<GbaMafKey>
}

/**
 * Revocation status of a certificate that validated to a trust anchor. `check` resolves when
 * the certificate is not revoked (or carries no revocation pointer the checker uses), throws
 * ERR_TOKEN_REVOKED when it is revoked and ERR_UNAVAILABLE when its status cannot be learnt.
 */
export interface CertificateRevocation {
  check(leaf: X509Certificate, issuer: X509Certificate): Promise<void>
}

/** Authentication failures of one key (an entity or a source) as all replicas share them. */
export interface FailureState {
  /** Failures since the last success (entities) or within the failure window. */
  readonly failures: number
  /** Time of the last failure, ms since the epoch. */
  readonly lastFailureAt: number
  /** Attempts are refused until this time, ms since the epoch (0 = not blocked). */
  readonly blockedUntil: number
}

/**
 * Authentication failures shared by every replica. `get` answers from this replica's view
 * (no round trip; another replica's write arrives within milliseconds). `record` applies
 * `next` as a revision-checked read-modify-write and returns the stored state; `clear`
 * forgets a key. Entries expire after the failure window plus the longest back-off.
 */
export interface AttemptStore {
  get(key: string): FailureState | undefined
  record(key: string, next: (current: FailureState | undefined) => FailureState): Promise<FailureState>
  clear(key: string): Promise<void>
}

/**
 * Pairwise pseudonyms issued so far, so that Introspect can find the entity behind one.
 * `remember` is idempotent; `resolve` returns undefined for an unknown pseudonym.
 */
export interface PseudonymStore {
  remember(tenant: string, pseudonym: string, entry: { entityId: string; audience: string }): Promise<void>
  resolve(tenant: string, pseudonym: string): Promise<{ entityId: string; audience: string } | undefined>
}

/** A page of versioned records over all tenants; `next` continues after the last key. */
export interface VersionedPage<T> {
  readonly items: Array<Versioned<T>>
  readonly next?: string
}

/** Session keys (KV). Same error contract as TenantStore; `delete` is revision-checked. */
export interface SessionKeyStore {
  create(record: SessionKeyRecord): Promise<number>
  get(tenant: string, sessionId: string): Promise<Versioned<SessionKeyRecord> | undefined>
  delete(tenant: string, sessionId: string, revision: number): Promise<void>
  list(page: { limit: number; after?: string }): Promise<VersionedPage<SessionKeyRecord>>
}

/** MAF client registrations, one per (tenant, client id). */
export interface MafClientStore {
  get(tenant: string, clientId: string): Promise<Versioned<MafClientRecord> | undefined>
  /** Creates or replaces the registration. */
  put(record: MafClientRecord): Promise<number>
  delete(tenant: string, clientId: string, revision?: number): Promise<void>
  list(page: { limit: number; after?: string }): Promise<VersionedPage<MafClientRecord>>
}

/** MAF key registrations, by (tenant, RelativeKeyID). */
export interface MafKeyStore {
  get(tenant: string, relativeKeyId: string): Promise<Versioned<MafKeyRecord> | undefined>
  create(record: MafKeyRecord): Promise<number>
  update(record: MafKeyRecord, revision: number): Promise<number>
  delete(tenant: string, relativeKeyId: string, revision: number): Promise<void>
  list(page: { limit: number; after?: string }): Promise<VersionedPage<MafKeyRecord>>
}

/** One audit record. Never carries key material, assertions or tokens. */
export interface AuditEntry {
  readonly tenant: string
  readonly principal: string
  readonly action: string
  readonly resource: string
  readonly result: 'ok' | 'denied' | 'error'
  readonly code?: string
  readonly details?: Readonly<Record<string, string | number | boolean>>
}

/** Resolves once the record is durable; rejects with ERR_AUDIT_UNAVAILABLE otherwise. */
export interface AuditSink {
  append(entry: AuditEntry): Promise<void>
}

/** Domain events for other replicas and services (best effort, after the write). */
export type AuthnEvent =
  | { readonly type: 'tenant.created' | 'tenant.disabled'; readonly tenant: string }
  | { readonly type: 'entity.registered' | 'entity.disabled'; readonly tenant: string; readonly entityId: string }
  | {
      readonly type: 'credential.added' | 'credential.revoked'
      readonly tenant: string
      readonly entityId: string
      readonly credentialId: string
    }
  | { readonly type: 'token.revoked'; readonly tenant: string; readonly jti: string; readonly exp: number }
  | { readonly type: 'signing-key.rotated'; readonly tenant: string; readonly keyId: string; readonly version: number }
  | {
      readonly type: 'maf-key.registered' | 'maf-key.updated' | 'maf-key.deregistered'
      readonly tenant: string
      readonly relativeKeyId: string
    }

/** Publishes domain events. */
export interface AuthnEvents {
  publish(event: AuthnEvent): Promise<void>
}

/** The current time (injected). */
export interface Clock {
  now(): Date
}
/** Cryptographically secure random bytes (injected). */
export interface Random {
  bytes(n: number): Uint8Array
}

/** Settings the domain needs (from the service configuration). */
export interface AuthnSettings {
  /** `iss` of access tokens and server proofs. */
  readonly issuer: string
  /** The `aud` every assertion must carry. */
  readonly tokenEndpointId: string
  /** `aud` of access tokens when the request names none. */
  readonly defaultAudience: string
  /** Access token lifetime, seconds. */
  readonly tokenLifetimeSec: number
  /** Longest accepted assertion lifetime (exp - iat), seconds; at most 300. */
  readonly maxAssertionLifetimeSec: number
  /** Clock skew tolerated on assertion times, seconds. */
  readonly clockSkewSec: number
  /** Largest accepted assertion, bytes. */
  readonly maxAssertionBytes: number
  /** Tenant of platform operators. */
  readonly operatorTenant: string
  /** How long signing key metadata is cached, ms. */
  readonly signingKeyCacheMs: number
  /** Flood protection of the token endpoint (SER-001). */
  readonly flood: FloodSettings
  /** Session keys. */
  readonly session: { readonly defaultLifetimeSec: number; readonly maxLifetimeSec: number }
  /** The MAF procedures. */
  readonly maf: {
    /** The MAF-FQDN of key identifiers `RelativeKeyID@MAF-FQDN`. */
    readonly fqdn: string
    readonly maxKeyLifetimeSec: number
    readonly maxClientLifetimeSec: number
  }
}

/** Exponential back-off after failures of one key. */
export interface BackoffSettings {
  /** Failures allowed before the first back-off. */
  readonly freeFailures: number
  /** First back-off, ms; doubles with every further failure. */
  readonly baseDelayMs: number
  /** Longest back-off, ms. */
  readonly maxDelayMs: number
}

/** Limits on authentication attempts per entity and per source address. */
export interface FloodSettings {
  readonly entity: BackoffSettings
  readonly source: BackoffSettings
  /** Failures older than this (without a newer one) are forgotten, ms. */
  readonly failureWindowMs: number
  /** Attempts per second and burst per entity, per replica (0 = no limit). */
  readonly entityRate: { readonly perSec: number; readonly burst: number }
  /** Attempts per second and burst per source address, per replica (0 = no limit). */
  readonly sourceRate: { readonly perSec: number; readonly burst: number }
}

/** Everything an operation may use. */
export interface AuthnDeps {
  readonly tenants: TenantStore
  readonly entities: EntityStore
  readonly jti: JtiStore
  readonly revocations: RevocationStore
  readonly attempts: AttemptStore
  readonly pseudonyms: PseudonymStore
  readonly sessions: SessionKeyStore
  readonly mafClients: MafClientStore
  readonly mafKeys: MafKeyStore
  readonly kms: TenantKms
  readonly audit: AuditSink
  readonly events: AuthnEvents
  readonly clock: Clock
  readonly random: Random
  readonly settings: AuthnSettings
  /** Zn to the BSF for GBA credentials; absent = B-TIDs are refused like unknown kids. */
  readonly gba?: GbaZn
  /** Certificate revocation checks; absent = not checked. */
  readonly revocation?: CertificateRevocation
  /** Logged, never thrown: event publishing failures. */
  readonly onBackgroundError?: (err: unknown) => void
}

/** The authenticated caller (see model.ts). */
export type { Caller }
