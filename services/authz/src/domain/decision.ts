/**
 * From a PEP's request to an `@m2msec/acp` decision over the caller's tenant index: input
 * validation (a malformed field is ERR_INVALID_ARGUMENT, not a silent DENY, so a PEP bug shows
 * up as an error), defaults (originator = caller, time = now), and the result mapping.
 */
import { decide, isValidCoordinate, parseIpAddress, type AccessRequest, type Decision } from '@m2msec/acp'
import { M2msecError, invalidArgument } from '@m2msec/errors'
import type { Caller, CheckInput, CheckResult, MatchedPolicyRule } from './model.ts'
import { LIMITS, checkCount, validatePolicyId } from './limits.ts'
import type { AuthzDeps } from './ports.ts'

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
  const list = values ?? []
  checkCount(field, list.length, LIMITS.listEntries)
  list.forEach((v, i) => checkId(`${field}[${i}]`, v))
  return list
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
  targetPolicyIds.forEach((id, i) => validatePolicyId(id, `target_policy_ids[${i}]`))
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
    if (loc.countryCode !== undefined && !/^[A-Za-z]{2}$/.test(loc.countryCode)) {
      throw invalidArgument('context.country_code: must be a 2-letter country code', { field: 'context.country_code' })
    }
  }
  if (input.host !== undefined && input.host.spId.replace(/^\/\//, '') === '') {
    throw invalidArgument('host.sp_id: required when host is set', { field: 'host.sp_id' })
  }
  return {
    originator,
    operation: input.operation,
    targetPolicyIds,
    roleIds,
    groupIds,
    authenticated: own || input.authenticated,
    context: {
      time,
      ...(c?.ipAddress === undefined ? {} : { ipAddress: c.ipAddress }),
      ...(loc === undefined ? {} : { location: loc }),
    },
    ...(input.createdResourceType === undefined ? {} : { createdResourceType: input.createdResourceType }),
    ...(input.targetResourceType === undefined ? {} : { targetResourceType: input.targetResourceType }),
    ...(input.createdSpecializationType === undefined || input.createdSpecializationType === ''
      ? {}
      : { createdSpecializationType: input.createdSpecializationType }),
    ...(input.isPolicyChange === true ? { isPolicyChange: true } : {}),
    ...(input.host === undefined ? {} : { host: input.host }),
  }
}

/** Decides over the caller's tenant only. */
export function decideForCaller(
  deps: AuthzDeps,
  caller: Caller,
  request: AccessRequest,
  explain: boolean,
): { result: CheckResult; reasons: readonly string[] } {
  const d: Decision = decide(deps.index.forTenant(caller.tenant), request, { explain })
  const m = d.matched
  // Tokens are not part of this API, so a match is always a policy rule.
  const matched: MatchedPolicyRule | undefined =
    m?.source === 'policy' ? { policyId: m.policyId, attribute: m.attribute, ruleIndex: m.ruleIndex } : undefined
  const result: CheckResult =
    d.decision === 'permit' && matched !== undefined ? { decision: 'permit', matched } : { decision: 'deny' }
  return { result, reasons: d.reasons }
}
