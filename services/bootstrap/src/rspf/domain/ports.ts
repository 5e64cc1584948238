/**
 * What the RSPF needs from the outside world. Contracts are written on each method; the KMS
 * adapter (`kms/rspf-kms.ts`) and the JetStream store (`store/enrolment-store.ts`) implement
 * them.
 */
import type { EnrolmentRecord } from './enrolment.ts'

/** The KMS as the MEF uses it. Every call acts for `tenant`; key bytes never come back. */
export interface RspfKms {
  /**
   * Imports Ke as a new HMAC_SHA256 key handle `keyId` that only this service may DERIVE from
   * (no MAC, no EXPORT for anyone), labelled `rspf.expires-at` = `expiresAt`. The caller
   * zeroises `ke` afterwards. ERR_ALREADY_EXISTS when the id is taken.
   */
  importEnrolmentKey(tenant: string, keyId: string, ke: Uint8Array, expiresAt: Date): Promise<void>
  /**
   * Derives HMAC-SHA-256(base, data) into key handle `keyId` (exportable, EXPORT for this
   * service only, labelled with `expiresAt`). Idempotent: an existing `keyId` is kept as it is.
   */
  deriveHmacKey(tenant: string, baseKeyId: string, keyId: string, data: Uint8Array, expiresAt: Date): Promise<void>
  /** The key wrapped for an EC P-256 public JWK: JWE compact, ECDH-ES+A256KW / A256GCM. */
  wrapForJwk(tenant: string, keyId: string, publicJwk: string): Promise<string>
  /** This service's secure-storage value `name`, or undefined when there is none. */
  getSecret(tenant: string, name: string): Promise<Uint8Array | undefined>
  /** Stores (or replaces) this service's secure-storage value `name`. */
  putSecret(tenant: string, name: string, value: Uint8Array): Promise<void>
}

/** Enrolments by (tenant, RelativeKeID). */
export interface EnrolmentStore {
  /** Stores a new enrolment; ERR_ALREADY_EXISTS when the RelativeKeID is taken. */
  create(record: EnrolmentRecord): Promise<void>
  /** The enrolment, or undefined (also for another tenant's). */
  get(tenant: string, relativeHex: string): Promise<EnrolmentRecord | undefined>
}
