/**
 * The access decision of TS-0003 §7.1.4 / §7.1.5, as a pure function over a compiled index.
 *
 *   res_acrs  = OR over every rule of every listed policy of res_acr(k)   (permit-overrides)
 *   res_acr   = res_authn AND res_origs AND res_ops AND res_ctxts AND res_objd
 *   res_ctxts = OR_m (res_time AND res_ip AND res_loc)        (TRUE for a rule without contexts)
 *   res_objd  = OR_m (res_resourceType AND res_specializationType AND res_childResource)
 *               (CREATE only; TRUE for other operations and for a rule without object details)
 *
 * "If the access decision algorithm yields the result res_acrs = FALSE, or the access decision
 * algorithm is not capable of deriving a final result (e.g. due to indeterminate parameters),
 * then the access decision ... shall be Deny." A rule element that needs a request value the
 * request does not carry (no location, no IP, malformed value, no resource type) is
 * indeterminate and so never permits; in three-valued logic OR(TRUE, indeterminate) is still
 * TRUE, so another context of the same rule, or another rule, can still permit.
 *
 * Lookups cost O(number of policies the request lists): the index is a Map by policy id.
 */
import { M2msecError, invalidArgument, isM2msecError } from '@m2msec/errors'
import { cidrContains, parseCidr, parseIpAddress, type Cidr, type IpAddress } from './cidr.ts'
import { crontabMatches, parseCrontab, type Crontab } from './crontab.ts'
import { inCircle, isValidCoordinate } from './geo.ts'
import { OPERATION_BITS, type AccessControlPolicy, type AccessControlRule, type Operation } from './model.ts'
import {
  compileOriginators,
  matchOriginator,
  originatorForms,
  type HostIds,
  type OriginatorForms,
  type OriginatorMatcher,
} from './originator.ts'
import { createInternTable } from './intern.ts'
import { parsePolicy, parseRule } from './parse.ts'

// ---------------------------------------------------------------------------------------------
// Compiled form

type CompiledLocation =
  | { readonly kind: 'circle'; readonly circle: readonly [number, number, number] }
  | { readonly kind: 'country'; readonly codes: readonly string[] }

interface CompiledContext {
  readonly windows: readonly Crontab[] | null
  readonly cidrs: readonly Cidr[] | null
  readonly location: CompiledLocation | null
}

interface CompiledObjectDetails {
  readonly resourceType: number | null
  readonly specializationType: string | null
  readonly childResourceTypes: readonly number[]
}

/** A validated, compiled access control rule. */
export interface CompiledRule {
  readonly operations: number
  readonly originators: OriginatorMatcher
  readonly requiresAuthentication: boolean
  readonly contexts: readonly CompiledContext[] | null
  readonly objectDetails: readonly CompiledObjectDetails[] | null
}

/** A compiled `<accessControlPolicy>`. */
export interface CompiledPolicy {
  readonly id: string
  readonly privileges: readonly CompiledRule[]
  readonly selfPrivileges: readonly CompiledRule[]
}

const crontabs = createInternTable<Crontab>()
const cidrs4 = createInternTable<Cidr>()
const cidrs6 = createInternTable<Cidr>()

function crontab(text: string): Crontab {
  return crontabs.get(text, () => parseCrontab(text))
}

function cidr(text: string, family: 4 | 6): Cidr {
  return (family === 4 ? cidrs4 : cidrs6).get(text, () => parseCidr(text, family))
}

function compileRuleUnchecked(rule: AccessControlRule): CompiledRule {
  const contexts = rule.accessControlContexts?.map((c): CompiledContext => ({
    windows: c.accessControlWindow?.map(crontab) ?? null,
    cidrs:
      c.accessControlIpAddresses === undefined
        ? null
        : [
            ...(c.accessControlIpAddresses.ipv4Addresses ?? []).map((a) => cidr(a, 4)),
            ...(c.accessControlIpAddresses.ipv6Addresses ?? []).map((a) => cidr(a, 6)),
          ],
    location:
      c.accessControlLocationRegion === undefined
        ? null
        : 'circRegion' in c.accessControlLocationRegion
          ? { kind: 'circle', circle: c.accessControlLocationRegion.circRegion }
          : { kind: 'country', codes: c.accessControlLocationRegion.countryCode },
  }))
  const objectDetails = rule.accessControlObjectDetails?.map((d): CompiledObjectDetails => ({
    resourceType: d.resourceType ?? null,
    specializationType: d.specializationType ?? null,
    childResourceTypes: d.childResourceType,
  }))
  return {
    operations: rule.accessControlOperations,
    originators: compileOriginators(rule.accessControlOriginators),
    requiresAuthentication: rule.accessControlAuthenticationFlag === true,
    contexts: contexts ?? null,
    objectDetails: objectDetails ?? null,
  }
}

