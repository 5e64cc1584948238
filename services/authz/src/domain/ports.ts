/**
 * The ports the authz domain needs. Adapters live in `store/` and `events/`; unit tests use the
 * in-memory fake in `test/store/memory-store.ts`, which passes the same contract suite
 * (`test/store/store-contract.ts`) as the JetStream adapter.
 */
import type { PolicyIndex } from '@m2msec/acp'
import type { CompactVerifyGetKey } from 'jose'
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

/**
 * A DAS server whose tokens a tenant accepts. TS-0003 §7.3.2.6: "CSEs must be configured per
 * issuer with permitted ESData class/algorithm combinations and verification keys".
 */
export interface TrustedIssuer {
  /** The `iss` value, exactly. */
  readonly issuer: string
  /** JWS algorithms accepted from this issuer (never `none`). */
  readonly algorithms: readonly string[]
  /** Refuse a token without `aud` (the specification accepts one). */
  readonly requireAudience: boolean
  /**
   * The verification key for a token's protected header (a jose key resolver: local JWKS,
   * remote JWKS, or this service's KMS key). Rejects when no key matches; a key source that
   * cannot be reached rejects with ERR_UNAVAILABLE.
   */
  readonly key: CompactVerifyGetKey
}

/** The DAS servers each tenant trusts. */
export interface DasTrust {
  /** The trusted issuer `iss` of `tenant`, or undefined when the tenant does not trust it. */
  issuer(tenant: string, iss: string): TrustedIssuer | undefined
}

/** This service acting as a tenant's DAS Server: its identity and the KMS signing key. */
export interface DasSigner {
  /** The DAS identity (`iss`) and longest token lifetime for `tenant`; undefined when it issues none. */
  identity(tenant: string): { readonly issuer: string; readonly maxLifetimeSec: number } | undefined
  /**
   * Signs a JWT with the tenant's DAS key in the KMS (the header gets `alg` ES256 and `kid`);
   * returns the compact JWS. Fails with the KMS's errors (e.g. ERR_UNAVAILABLE).
   */
  sign(
    tenant: string,
    header: Readonly<Record<string, unknown>>,
    payload: Readonly<Record<string, unknown>>,
  ): Promise<string>
  /** A new unique token id (`jti`). */
  newTokenId(): string
}

/** Limits and tolerances of token handling. */
export interface DasSettings {
  /** Allowed clock difference for `nbf` / `exp`, seconds. */
  readonly clockToleranceSec: number
  /** Largest accepted token, bytes. */
  readonly maxTokenBytes: number
}

/** Everything token handling may use. */
export interface DasDeps {
  readonly trust: DasTrust
  readonly signer?: DasSigner
  readonly settings: DasSettings
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
  /** oneM2M tokens (TS-0003 §7.3). Absent: no issuer is trusted and no token is issued. */
  readonly das?: DasDeps
}
