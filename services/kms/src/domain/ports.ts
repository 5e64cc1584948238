/**
 * The ports the KMS domain needs. Adapters live in `store/`, `events/` and `se/`; unit tests
 * use in-memory fakes that pass the same contract suite as the real adapters.
 */
import type { SecureEnvironment } from '../se/api.ts'
import type { KeyRecord } from './model.ts'

/** A value with the store revision it was read at (for compare-and-set updates). */
export interface Versioned<T> {
  readonly value: T
  readonly revision: number
}

/**
 * Key metadata store. Contract:
 * - `get` returns undefined for an unknown (tenant, id); never another tenant's key.
 * - `create` throws ERR_ALREADY_EXISTS when the id is taken in that tenant.
 * - `update` throws ERR_REVISION_CONFLICT when `revision` is not the current one: the caller
 *   re-reads and retries, so concurrent replicas never lose an update.
 * - `list` returns the tenant's keys ordered by id, at most `limit`, starting after `after`;
 *   `next` is set when more exist.
 * - Store failures throw ERR_UNAVAILABLE.
 */
export interface KeyStore {
  get(tenant: string, id: string): Promise<Versioned<KeyRecord> | undefined>
  create(key: KeyRecord): Promise<number>
  update(key: KeyRecord, revision: number): Promise<number>
  list(tenant: string, page: { limit: number; after?: string }): Promise<{ items: KeyRecord[]; next?: string }>
}

/** A stored secret: the value sealed by an SE key, never the value itself. */
export interface StoredSecret {
  readonly tenant: string
  readonly owner: string
  readonly name: string
  readonly sealed: string
  readonly keyId: string
  readonly createdAt: string
  readonly updatedAt: string
}

/**
 * Secure storage of per-owner data. Same error contract as KeyStore; `list` orders by name.
 * `delete` of an unknown secret throws ERR_SECRET_NOT_FOUND.
 */
export interface SecretStore {
  get(tenant: string, owner: string, name: string): Promise<StoredSecret | undefined>
  put(secret: StoredSecret): Promise<void>
  delete(tenant: string, owner: string, name: string): Promise<boolean>
  list(
    tenant: string,
    owner: string,
    page: { limit: number; after?: string },
  ): Promise<{ items: StoredSecret[]; next?: string }>
}

/** One audit record. Never carries data or key bytes. */
export interface AuditEntry {
  readonly tenant: string
  readonly principal: string
  readonly action: string
  readonly resource: string
  readonly result: 'ok' | 'denied' | 'error'
  readonly code?: string
  readonly details?: Readonly<Record<string, string | number | boolean>>
}

/**
 * Audit sink. `append` resolves once the record is durable; it rejects with
 * ERR_AUDIT_UNAVAILABLE when the record cannot be written, and the operation then fails.
 */
export interface AuditSink {
  append(entry: AuditEntry): Promise<void>
}

/** Domain events for other replicas and services. Publishing is best effort after the write. */
export interface KeyEvents {
  publish(event: KeyEvent): Promise<void>
}
export type KeyEvent =
  | { readonly type: 'key.created'; readonly tenant: string; readonly keyId: string; readonly algorithm: string }
  | { readonly type: 'key.rotated'; readonly tenant: string; readonly keyId: string; readonly version: number }
  | { readonly type: 'key.state-changed'; readonly tenant: string; readonly keyId: string; readonly state: string }

/** The configured secure environments. `get` throws ERR_SE_NOT_FOUND for an unknown name. */
export interface SecureEnvironments {
  readonly defaultName: string
  get(name: string): SecureEnvironment
  list(): readonly SecureEnvironment[]
}

export interface Clock {
  now(): Date
}
export interface Random {
  bytes(n: number): Uint8Array
}

/** Everything an operation may use. */
export interface KmsDeps {
  readonly keys: KeyStore
  readonly secrets: SecretStore
  readonly ses: SecureEnvironments
  readonly audit: AuditSink
  readonly events: KeyEvents
  readonly clock: Clock
  readonly random: Random
  /** Logged, never thrown: event publishing failures. */
  readonly onBackgroundError?: (err: unknown) => void
}