/**
 * Validates (as `parseRule` does) and compiles rules, e.g. the privileges of a token permission.
 * Throws `ERR_INVALID_ARGUMENT` naming the bad field.
 */
export function compileRules(rules: readonly unknown[], path = 'rules'): CompiledRule[] {
  return rules.map((r, i) => compileRuleUnchecked(parseRule(r, `${path}[${i}]`)))
}

/** Validates and compiles one policy. Throws `ERR_INVALID_ARGUMENT` naming the bad field. */
export function compilePolicy(policy: AccessControlPolicy): CompiledPolicy {
  // Re-validate: a typed object may still come from an unchecked cast of stored JSON.
  const p = parsePolicy(policy)
  return {
    id: p.id,
    privileges: p.privileges.accessControlRule.map(compileRuleUnchecked),
    selfPrivileges: p.selfPrivileges.accessControlRule.map(compileRuleUnchecked),
  }
}

/**
 * The compiled policies of one decision scope (a CSE or a tenant), indexed by policy id.
 * `upsert` and `remove` keep it current (e.g. from a KV watch); a failed upsert changes nothing.
 */
export interface PolicyIndex {
  readonly size: number
  get(id: string): CompiledPolicy | undefined
  /** Compiles and stores a policy, replacing one with the same id. */
  upsert(policy: AccessControlPolicy): void
  /** Removes a policy; true when it was present. */
  remove(id: string): boolean
}

class MapPolicyIndex implements PolicyIndex {
  readonly #byId = new Map<string, CompiledPolicy>()

  get size(): number {
    return this.#byId.size
  }

  get(id: string): CompiledPolicy | undefined {
    return this.#byId.get(id)
  }

  upsert(policy: AccessControlPolicy): void {
    const compiled = compilePolicy(policy)
    this.#byId.set(compiled.id, compiled)
  }

  remove(id: string): boolean {
    return this.#byId.delete(id)
  }
}

/**
 * Compiles policies into an index. Throws `ERR_INVALID_ARGUMENT` on an invalid policy or a
 * duplicate id; nothing is returned partially.
 *
 * @example
 * ```ts
 * const index = compilePolicies([acp1, acp2])
 * const d = decide(index, { originator: '/cse1/Cae1', operation: 'retrieve',
 *   targetPolicyIds: ['acp1'], authenticated: true, context: { time: new Date() } })
 * d.decision // 'permit' | 'deny'
 * ```
 */
export function compilePolicies(policies: Iterable<AccessControlPolicy>): PolicyIndex {
  const index = new MapPolicyIndex()
  let i = 0
  for (const policy of policies) {
    try {
      const id = (policy as { id?: unknown }).id
      if (typeof id === 'string' && index.get(id) !== undefined) {
        throw invalidArgument(`duplicate policy id "${id}"`, { path: 'id' })
      }
      index.upsert(policy)
    } catch (err) {
      if (isM2msecError(err)) {
        const path = `policies[${i}]${typeof err.details['path'] === 'string' ? `.${err.details['path']}` : ''}`
        throw new M2msecError(err.code, `policies[${i}]: ${err.message}`, { ...err.details, path })
      }
      throw err
    }
    i++
  }
  return index
}

// ---------------------------------------------------------------------------------------------
// Request and result

/** Where the originator is: coordinates (for circRegion) or a country (for countryCode). */
export type RequestLocation =
  { readonly lat: number; readonly lon: number; readonly countryCode?: string } | { readonly countryCode: string }

/** Context parameters of TS-0003 table 7.1.2-2. */
export interface RequestContext {
  /** rq_time: when the hosting CSE received the request (injected; never read from a clock here). */
  readonly time: Date
  /** rq_ip: the IP source address of the request. */
  readonly ipAddress?: string
  /** rq_loc: the originator's location. */
  readonly location?: RequestLocation
}

/**
 * Extra authorization from one permission of a verified token (TS-0003 §7.3.2.5), built by
 * `tokenGrants` in `tokens.ts`. Each grant is evaluated on its own together with the policies.
 */
export interface TokenGrant {
  readonly tokenId: string
  readonly permissionIndex: number
  /** The permission's privileges: rules added to the applicable rules. */
  readonly rules: readonly CompiledRule[]
  /** The permission's roleIDs: valid roles for this evaluation. */
  readonly roleIds: readonly string[]
}

