/**
 * The authz domain model: stored policies (oneM2M <accessControlPolicy> plus bookkeeping), the
 * caller, and the inputs and outputs of a decision. The policy content itself is the
 * `@m2msec/acp` model (TS-0004 long names), validated by `parsePolicy`.
 */
import type { AccessControlPolicy, HostIds, Operation, RequestLocation } from '@m2msec/acp'

/** Role that may manage every policy of its tenant, whatever the policies' selfPrivileges say. */
export const ADMIN_ROLE = 'admin'

/**
 * The authenticated caller as the domain sees it (structurally a runtime Principal, plus the
 * IP address the call came from, used as rq_ip when selfPrivileges authorize a policy change).
 */
export interface Caller {
  readonly tenant: string
  readonly id: string
  readonly roles: readonly string[]
  readonly ipAddress?: string
}

/** A policy as stored: tenant-scoped, with who changed it when. */
export interface PolicyRecord {
  readonly tenant: string
  /** Canonical form (parsePolicy output); `policy.id` is the policy id. */
  readonly policy: AccessControlPolicy
  /** ISO 8601. */
  readonly createdAt: string
  /** ISO 8601. */
  readonly updatedAt: string
  readonly createdBy: string
  readonly updatedBy: string
}

/** A value with the store revision it was read at (for compare-and-set writes). */
export interface Versioned<T> {
  readonly value: T
  readonly revision: number
}

/** The request context of TS-0003 table 7.1.2-2; an absent time means "now". */
export interface CheckContext {
  readonly time?: Date
  readonly ipAddress?: string
  readonly location?: RequestLocation
}

/**
 * One access request as a PEP (a CSE) sends it. Mirrors `CheckRequest` in authz.proto, where
 * every field is documented.
 */
export interface CheckInput {
  /** Empty or absent: the caller itself, which then counts as authenticated. */
  readonly originator?: string
  readonly operation: Operation
  readonly targetResourceId?: string
  readonly targetPolicyIds: readonly string[]
  readonly roleIds?: readonly string[]
  readonly groupIds?: readonly string[]
  readonly authenticated: boolean
  readonly context?: CheckContext
  readonly createdResourceType?: number
  readonly targetResourceType?: number
  readonly createdSpecializationType?: string
  readonly isPolicyChange?: boolean
  readonly host?: HostIds
  /** oneM2M JWTs (compact JWS) the originator presented (`tkns`). */
  readonly tokens?: readonly string[]
}

/**
 * The rule that permitted a request: a policy rule (possibly matched through a role of a token,
 * then `tokenId`/`permissionIndex` are set) or a rule of a token permission's privileges
 * (`attribute` 'tokenPrivileges', no `policyId`).
 */
export interface MatchedPolicyRule {
  readonly policyId?: string
  readonly attribute: 'privileges' | 'selfPrivileges' | 'tokenPrivileges'
  readonly ruleIndex: number
  readonly tokenId?: string
  readonly permissionIndex?: number
}

/** The answer to a Check. */
export interface CheckResult {
  readonly decision: 'permit' | 'deny'
  readonly matched?: MatchedPolicyRule
}

/** The answer to an Explain: the decision and every reason, in evaluation order. */
export interface ExplainResult extends CheckResult {
  readonly reasons: readonly string[]
}
