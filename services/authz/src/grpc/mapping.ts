/**
 * proto <-> domain conversions: the only place where generated types and domain types meet.
 *
 * A policy from the wire becomes plain JSON with the TS-0004 long names, which the domain
 * validates with `@m2msec/acp` parsePolicy (so error paths read
 * `privileges.accessControlRule[0].accessControlContexts[0].accessControlWindow[0]`). Empty
 * repeated fields and empty strings are left out ("absent"), so that a required element that is
 * empty is reported as missing rather than as an empty list.
 */
import { isIP } from 'node:net'
import type {
  AccessControlContext as AcpContext,
  AccessControlObjectDetails as AcpObjectDetails,
  AccessControlRule as AcpRule,
  Operation as AcpOperation,
  RequestLocation,
  SetOfAcrs as AcpSetOfAcrs,
} from '@m2msec/acp'
import { invalidArgument } from '@m2msec/errors'
import * as pb from '@m2msec/proto/authz/v1'
import type {
  CheckInput,
  CheckResult,
  ExplainResult,
  MatchedPolicyRule,
  PolicyRecord,
  Versioned,
} from '../domain/model.ts'
import type { IssueTokenInput, IssueTokenResult } from '../domain/operations/index.ts'

const OPERATIONS: Readonly<Record<number, AcpOperation>> = {
  [pb.Operation.OPERATION_CREATE]: 'create',
  [pb.Operation.OPERATION_RETRIEVE]: 'retrieve',
  [pb.Operation.OPERATION_UPDATE]: 'update',
  [pb.Operation.OPERATION_DELETE]: 'delete',
  [pb.Operation.OPERATION_NOTIFY]: 'notify',
  [pb.Operation.OPERATION_DISCOVERY]: 'discovery',
}

/** `field` only when the list is not empty. */
function list<K extends string, T>(name: K, values: readonly T[]): { [P in K]?: T[] } {
  return (values.length === 0 ? {} : { [name]: [...values] }) as { [P in K]?: T[] }
}

function contextFromProto(c: pb.AccessControlContext): Record<string, unknown> {
  const ip = c.accessControlIpAddresses
  const region = c.accessControlLocationRegion?.region
  const loc = c.accessControlLocationRegion
  return {
    ...list('accessControlWindow', c.accessControlWindow),
    ...(ip === undefined
      ? {}
      : {
          accessControlIpAddresses: {
            ...list('ipv4Addresses', ip.ipv4Addresses),
            ...list('ipv6Addresses', ip.ipv6Addresses),
          },
        }),
    ...(loc === undefined
      ? {}
      : {
          accessControlLocationRegion:
            region === undefined
              ? {}
              : region.$case === 'countryCode'
                ? { countryCode: [...region.value.codes] }
                : { circRegion: [region.value.latitude, region.value.longitude, region.value.radius] },
        }),
  }
}

function ruleFromProto(r: pb.AccessControlRule): Record<string, unknown> {
  return {
    ...list('accessControlOriginators', r.accessControlOriginators),
    accessControlOperations: r.accessControlOperations,
    ...(r.accessControlContexts.length === 0
      ? {}
      : { accessControlContexts: r.accessControlContexts.map(contextFromProto) }),
    ...(r.accessControlAuthenticationFlag ? { accessControlAuthenticationFlag: true } : {}),
    ...(r.accessControlObjectDetails.length === 0
      ? {}
      : {
          accessControlObjectDetails: r.accessControlObjectDetails.map((d) => ({
            ...list('childResourceType', d.childResourceType),
            ...(d.resourceType === undefined ? {} : { resourceType: d.resourceType }),
            ...(d.specializationType === '' ? {} : { specializationType: d.specializationType }),
          })),
        }),
  }
}

function setOfAcrsFromProto(s: pb.SetOfAcrs | undefined): Record<string, unknown> | undefined {
  return s === undefined ? undefined : { accessControlRule: s.accessControlRule.map(ruleFromProto) }
}

/** A policy from the wire, as untrusted JSON for the domain's parsePolicy. Output-only fields are dropped. */
export function policyFromProto(p: pb.AccessControlPolicy | undefined): unknown {
  if (p === undefined) throw invalidArgument('policy is required', { field: 'policy' })
  const privileges = setOfAcrsFromProto(p.privileges)
  const selfPrivileges = setOfAcrsFromProto(p.selfPrivileges)
  return {
    ...(p.id === '' ? {} : { id: p.id }),
    ...(privileges === undefined ? {} : { privileges }),
    ...(selfPrivileges === undefined ? {} : { selfPrivileges }),
  }
}