/** The inputs of one access decision (TS-0003 §7.1.2). */
export interface AccessRequest {
  /** From: the authenticated originator id (absolute, SP-relative or CSE-relative). */
  readonly originator: string
  readonly operation: Operation
  /** accessControlPolicyIDs of the target resource (or the ACPs whose selfPrivileges apply). */
  readonly targetPolicyIds: readonly string[]
  /** Role IDs of the originator, already validated by the caller (TS-0003 §7.4). */
  readonly roleIds?: readonly string[]
  /** `<group>` resource ids the originator is a member of. */
  readonly groupIds?: readonly string[]
  /** rq_authn (TS-0003 table 7.1.2-3). */
  readonly authenticated: boolean
  readonly context: RequestContext
  /** CREATE only: Resource Type of the resource to be created (matched with childResourceType). */
  readonly createdResourceType?: number
  /** CREATE only: resource type of the target (parent) resource, for acod/resourceType. */
  readonly targetResourceType?: number
  /** CREATE only: mgmtDefinition / containerDefinition of the created resource, for acod/spty. */
  readonly createdSpecializationType?: string
  /**
   * Evaluate `selfPrivileges` instead of `privileges`: set it for every request whose target is
   * an `<accessControlPolicy>` (listing that policy) and for an UPDATE of a resource's
   * accessControlPolicyIDs (listing the currently referenced policies).
   */
  readonly isPolicyChange?: boolean
  /** The hosting SP/CSE, to compare ids written in different forms. */
  readonly host?: HostIds
  readonly tokenGrants?: readonly TokenGrant[]
}

/** Which rule permitted the request. */
export type MatchedRule =
  | {
      readonly source: 'policy'
      readonly policyId: string
      readonly attribute: 'privileges' | 'selfPrivileges'
      readonly ruleIndex: number
      /** Set when a role from this token permission made the rule match. */
      readonly tokenId?: string
      /** With `tokenId`: the index of that permission in the token. */
      readonly permissionIndex?: number
    }
  | {
      readonly source: 'token'
      readonly tokenId: string
      readonly permissionIndex: number
      readonly ruleIndex: number
    }

/** The result of `decide`. */
export interface Decision {
  readonly decision: 'permit' | 'deny'
  readonly matched?: MatchedRule
  /**
   * Why. Without `explain`: one summary line plus unknown policy ids. With `explain`: every
   * rule considered and why it did not apply, in evaluation order.
   */
  readonly reasons: readonly string[]
}

/** Options of `decide`. */
export interface DecideOptions {
  /** Collect a reason for every rule considered (for Explain); slower. */
  readonly explain?: boolean
}

// ---------------------------------------------------------------------------------------------
// Evaluation

const T = 0
const F = 1
const I = 2
/** Kleene truth value: TRUE, FALSE or indeterminate. */
type Truth = typeof T | typeof F | typeof I

const PERMIT = 0
const R_OPERATION = 1
const R_AUTHN = 2
const R_ORIGINATOR = 3
const R_OBJD_FALSE = 4
const R_OBJD_INDET = 5
const R_CTX_FALSE = 6
const R_CTX_INDET = 7
type RuleOutcome = number

const REASON_TEXT: Record<number, string> = {
  [R_OPERATION]: 'operation not in accessControlOperations',
  [R_AUTHN]: 'accessControlAuthenticationFlag requires an authenticated originator',
  [R_ORIGINATOR]: 'originator, its groups and roles are not in accessControlOriginators',
  [R_OBJD_FALSE]: 'CREATE not allowed by accessControlObjectDetails',
  [R_OBJD_INDET]: 'accessControlObjectDetails indeterminate: request lacks a resource type',
  [R_CTX_FALSE]: 'request context matches no accessControlContexts element',
  [R_CTX_INDET]: 'accessControlContexts indeterminate',
}

class Prepared {
  readonly opBit: number
  readonly isCreate: boolean
  readonly groupIds: readonly string[]
  readonly authenticated: boolean
  readonly timeValid: boolean
  /** What the last indeterminate context lacked (for Explain). */
  missing = ''
  private cachedIp: IpAddress | null | undefined = undefined
  private cachedForms: OriginatorForms | undefined = undefined

  constructor(readonly request: AccessRequest) {
    this.opBit = Object.hasOwn(OPERATION_BITS, request.operation) ? OPERATION_BITS[request.operation] : 0
    this.isCreate = request.operation === 'create'
    this.groupIds = request.groupIds ?? []
    this.authenticated = request.authenticated === true
    const t = request.context?.time
    this.timeValid = t instanceof Date && Number.isFinite(t.getTime())
  }

