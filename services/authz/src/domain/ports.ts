/**
 * The ports the authz domain needs. Adapters live in `store/` and `events/`; unit tests use the
 * in-memory fake in `test/store/memory-store.ts`, which passes the same contract suite
 * (`test/store/store-contract.ts`) as the JetStream adapter.
 */
import type { PolicyIndex } from '@m2msec/acp'
import type { PolicyRecord, Versioned } from './model.ts'

/**
 * Policy storage. Contract:
 * - `get` returns undefined for an unknown (tenant, id); never another tenant's policy.
 * - `create` throws ERR_ALREADY_EXISTS when the id is taken in that tenant.
 * - `update` and `delete` throw ERR_REVISION_CONFLICT when `revision` is not the current one
 *   (also when the policy was deleted meanwhile): the caller re-reads and decides again.
 * - `list` returns the tenant's policies ordered by id, at most `limit`, starting after
 *   `after`; `next` is set when more exist.
 * - Read-your-writes: when `create`, `update` or `delete` resolves, the {@link DecisionIndex}
 *   of this replica reflects that write (or a newer one).
 * - Store failures throw ERR_UNAVAILABLE; a value larger than the store allows throws
 *   ERR_PAYLOAD_TOO_LARGE.
 */
export interface PolicyStore {
  get(tenant: string, id: string): Promise<Versioned<PolicyRecord> | undefined>
  create(record: PolicyRecord): Promise<number>
  update(record: PolicyRecord, revision: number): Promise<number>
  delete(tenant: string, id: string, revision: number): Promise<void>
  list(
    tenant: string,
    page: { limit: number; after?: string },
  ): Promise<{ items: Array<Versioned<PolicyRecord>>; next?: string }>
}

/**
 * The compiled policies every decision reads, per tenant, kept current from the store (on
 * every replica, within a second of a write anywhere). `forTenant` never returns another
 * tenant's policies; a tenant without policies gets an empty index. Callers only read it.
 */
export interface DecisionIndex {
  forTenant(tenant: string): PolicyIndex
}

/** One audit record. Never carries secrets. */
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

/** The current time. */
export interface Clock {
  now(): Date
}

/** Uniform numbers in [0, 1) for audit sampling (not security relevant). */
export interface Sampler {
  next(): number
}

/** Everything an operation may use. */
export interface AuthzDeps {
  readonly store: PolicyStore
  readonly index: DecisionIndex
  readonly audit: AuditSink
  readonly clock: Clock
  readonly sampler: Sampler
  /** Fraction (0..1) of PERMIT decisions that are audited; DENY decisions always are. */
  readonly allowSampleRate: number
}