function contextToProto(c: AcpContext): pb.AccessControlContext {
  const ip = c.accessControlIpAddresses
  const loc = c.accessControlLocationRegion
  return pb.AccessControlContext.fromPartial({
    accessControlWindow: [...(c.accessControlWindow ?? [])],
    ...(ip === undefined
      ? {}
      : {
          accessControlIpAddresses: {
            ipv4Addresses: [...(ip.ipv4Addresses ?? [])],
            ipv6Addresses: [...(ip.ipv6Addresses ?? [])],
          },
        }),
    ...(loc === undefined
      ? {}
      : {
          accessControlLocationRegion: {
            region:
              'circRegion' in loc
                ? {
                    $case: 'circRegion',
                    value: { latitude: loc.circRegion[0], longitude: loc.circRegion[1], radius: loc.circRegion[2] },
                  }
                : { $case: 'countryCode', value: { codes: [...loc.countryCode] } },
          },
        }),
  })
}

function objectDetailsToProto(d: AcpObjectDetails): pb.AccessControlObjectDetails {
  return pb.AccessControlObjectDetails.fromPartial({
    childResourceType: [...d.childResourceType],
    ...(d.resourceType === undefined ? {} : { resourceType: d.resourceType }),
    specializationType: d.specializationType ?? '',
  })
}

function ruleToProto(r: AcpRule): pb.AccessControlRule {
  return pb.AccessControlRule.fromPartial({
    accessControlOriginators: [...r.accessControlOriginators],
    accessControlOperations: r.accessControlOperations,
    accessControlContexts: (r.accessControlContexts ?? []).map(contextToProto),
    accessControlAuthenticationFlag: r.accessControlAuthenticationFlag === true,
    accessControlObjectDetails: (r.accessControlObjectDetails ?? []).map(objectDetailsToProto),
  })
}

function setOfAcrsToProto(s: AcpSetOfAcrs): pb.SetOfAcrs {
  return { accessControlRule: s.accessControlRule.map(ruleToProto) }
}

/** A stored policy with its revision and bookkeeping. */
export function policyToProto(v: Versioned<PolicyRecord>): pb.AccessControlPolicy {
  const r = v.value
  return pb.AccessControlPolicy.fromPartial({
    id: r.policy.id,
    privileges: setOfAcrsToProto(r.policy.privileges),
    selfPrivileges: setOfAcrsToProto(r.policy.selfPrivileges),
    revision: BigInt(v.revision),
    createTime: new Date(r.createdAt),
    updateTime: new Date(r.updatedAt),
    createdBy: r.createdBy,
    updatedBy: r.updatedBy,
  })
}

/** An optional uint64 revision; values beyond 2^53 cannot be revisions of this store. */
export function revisionFromProto(v: bigint | undefined): number | undefined {
  if (v === undefined) return undefined
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw invalidArgument('expected_revision is out of range', { field: 'expected_revision' })
  }
  return Number(v)
}