  /** The originator's id forms, computed on the first rule that gets past the operation check. */
  get forms(): OriginatorForms {
    if (this.cachedForms === undefined) {
      this.cachedForms = originatorForms(String(this.request.originator ?? ''), this.request.host)
    }
    return this.cachedForms
  }

  /** The parsed request IP; null when absent or malformed. */
  get ip(): IpAddress | null {
    if (this.cachedIp === undefined) {
      const text = this.request.context?.ipAddress
      this.cachedIp = text === undefined ? null : parseIpAddress(text)
    }
    return this.cachedIp
  }
}

function evalContext(ctx: CompiledContext, p: Prepared): Truth {
  let result: Truth = T
  if (ctx.windows !== null) {
    if (!p.timeValid) {
      p.missing = 'request time is not a valid Date'
      result = I
    } else if (!anyWindow(ctx.windows, p.request.context.time)) {
      return F
    }
  }
  if (ctx.cidrs !== null) {
    const ip = p.ip
    if (ip === null) {
      p.missing =
        p.request.context?.ipAddress === undefined ? 'request has no IP address' : 'request IP address is malformed'
      result = I
    } else if (!anyCidr(ctx.cidrs, ip)) {
      return F
    }
  }
  if (ctx.location !== null) {
    const loc = p.request.context?.location
    if (ctx.location.kind === 'circle') {
      const lat = loc !== undefined && 'lat' in loc ? loc.lat : undefined
      const lon = loc !== undefined && 'lon' in loc ? loc.lon : undefined
      if (lat === undefined || lon === undefined || !isValidCoordinate(lat, lon)) {
        p.missing = 'request has no valid coordinates for circRegion'
        result = I
      } else if (!inCircle(lat, lon, ctx.location.circle)) {
        return F
      }
    } else {
      const cc = loc?.countryCode
      if (typeof cc !== 'string' || !/^[A-Za-z]{2}$/.test(cc)) {
        p.missing = 'request has no country code for countryCode'
        result = I
      } else if (!ctx.location.codes.includes(cc.toUpperCase())) {
        return F
      }
    }
  }
  return result
}

function evalObjectDetails(list: readonly CompiledObjectDetails[], p: Prepared): Truth {
  const r = p.request
  let sawIndet = false
  for (const d of list) {
    let v: Truth = T
    if (d.resourceType !== null) {
      if (r.targetResourceType === undefined) v = I
      else if (r.targetResourceType !== d.resourceType) continue
    }
    if (d.specializationType !== null) {
      if (r.createdSpecializationType === undefined) v = I
      else if (String(r.createdSpecializationType) !== d.specializationType) continue
    }
    if (r.createdResourceType === undefined) v = I
    else if (!d.childResourceTypes.includes(r.createdResourceType)) continue
    if (v === T) return T
    sawIndet = true
  }
  return sawIndet ? I : F
}

function evalRule(rule: CompiledRule, p: Prepared, roleIds: readonly string[]): RuleOutcome {
  if ((rule.operations & p.opBit) === 0) return R_OPERATION
  if (rule.requiresAuthentication && !p.authenticated) return R_AUTHN
  if (!matchOriginator(rule.originators, p.forms, p.groupIds, roleIds)) return R_ORIGINATOR
  if (p.isCreate && rule.objectDetails !== null) {
    const v = evalObjectDetails(rule.objectDetails, p)
    if (v === F) return R_OBJD_FALSE
    if (v === I) return R_OBJD_INDET
  }
  if (rule.contexts !== null) {
    let sawIndet = false
    let matched = false
    for (const ctx of rule.contexts) {
      const v = evalContext(ctx, p)
      if (v === T) {
        matched = true
        break
      }
      if (v === I) sawIndet = true
    }
    if (!matched) return sawIndet ? R_CTX_INDET : R_CTX_FALSE
  }
  return PERMIT
}

function reasonText(outcome: RuleOutcome, p: Prepared): string {
  const text = REASON_TEXT[outcome] ?? 'does not apply'
  return outcome === R_CTX_INDET ? `${text}: ${p.missing}` : text
}

/**
 * Evaluates `rules`; returns the index of the first permitting rule or -1. With `reasons`,
 * records why each rule before it did not apply.
 */
