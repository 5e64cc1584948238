/**
 * From a PEP's request to an `@m2msec/acp` decision over the caller's tenant index: input
 * validation (a malformed field is ERR_INVALID_ARGUMENT, not a silent DENY, so a PEP bug shows
 * up as an error), defaults (originator = caller, time = now), and the result mapping.
 */
import {
  decide,
  isValidCoordinate,
  parseIpAddress,
  type AccessRequest,
  type Decision,
  type MatchedRule,
} from '@m2msec/acp'
import { M2msecError, invalidArgument } from '@m2msec/errors'
import { verifyTokens, type VerifiedToken } from './das.ts'
import type { Caller, CheckInput, CheckResult, MatchedPolicyRule } from './model.ts'
import { LIMITS, checkCount, validatePolicyId } from './limits.ts'
import type { AuthzDeps } from './ports.ts'

const NO_IDS: readonly string[] = []
const COUNTRY = /^[A-Za-z]{2}$/

function checkId(field: string, value: string): void {
  if (value.length === 0) throw invalidArgument(`${field}: must not be empty`, { field })
  if (value.length > LIMITS.idLength) {
    throw new M2msecError('ERR_PAYLOAD_TOO_LARGE', `${field}: longer than ${LIMITS.idLength} characters`, {
      field,
      max: LIMITS.idLength,
    })
  }
}

function checkIds(field: string, values: readonly string[] | undefined): readonly string[] {
  if (values === undefined || values.length === 0) return NO_IDS
  checkCount(field, values.length, LIMITS.listEntries)
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as string
    // The field name is built only for an error (this runs on every Check).
    if (v.length === 0 || v.length > LIMITS.idLength) checkId(`${field}[${i}]`, v)
  }
  return values
}

/**
 * Validates a Check input and builds the engine request. The originator defaults to the
 * caller, which is then authenticated (this service authenticated it).
 */
export function toAccessRequest(deps: AuthzDeps, caller: Caller, input: CheckInput): AccessRequest {
  const own = input.originator === undefined || input.originator === ''
  const originator = own ? caller.id : (input.originator as string)
  checkId('originator', originator)
  if (input.targetResourceId !== undefined && input.targetResourceId !== '') {
    checkId('target_resource_id', input.targetResourceId)
  }
  const targetPolicyIds = input.targetPolicyIds
  checkCount('target_policy_ids', targetPolicyIds.length, LIMITS.listEntries)
  for (let i = 0; i < targetPolicyIds.length; i++)
    validatePolicyId(targetPolicyIds[i] as string, 'target_policy_ids', i)
  const roleIds = checkIds('role_ids', input.roleIds)
  const groupIds = checkIds('group_ids', input.groupIds)

  const c = input.context
  const time = c?.time ?? deps.clock.now()
  if (!Number.isFinite(time.getTime()))
    throw invalidArgument('context.time: not a valid time', { field: 'context.time' })
  if (c?.ipAddress !== undefined && parseIpAddress(c.ipAddress) === null) {
    throw invalidArgument('context.ip_address: not an IPv4 or IPv6 address', { field: 'context.ip_address' })
  }
  const loc = c?.location
  if (loc !== undefined) {
    if ('lat' in loc && !isValidCoordinate(loc.lat, loc.lon)) {
      throw invalidArgument('context.location: latitude must be within ±90 and longitude within ±180', {
        field: 'context.location',
      })
    }
    if (loc.countryCode !== undefined && !COUNTRY.test(loc.countryCode)) {
      throw invalidArgument('context.country_code: must be a 2-letter country code', { field: 'context.country_code' })
    }
  }
  if (input.host !== undefined && input.host.spId.replace(/^\/\//, '') === '') {
    throw invalidArgument('host.sp_id: required when host is set', { field: 'host.sp_id' })
  }
  // Built by assignment, not object spreads: this runs on every Check.
  const context: { time: Date; ipAddress?: string; location?: typeof loc } = { time }
  if (c?.ipAddress !== undefined) context.ipAddress = c.ipAddress
  if (loc !== undefined) context.location = loc
  const request: { -readonly [K in keyof AccessRequest]: AccessRequest[K] } = {
    originator,
    operation: input.operation,
    targetPolicyIds,
    roleIds,
    groupIds,
    authenticated: own || input.authenticated,
    context: context as AccessRequest['context'],
  }
  if (input.createdResourceType !== undefined) request.createdResourceType = input.createdResourceType
  if (input.targetResourceType !== undefined) request.targetResourceType = input.targetResourceType
  if (input.createdSpecializationType !== undefined && input.createdSpecializationType !== '') {
    request.createdSpecializationType = input.createdSpecializationType
  }
  if (input.isPolicyChange === true) request.isPolicyChange = true
  if (input.host !== undefined) request.host = input.host
  return request
}

/**
 * Verifies the request's oneM2M tokens (see `das.ts`) and adds their grants to `request`.
 * Throws the typed token errors.
 */
export async function withTokens(
  deps: AuthzDeps,
  caller: Caller,
  input: CheckInput,
  request: AccessRequest,
): Promise<{ request: AccessRequest; tokens: VerifiedToken[] }> {
  const tokens = await verifyTokens(deps.das, input.tokens ?? NO_IDS, {
    tenant: caller.tenant,
    originator: request.originator,
    host: request.host,
    time: request.context.time,
    targetResourceId: input.targetResourceId,
  })
  return { request: { ...request, tokenGrants: tokens.flatMap((t) => t.grants) }, tokens }
}

function matchedOf(m: MatchedRule | undefined): MatchedPolicyRule | undefined {
  if (m === undefined) return undefined
  if (m.source === 'token') {
    return {
      attribute: 'tokenPrivileges',
      ruleIndex: m.ruleIndex,
      tokenId: m.tokenId,
      permissionIndex: m.permissionIndex,
    }
  }
  if (m.tokenId === undefined) return { policyId: m.policyId, attribute: m.attribute, ruleIndex: m.ruleIndex }
  return {
    policyId: m.policyId,
    attribute: m.attribute,
    ruleIndex: m.ruleIndex,
    tokenId: m.tokenId,
    permissionIndex: m.permissionIndex ?? 0,
  }
}

const EXPLAIN = { explain: true } as const
const PLAIN = {} as const
const DENY: CheckResult = { decision: 'deny' }

/** Decides over the caller's tenant only. */
export function decideForCaller(
  deps: AuthzDeps,
  caller: Caller,
  request: AccessRequest,
  explain: boolean,
): { result: CheckResult; reasons: readonly string[] } {
  const d: Decision = decide(deps.index.forTenant(caller.tenant), request, explain ? EXPLAIN : PLAIN)
  const matched = matchedOf(d.matched)
  const result: CheckResult = d.decision === 'permit' && matched !== undefined ? { decision: 'permit', matched } : DENY
  return { result, reasons: d.reasons }
}