function locationFromProto(c: pb.RequestContext): RequestLocation | undefined {
  const cc = c.countryCode === '' ? undefined : c.countryCode
  if (c.location !== undefined) {
    return {
      lat: c.location.latitude,
      lon: c.location.longitude,
      ...(cc === undefined ? {} : { countryCode: cc }),
    }
  }
  return cc === undefined ? undefined : { countryCode: cc }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/**
 * A Check request from the wire; validation of the values is the domain's. Built by assignment
 * rather than object spreads, and the decoded lists are passed on as they are: this runs for
 * every Check and every BatchCheck item.
 */
export function checkFromProto(r: pb.CheckRequest | undefined, field = 'check'): CheckInput {
  if (r === undefined) throw invalidArgument(`${field} is required`, { field })
  const operation = OPERATIONS[r.operation]
  if (operation === undefined) throw invalidArgument('operation is missing or unknown', { field: 'operation' })
  const input: Mutable<CheckInput> = {
    operation,
    targetPolicyIds: r.targetPolicyIds,
    roleIds: r.roleIds,
    groupIds: r.groupIds,
    authenticated: r.authenticated,
  }
  if (r.originator !== '') input.originator = r.originator
  if (r.targetResourceId !== '') input.targetResourceId = r.targetResourceId
  const c = r.context
  if (c !== undefined) {
    const context: { time?: Date; ipAddress?: string; location?: RequestLocation } = {}
    if (c.time !== undefined) context.time = c.time
    if (c.ipAddress !== '') context.ipAddress = c.ipAddress
    const location = locationFromProto(c)
    if (location !== undefined) context.location = location
    input.context = context
  }
  if (r.createdResourceType !== undefined) input.createdResourceType = r.createdResourceType
  if (r.targetResourceType !== undefined) input.targetResourceType = r.targetResourceType
  if (r.createdSpecializationType !== '') input.createdSpecializationType = r.createdSpecializationType
  if (r.isPolicyChange) input.isPolicyChange = true
  if (r.host !== undefined)
    input.host = r.host.cseId === '' ? { spId: r.host.spId } : { spId: r.host.spId, cseId: r.host.cseId }
  if (r.tokens.length > 0) input.tokens = r.tokens
  return input
}

const ATTRIBUTES = {
  privileges: pb.PolicyAttribute.POLICY_ATTRIBUTE_PRIVILEGES,
  selfPrivileges: pb.PolicyAttribute.POLICY_ATTRIBUTE_SELF_PRIVILEGES,
  tokenPrivileges: pb.PolicyAttribute.POLICY_ATTRIBUTE_TOKEN_PRIVILEGES,
} as const

function matchedToProto(m: MatchedPolicyRule): pb.MatchedRule {
  return {
    policyId: m.policyId ?? '',
    attribute: ATTRIBUTES[m.attribute],
    ruleIndex: m.ruleIndex,
    tokenId: m.tokenId ?? '',
    permissionIndex: m.permissionIndex ?? 0,
  }
}

function decisionToProto(result: CheckResult): pb.Decision {
  return result.decision === 'permit' ? pb.Decision.DECISION_PERMIT : pb.Decision.DECISION_DENY
}

const DENY_RESPONSE: pb.CheckResponse = Object.freeze({ decision: pb.Decision.DECISION_DENY, matchedRule: undefined })

/** Every field is set, so the encoder needs no `fromPartial` copy (this runs for every Check). */
export function checkResultToProto(result: CheckResult): pb.CheckResponse {
  const m = result.matched
  if (result.decision === 'deny' || m === undefined) return DENY_RESPONSE
  return { decision: pb.Decision.DECISION_PERMIT, matchedRule: matchedToProto(m) }
}

export function explainResultToProto(result: ExplainResult): pb.ExplainResponse {
  return pb.ExplainResponse.fromPartial({
    decision: decisionToProto(result),
    ...(result.matched === undefined ? {} : { matchedRule: matchedToProto(result.matched) }),
    reasons: [...result.reasons],
  })
}

/** An IssueToken request from the wire (policy rules as untrusted JSON, like PutPolicy). */
export function issueTokenFromProto(r: pb.IssueTokenRequest): IssueTokenInput {
  return {
    holder: r.holder,
    audience: r.audience,
    permissions: r.permissions.map((p) => ({
      ...(p.resourceIds.length === 0 ? {} : { resourceIds: p.resourceIds }),
      ...(p.privileges === undefined ? {} : { privileges: setOfAcrsFromProto(p.privileges) }),
      ...(p.roleIds.length === 0 ? {} : { roleIds: p.roleIds }),
    })),
    ...(r.lifetimeSeconds === 0 ? {} : { lifetimeSeconds: r.lifetimeSeconds }),
    ...(r.notBefore === undefined ? {} : { notBefore: r.notBefore }),
    ...(r.tokenName === '' ? {} : { tokenName: r.tokenName }),
  }
}

export function issueTokenResultToProto(r: IssueTokenResult): pb.IssueTokenResponse {
  return pb.IssueTokenResponse.fromPartial({
    token: r.token,
    tokenId: r.tokenId,
    issuer: r.issuer,
    notBefore: r.notBefore,
    notAfter: r.notAfter,
  })
}

/**
 * The IP address of a grpc-js peer string: `10.1.2.3:5000`, `::1:5000`, `[::1]:5000` (also with
 * an `ipv4:` / `ipv6:` prefix), or undefined when it holds none (unix socket, "unknown").
 */
export function peerIpAddress(peer: string): string | undefined {
  const text = peer.replace(/^ipv[46]:/, '')
  const withoutPort = text.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1')
  for (const candidate of [withoutPort, text]) if (isIP(candidate) !== 0) return candidate
  return undefined
}