function firstPermitting(
  rules: readonly CompiledRule[],
  p: Prepared,
  roleIds: readonly string[],
  label: string,
  reasons: string[] | null,
): number {
  for (let k = 0; k < rules.length; k++) {
    const outcome = evalRule(rules[k] as CompiledRule, p, roleIds)
    if (outcome === PERMIT) return k
    if (reasons !== null) reasons.push(`${label}[${k}]: ${reasonText(outcome, p)}`)
  }
  return -1
}

function describe(m: MatchedRule): string {
  if (m.source === 'token') {
    return `permitted by token ${m.tokenId} permission ${m.permissionIndex} rule ${m.ruleIndex}`
  }
  const via = m.tokenId === undefined ? '' : ` (role from token ${m.tokenId} permission ${m.permissionIndex ?? 0})`
  return `permitted by policy ${m.policyId} ${m.attribute}[${m.ruleIndex}]${via}`
}

// Hot-path helpers are top-level functions, not closures: the tsx/esbuild `keepNames` transform
// wraps every named closure in a defineProperty call, which dominated the profile.
function permitted(reasons: string[], matched: MatchedRule): Decision {
  reasons.push(describe(matched))
  return { decision: 'permit', matched, reasons }
}

function anyWindow(windows: readonly Crontab[], time: Date): boolean {
  for (const w of windows) if (crontabMatches(w, time)) return true
  return false
}

function anyCidr(cidrs: readonly Cidr[], ip: IpAddress): boolean {
  for (const c of cidrs) if (cidrContains(c, ip)) return true
  return false
}

/**
 * Decides one request (TS-0003 §7.1.5, permit-overrides, default deny). Pure: the result
 * depends only on `index` and `request`.
 *
 * @example
 * ```ts
 * const d = decide(index, {
 *   originator: '//sp.example/cse1/Cae1', operation: 'update', targetPolicyIds: ['acp1'],
 *   authenticated: true, context: { time: new Date('2025-01-01T02:03:00Z'), ipAddress: '10.1.2.3' },
 * }, { explain: true })
 * ```
 */
export function decide(index: PolicyIndex, request: AccessRequest, options: DecideOptions = {}): Decision {
  const explain = options.explain === true
  const reasons: string[] = []
  const detail = explain ? reasons : null
  const p = new Prepared(request)
  const attribute = request.isPolicyChange === true ? 'selfPrivileges' : 'privileges'
  const baseRoles = request.roleIds ?? []
  const ids = request.targetPolicyIds ?? []
  let considered = 0

  if (p.opBit === 0) {
    return { decision: 'deny', reasons: [`unknown operation "${String(request.operation)}"`] }
  }
  if (ids.length === 0) reasons.push('target lists no accessControlPolicyIDs')

  const policies: CompiledPolicy[] = []
  for (const id of ids) {
    const policy = index.get(id)
    if (policy === undefined) {
      reasons.push(`policy ${id}: not found`)
      continue
    }
    policies.push(policy)
    const rules = policy[attribute]
    considered += rules.length
    if (explain && rules.length === 0) reasons.push(`policy ${id}: no ${attribute} rules`)
    const k = firstPermitting(rules, p, baseRoles, `policy ${id} ${attribute}`, detail)
    if (k >= 0) {
      return permitted(reasons, { source: 'policy', policyId: id, attribute, ruleIndex: k })
    }
  }

  for (const grant of request.tokenGrants ?? []) {
    const roles = grant.roleIds.length === 0 ? baseRoles : [...baseRoles, ...grant.roleIds]
    if (grant.roleIds.length > 0) {
      // The token's roles may make a policy rule match that did not before.
      for (const policy of policies) {
        const rules = policy[attribute]
        const label = `policy ${policy.id} ${attribute} with roles of token ${grant.tokenId}`
        const k = firstPermitting(rules, p, roles, label, detail)
        if (k >= 0) {
          return permitted(reasons, {
            source: 'policy',
            policyId: policy.id,
            attribute,
            ruleIndex: k,
            tokenId: grant.tokenId,
            permissionIndex: grant.permissionIndex,
          })
        }
      }
    }
    considered += grant.rules.length
    const label = `token ${grant.tokenId} permission ${grant.permissionIndex}`
    const k = firstPermitting(grant.rules, p, roles, label, detail)
    if (k >= 0) {
      return permitted(reasons, {
        source: 'token',
        tokenId: grant.tokenId,
        permissionIndex: grant.permissionIndex,
        ruleIndex: k,
      })
    }
  }

  reasons.push(`deny: no applicable rule permits (${considered} rules considered)`)
  return { decision: 'deny', reasons }
}
