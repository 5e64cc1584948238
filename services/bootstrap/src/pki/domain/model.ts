/**
 * Records the PKI keeps in JetStream KV (JSON) and the ports its operations use. DER values
 * are base64; times are ISO strings.
 */
import type { RevocationReason, SubjectNames } from '@m2msec/pki'

/** A value with the KV revision it was read at. */
export interface Versioned<T> {
  readonly value: T
  readonly revision: number
}

/** Bucket `bootstrap-pki-cas`, key `<tenant>`. */
export interface CaRecord {
  readonly tenant: string
  readonly domain: string
  readonly rootKeyId: string
  readonly issuingKeyId: string
  /** base64 DER. */
  readonly rootCert: string
  readonly issuingCert: string
  readonly claimAnchors: readonly string[]
  /** Incremented by every revocation, so replicas know when a cached CRL is stale. */
  readonly revocations: number
  readonly createdAt: string
  readonly createdBy: string
}

/** How a certificate was enrolled. */
export type EnrolmentMethod = 'token' | 'claim' | 'gba' | 'reenroll'

/** Bucket `bootstrap-pki-certs`, key `<tenant>.<serial hex>`. */
export interface CertRecord {
  readonly tenant: string
  readonly serial: string
  /** base64 DER. */
  readonly cert: string
  readonly uris: readonly string[]
  readonly dnsNames: readonly string[]
  readonly notBefore: string
  readonly notAfter: string
  readonly status: 'valid' | 'revoked'
  readonly revokedAt?: string
  readonly reason?: RevocationReason
  readonly method: EnrolmentMethod
  /** Authorization id, claim certificate serial, GBA identity, or the renewed serial. */
  readonly enrolledBy: string
  readonly renews?: string
  readonly issuedAt: string
}

/** Bucket `bootstrap-pki-enrolments`, key `<tenant>.<id>`. */
export interface AuthorizationRecord {
  readonly tenant: string
  readonly id: string
  /** SHA-256 of the token secret, hex. */
  readonly secretHash: string
  readonly allowed: SubjectNames
  readonly expiresAt: string
  readonly state: 'active' | 'used'
  readonly certificateSerial?: string
  readonly usedAt?: string
  readonly createdBy: string
  readonly createdAt: string
}

/** Bucket `bootstrap-pki-revoked`, key `<tenant>.<serial hex>`: what the CRL lists. */
export interface RevokedRecord {
  readonly serial: string
  readonly revokedAt: string
  readonly reason: RevocationReason
}

/** One KV bucket as the PKI uses it (implemented by @m2msec/bus KvRepository). */
export interface Table<T> {
  /** Undefined when absent. */
  get(key: string): Promise<Versioned<T> | undefined>
  /** ERR_ALREADY_EXISTS when the key exists. */
  create(key: string, value: T): Promise<number>
  /** ERR_REVISION_CONFLICT when someone wrote since `revision`. */
  update(key: string, value: T, revision: number): Promise<number>
  /** Keys under a prefix, sorted, `limit` per page; `next` when more follow. */
  list(
    prefix: string,
    opts: { limit: number; after?: string },
  ): Promise<{ items: Array<{ key: string; value: T }>; next?: string }>
}

/** The PKI's tables. Keys are built with `kvKey(tenant, ...)`. */
export interface PkiStore {
  readonly cas: Table<CaRecord>
  readonly certs: Table<CertRecord>
  readonly authorizations: Table<AuthorizationRecord>
  readonly revoked: Table<RevokedRecord>
}

/**
 * The KMS as the PKI uses it: EC_P256_SIGN keys of a tenant. Errors are the KMS's
 * M2msecErrors (ERR_UNAVAILABLE when it cannot be reached).
 */
export interface PkiKms {
  /** Creates a new non-exportable EC_P256_SIGN key; returns its id and SubjectPublicKeyInfo DER. */
  createSigningKey(
    tenant: string,
    spec: { keyId: string; purpose: string; secureEnvironment?: string; labels: Readonly<Record<string, string>> },
  ): Promise<{ keyId: string; publicKeySpki: Uint8Array }>
  /** ES256 over `data` with the key's primary version: r‖s, 64 bytes. */
  sign(tenant: string, keyId: string, data: Uint8Array): Promise<Uint8Array>
}

/** What an authenticated caller of the gRPC API is. */
export interface Caller {
  readonly tenant: string
  readonly id: string
  readonly roles: readonly string[]
}

/**
 * GBA enrolment (RFC 7030 §3.2.3 HTTP Digest with the GBA key, TS 33.222 style): implemented
 * by the GBA part of the bootstrap service, which holds Ks_NAF. The PKI only calls it.
 * Contract: `challenge` returns the `WWW-Authenticate` value(s) for a 401 (Digest, realm and a
 * fresh nonce); `verify` checks an `Authorization: Digest ...` header (username = B-TID) for
 * this request and returns who enrolls and which names it may request, or rejects with an
 * UNAUTHENTICATED M2msecError (ERR_UNAUTHENTICATED, ERR_TOKEN_INVALID, ERR_REPLAY, ...).
 */
export interface EstGbaAuthenticator {
  challenge(tenant: string): Promise<readonly string[]>
  verify(request: {
    readonly tenant: string
    readonly method: string
    /** The request target as sent (path and query). */
    readonly uri: string
    readonly authorization: string
    /** The request body (for qop=auth-int). */
    readonly body: Uint8Array
  }): Promise<{ readonly identity: string; readonly allowed: SubjectNames }>
}

/** Time source (structurally the runtime's Clock). */
export interface Clock {
  now(): Date
}

/** Randomness (structurally the runtime's Random). */
export interface Random {
  bytes(n: number): Uint8Array
}

/** Settings the operations need (from the `pki` config section). */
export interface PkiSettings {
  readonly leafValidityDays: number
  readonly issuingCaValidityDays: number
  readonly rootCaValidityDays: number
  readonly backdateSec: number
  readonly maxCsrBytes: number
  readonly crlValiditySec: number
  readonly ocspValiditySec: number
}

/** One audit record (structurally the bus's AuditEntry; the sink stamps the time). */
export interface PkiAuditEntry {
  readonly tenant: string
  readonly principal: string
  readonly action: string
  readonly resource: string
  readonly result: 'ok' | 'denied' | 'error'
  readonly code?: string
  readonly details?: Readonly<Record<string, string | number | boolean>>
}

/** The audit port: `append` resolves once the record is stored, else rejects. */
export interface PkiAudit {
  append(entry: PkiAuditEntry): Promise<void>
}

/** Everything the operations use. */
export interface PkiContext {
  readonly store: PkiStore
  readonly kms: PkiKms
  readonly audit: PkiAudit
  readonly clock: Clock
  readonly random: Random
  readonly settings: PkiSettings
  /** Public base URLs (EST https, CRL/OCSP http), known once the listeners run. */
  readonly urls: () => { readonly est: string; readonly revocation: string }
}
