/**
 * Table-driven test of the access decision, written from the specification text (TS-0003
 * V3.18.0 §7.1.2–§7.1.5, TS-0004 V3.32.0 tables 6.3.4.2.29-1, 6.3.5.27-1, 6.3.5.28-1,
 * 7.3.3.15-1, 7.4.9.1-4). Each case quotes the sentence it checks.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import {
  compilePolicies,
  decide,
  EARTH_RADIUS_M,
  OPERATION_BITS,
  type AccessControlContext,
  type AccessControlObjectDetails,
  type AccessControlPolicy,
  type AccessControlRule,
  type AccessRequest,
  type Operation,
} from '../src/index.ts'

// ---------------------------------------------------------------------------------------------
// Fixture helpers

/** A Tuesday, 02:03:04 UTC. */
const T0 = new Date('2025-03-04T02:03:04Z')
const ME = '//sp.example/cse1/Cae1'
const HOST = { spId: 'sp.example', cseId: 'cse1' } as const

type RuleSpec = Partial<AccessControlRule>

function rule(spec: RuleSpec = {}): AccessControlRule {
  return { accessControlOriginators: [ME], accessControlOperations: 63, ...spec }
}

function acp(
  id: string,
  rules: RuleSpec[],
  selfRules: RuleSpec[] = [{ accessControlOriginators: ['/cse1/admin'] }],
): AccessControlPolicy {
  return {
    id,
    privileges: { accessControlRule: rules.map(rule) },
    selfPrivileges: { accessControlRule: selfRules.map(rule) },
  }
}

/** One policy `acp` with one rule. */
function one(spec: RuleSpec): AccessControlPolicy[] {
  return [acp('acp', [spec])]
}

function ctx(c: AccessControlContext): RuleSpec {
  return { accessControlContexts: [c] }
}

function objd(...d: AccessControlObjectDetails[]): RuleSpec {
  return { accessControlObjectDetails: d }
}

/** The point `metres` north of (lat, lon): along a meridian the haversine distance is exact. */
function north(lat: number, lon: number, metres: number): { lat: number; lon: number } {
  return { lat: lat + (metres / EARTH_RADIUS_M) * (180 / Math.PI), lon }
}

type RequestSpec = Partial<Omit<AccessRequest, 'context'>> & {
  context?: Partial<AccessRequest['context']>
  /** Leave out `host` (the hosting SP/CSE is unknown). */
  noHost?: true
}

function request(spec: RequestSpec = {}): AccessRequest {
  const { noHost, ...r } = spec
  const out: AccessRequest = {
    originator: ME,
    operation: 'retrieve',
    targetPolicyIds: ['acp'],
    authenticated: true,
    host: HOST,
    ...r,
    context: { time: T0, ...r.context },
  }
  if (noHost === true) {
    const { host: _host, ...rest } = out
    return rest
  }
  return out
}

interface Case {
  /** The specification sentence (or table row) the case checks. */
  readonly spec: string
  readonly name: string
  readonly policies: AccessControlPolicy[]
  readonly request: RequestSpec
  readonly expect: 'permit' | 'deny'
  /** For a permit: `policyId/attribute[ruleIndex]`. */
  readonly matched?: string
}

// ---------------------------------------------------------------------------------------------
// The table

const OPS = Object.keys(OPERATION_BITS) as Operation[]

const S_OPS =
  'res_ops(k) = ismember(Operation, acr(k)_accessControlOperations) [TS-0003 §7.1.5]; CREATE = 1, RETRIEVE = 2, UPDATE = 4, DELETE = 8, NOTIFY = 16, DISCOVERY = 32 [TS-0004 table 6.3.4.2.29-1]'
const S_DISC =
  'the Discovery operation is indicated by op = Retrieve in combination with the provisioning of fc [TS-0003 §7.1.3]: Discovery has its own bit'
const S_ORIG = 'res_origs(k) = ismember(Originator, acr(k)_accessControlOriginators) [TS-0003 §7.1.5]'
const S_ALL =
  'If access for all originators is to be allowed, the reserved keyword "all" may be included [TS-0003 §7.1.3]'
const S_DOMAIN =
  'Using a SP domain name in accessControlOriginators means all AE-IDs and CSE-IDs matching the given domain name can be authorized [TS-0003 §7.1.3]'
const S_WILD =
  'It is furthermore allowed to use wildcard character "*", in representations of CSE-ID and AE-ID. The scope of a "*" is terminated by a following "/" character [TS-0003 §7.1.3, table 7.1.3-2]'
const S_SPREL =
  'SP-relative /myCSE*/C98*: Any matching AE from the SP that is hosting the target resource [TS-0003 table 7.1.3-2]'
const S_GROUP =
  'If the accessControlOriginators includes a groupID, the Hosting CSE checks if the Originator is a member of that group resource [TS-0004 §7.3.3.15]'
const S_ROLE =
  'Role IDs: Evaluated against accessControlOriginators in privileges and selfPrivileges attributes [TS-0003 table 7.1.2-1]'
const S_NOWILD =
  'Wildcard characters are not applicable to SP domain names, resource-IDs of <group> resources and Role IDs [TS-0003 §7.1.3]'
const S_AUTHN = 'Table 7.1.5-1: Evaluating res_authn(k)'
const S_AUTHN_ABSENT =
  'If the accessControlAuthenticationFlag parameter is not present, then the value is assumed to be FALSE [TS-0003 §7.1.3]'
const S_CTX = 'res_context(k, m) = res_time(k, m) AND res_ip(k, m) AND res_loc(k, m) [TS-0003 §7.1.5]'
const S_CTXS = 'res_ctxts(k) = res_context(k, 1) ... OR res_context(k, M_k) [TS-0003 §7.1.5]'
const S_PAIR = 'For pairs, any context parameters associated with a request message are admissible [TS-0003 §7.1.3]'
const S_TIME =
  'res_time(k, m) = ismember(rq_time, acr(k)_accessControlWindow(m)); "* 0-5 2,6,10 * * * *" = 2:00-2:05, 6:00-6:05, 10:00-10:05; matched in UTC [TS-0004 §7.4.9.1]'
const S_IP =
  'res_ip(k, m) = ismember(rq_ip, acr(k)_accessControlIpAddresses(m)); IPv4: dotted-decimal notation with CIDR suffix; IPv6 with CIDR suffix [TS-0003 table 7.1.3-3]'
const S_CIRC =
  'a circle with radius R centred at a point defined in terms of longitude and latitude parameters [TS-0003 §7.1.3]'
const S_COUNTRY = 'represented by a 2-character country code [TS-0003 §7.1.3]'
const S_INDET =
  'or the access decision algorithm is not capable of deriving a final result (e.g. due to indeterminate parameters), then the access decision ... shall be "Deny" [TS-0003 §7.1.4]'
const S_OBJD = 'res_childResource(k, m) = ismember(Resource Type, childResourceType(k, m, j)) [TS-0003 §7.1.5]'
const S_OBJD_CREATE =
  'The fourth partial logical result res_objd(k) applies to Create request primitives only [TS-0003 §7.1.5]'
const S_OBJD_NONE =
  'An access control rule which does not include any accessControlObjectDetails parameters applies to all child resource types of the target resource [TS-0003 §7.1.3]'
const S_OBJD_RT =
  'If either the resourceType or specializationType element is present ... the CSE matches the type of resource or specialization ... Further checking of childResourceType is done only if the resourceType or specializationType match occurs [TS-0003 §7.1.3]'
const S_OBJD_SPTY =
  'If specializationType is present, it shall be matched against the mgmtDefinition or containerDefinition attributes given in the Content parameter of the Create request primitive [TS-0003 §7.1.5]'
const S_PO =
  'If a decision is "Permit" for only a single access control rule included in the privileges (or selfPrivileges) attribute of a single ACP, the result is "Permit". Otherwise, the result is "Deny" [TS-0003 §7.1.5]'
const S_EARLY =
  'if the access control decision for one access control rule results in res_acr = TRUE, the reference access decision algorithm can stop [TS-0003 §7.1.5]'
const S_SELF =
  "Access requests to ACP's itself are evaluated against the selfPrivileges attribute of that ACP. Access requests to instances of all other resource types, are evaluated against the privileges attributes [TS-0003 §7.1.1]"
const S_DEFAULT =
  'If the access decision algorithm yields the result res_acrs = FALSE ... the access decision for the requested resource shall be "Deny" [TS-0003 §7.1.4]'

const CIRCLE: [number, number, number] = [48.8566, 2.3522, 1000]

const cases: Case[] = [
  // --- accessControlOperations: each bit --------------------------------------------------
  ...OPS.flatMap((op): Case[] => [
    {
      spec: S_OPS,
      name: `only the ${op} bit (${OPERATION_BITS[op]}) permits ${op}`,
      policies: one({ accessControlOperations: OPERATION_BITS[op] }),
      request: { operation: op },
      expect: 'permit',
      matched: 'acp/privileges[0]',
    },
    {
      spec: S_OPS,
      name: `every bit except ${op} (${63 - OPERATION_BITS[op]}) denies ${op}`,
      policies: one({ accessControlOperations: 63 - OPERATION_BITS[op] }),
      request: { operation: op },
      expect: 'deny',
    },
  ]),
  {
    spec: S_DISC,
    name: 'RETRIEVE bit does not permit discovery',
    policies: one({ accessControlOperations: 2 }),
    request: { operation: 'discovery' },
    expect: 'deny',
  },
  {
    spec: S_DISC,
    name: 'DISCOVERY bit does not permit retrieve',
    policies: one({ accessControlOperations: 32 }),
    request: { operation: 'retrieve' },
    expect: 'deny',
  },
  {
    spec: S_OPS,
    name: 'C+U (5) permits update',
    policies: one({ accessControlOperations: 5 }),
    request: { operation: 'update' },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },

  // --- accessControlOriginators ------------------------------------------------------------
  {
    spec: S_ORIG,
    name: 'exact absolute AE-ID permits',
    policies: one({ accessControlOriginators: [ME] }),
    request: {},
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_ORIG,
    name: 'another AE-ID denies',
    policies: one({ accessControlOriginators: ['//sp.example/cse1/Cae2'] }),
    request: {},
    expect: 'deny',
  },
  {
    spec: S_ORIG,
    name: 'a prefix of the id is not a match',
    policies: one({ accessControlOriginators: ['//sp.example/cse1/Cae'] }),
    request: {},
    expect: 'deny',
  },
  {
    spec: S_ALL,
    name: '"all" permits an originator of another SP',
    policies: one({ accessControlOriginators: ['all'] }),
    request: { originator: '//other.example/x/Cz' },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_ALL,
    name: '"all" permits an unauthenticated originator when the flag is absent',
    policies: one({ accessControlOriginators: ['all'] }),
    request: { originator: 'Cnew', authenticated: false },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_DOMAIN,
    name: 'SP domain permits an absolute AE-ID under it',
    policies: one({ accessControlOriginators: ['//sp.example'] }),
    request: { originator: '//sp.example/cse9/Cx' },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_DOMAIN,
    name: 'SP domain permits an absolute CSE-ID under it',
    policies: one({ accessControlOriginators: ['//sp.example'] }),
    request: { originator: '//sp.example/cse9' },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_DOMAIN,
    name: 'SP domain permits an SP-relative originator when it is the hosting SP',
    policies: one({ accessControlOriginators: ['//sp.example'] }),
    request: { originator: '/cse9/Cx' },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_DOMAIN,
    name: 'SP domain permits a CSE-relative originator of the hosting CSE',
    policies: one({ accessControlOriginators: ['//sp.example'] }),
    request: { originator: 'Cae1' },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_DOMAIN,
    name: 'SP domain denies an originator of another SP',
    policies: one({ accessControlOriginators: ['//sp.example'] }),
    request: { originator: '//other.example/cse1/Cae1' },
    expect: 'deny',
  },
  {
    spec: S_DOMAIN,
    name: 'SP domain denies a domain that only shares a suffix',
    policies: one({ accessControlOriginators: ['//example'] }),
    request: { originator: '//sp.example/cse1/Cae1' },
    expect: 'deny',
  },
  {
    spec: S_DOMAIN + ' (hosting SP unknown: indeterminate)',
    name: 'SP domain denies an SP-relative originator when the hosting SP is not given',
    policies: one({ accessControlOriginators: ['//sp.example'] }),
    request: { originator: '/cse9/Cx', noHost: true },
    expect: 'deny',
  },
  {
    spec: S_WILD,
    name: '//*/myCSEID permits that CSE-ID at any SP',
    policies: one({ accessControlOriginators: ['//*/myCSEID'] }),
    request: { originator: '//m2msp.org/myCSEID' },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_WILD,
    name: '//*/myCSE* permits //m2msp.org/myCSE42',
    policies: one({ accessControlOriginators: ['//*/myCSE*'] }),
    request: { originator: '//m2msp.org/myCSE42' },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_WILD,
    name: '"*" matches zero characters: //*/myCSE* permits //m2msp.org/myCSE',
    policies: one({ accessControlOriginators: ['//*/myCSE*'] }),
    request: { originator: '//m2msp.org/myCSE' },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_WILD,
    name: '"*" does not cross "/": //*/myCSE* denies the AE //m2msp.org/myCSE1/C1',
    policies: one({ accessControlOriginators: ['//*/myCSE*'] }),
    request: { originator: '//m2msp.org/myCSE1/C1' },
    expect: 'deny',
  },
  {
    spec: S_WILD,
    name: '//*/myCSE*/C9886 permits //m2msp.org/myCSE7/C9886',
    policies: one({ accessControlOriginators: ['//*/myCSE*/C9886'] }),
    request: { originator: '//m2msp.org/myCSE7/C9886' },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_WILD,
    name: '//*/myCSE*/C9886 denies //m2msp.org/yourCSE/C9886',
    policies: one({ accessControlOriginators: ['//*/myCSE*/C9886'] }),
    request: { originator: '//m2msp.org/yourCSE/C9886' },
    expect: 'deny',
  },
  {
    spec: S_SPREL,
    name: '/myCSE*/C98* permits /myCSE1/C9812',
    policies: one({ accessControlOriginators: ['/myCSE*/C98*'] }),
    request: { originator: '/myCSE1/C9812' },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_SPREL,
    name: '/myCSE*/C98* permits the absolute id of the hosting SP //sp.example/myCSE1/C9812',
    policies: one({ accessControlOriginators: ['/myCSE*/C98*'] }),
    request: { originator: '//sp.example/myCSE1/C9812' },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_SPREL,
    name: '/myCSE*/C98* denies the same path at another SP',
    policies: one({ accessControlOriginators: ['/myCSE*/C98*'] }),
    request: { originator: '//other.example/myCSE1/C9812' },
    expect: 'deny',
  },
  {
    spec: S_SPREL,
    name: '/SmyAE* permits the S-type AE /SmyAE77',
    policies: one({ accessControlOriginators: ['/SmyAE*'] }),
    request: { originator: '/SmyAE77' },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_SPREL,
    name: '/myCSEID/C9886 (SP-relative) permits the CSE-relative originator C9886 registered with myCSEID',
    policies: one({ accessControlOriginators: ['/myCSEID/C9886'] }),
    request: { originator: 'C9886', host: { spId: '//sp.example', cseId: '/myCSEID' } },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: `${S_ORIG} (a CSE-relative AE-ID names an AE registered with the hosting CSE)`,
    name: 'CSE-relative Cae1 permits the absolute id of that AE',
    policies: one({ accessControlOriginators: ['Cae1'] }),
    request: {},
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: `${S_WILD} (CSE-relative form)`,
    name: 'CSE-relative Cae* permits //sp.example/cse1/Cae1',
    policies: one({ accessControlOriginators: ['Cae*'] }),
    request: {},
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: `${S_ORIG} (hosting CSE unknown: forms cannot be compared)`,
    name: 'CSE-relative Cae1 denies //sp.example/cse1/Cae1 when the host is not given',
    policies: one({ accessControlOriginators: ['Cae1'] }),
    request: { noHost: true },
    expect: 'deny',
  },
  {
    spec: S_GROUP,
    name: 'a group id permits a member',
    policies: one({ accessControlOriginators: ['/cse1/grp-1'] }),
    request: { groupIds: ['/cse1/grp-0', '/cse1/grp-1'] },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_GROUP,
    name: 'a group id denies a non-member',
    policies: one({ accessControlOriginators: ['/cse1/grp-1'] }),
    request: { groupIds: ['/cse1/grp-2'] },
    expect: 'deny',
  },
  {
    spec: S_NOWILD,
    name: 'a wildcard never matches a group id',
    policies: one({ accessControlOriginators: ['/cse1/grp-*'] }),
    request: { groupIds: ['/cse1/grp-1'] },
    expect: 'deny',
  },
  {
    spec: S_ROLE,
    name: 'a Role-ID permits an originator holding the role',
    policies: one({ accessControlOriginators: ['R-operator'] }),
    request: { roleIds: ['R-operator'] },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_ROLE,
    name: 'a Role-ID denies an originator without the role',
    policies: one({ accessControlOriginators: ['R-operator'] }),
    request: { roleIds: ['R-viewer'] },
    expect: 'deny',
  },
  {
    spec: S_NOWILD,
    name: 'a wildcard never matches a role id',
    policies: one({ accessControlOriginators: ['R-*'] }),
    request: { roleIds: ['R-operator'], originator: '//other.example/x/y' },
    expect: 'deny',
  },

  // --- accessControlAuthenticationFlag: the four rows of table 7.1.5-1 and absence ---------
  {
    spec: `${S_AUTHN}: TRUE, TRUE -> TRUE`,
    name: 'flag true, authenticated',
    policies: one({ accessControlAuthenticationFlag: true }),
    request: { authenticated: true },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: `${S_AUTHN}: TRUE, FALSE -> FALSE`,
    name: 'flag true, not authenticated',
    policies: one({ accessControlAuthenticationFlag: true }),
    request: { authenticated: false },
    expect: 'deny',
  },
  {
    spec: `${S_AUTHN}: FALSE, TRUE -> TRUE`,
    name: 'flag false, authenticated',
    policies: one({ accessControlAuthenticationFlag: false }),
    request: { authenticated: true },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: `${S_AUTHN}: FALSE, FALSE -> TRUE`,
    name: 'flag false, not authenticated',
    policies: one({ accessControlAuthenticationFlag: false }),
    request: { authenticated: false },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_AUTHN_ABSENT,
    name: 'flag absent, not authenticated',
    policies: one({}),
    request: { authenticated: false },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },

  // --- accessControlWindow -------------------------------------------------------------------
  {
    spec: S_TIME,
    name: 'window start 02:00:00 permits',
    policies: one(ctx({ accessControlWindow: ['* 0-5 2,6,10 * * * *'] })),
    request: { context: { time: new Date('2025-03-04T02:00:00Z') } },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_TIME,
    name: 'window end 02:05:59 permits',
    policies: one(ctx({ accessControlWindow: ['* 0-5 2,6,10 * * * *'] })),
    request: { context: { time: new Date('2025-03-04T02:05:59.999Z') } },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_TIME,
    name: 'just after the window 02:06:00 denies',
    policies: one(ctx({ accessControlWindow: ['* 0-5 2,6,10 * * * *'] })),
    request: { context: { time: new Date('2025-03-04T02:06:00Z') } },
    expect: 'deny',
  },
  {
    spec: S_TIME,
    name: 'just before the window 01:59:59 denies',
    policies: one(ctx({ accessControlWindow: ['* 0-5 2,6,10 * * * *'] })),
    request: { context: { time: new Date('2025-03-04T01:59:59Z') } },
    expect: 'deny',
  },
  {
    spec: S_TIME,
    name: 'the window is in UTC: 03:03 at +01:00 permits',
    policies: one(ctx({ accessControlWindow: ['* 0-5 2,6,10 * * * *'] })),
    request: { context: { time: new Date('2025-03-04T03:03:00+01:00') } },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_TIME,
    name: 'any window of the list permits (ismember over the list)',
    policies: one(ctx({ accessControlWindow: ['* * 20 * * * *', '* * 2 * * * *'] })),
    request: {},
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_TIME,
    name: 'day of week: a Tuesday-only window (2) permits on Tuesday',
    policies: one(ctx({ accessControlWindow: ['* * * * * 2 *'] })),
    request: {},
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_TIME,
    name: 'year: a 2026-only window denies in 2025',
    policies: one(ctx({ accessControlWindow: ['* * * * * * 2026'] })),
    request: {},
    expect: 'deny',
  },
  {
    spec: S_INDET,
    name: 'an invalid request time is indeterminate and denies',
    policies: one(ctx({ accessControlWindow: ['* * * * * * *'] })),
    request: { context: { time: new Date('invalid') } },
    expect: 'deny',
  },

  // --- accessControlIpAddresses ---------------------------------------------------------------
  {
    spec: S_IP,
    name: 'IPv4 /16 first address permits',
    policies: one(ctx({ accessControlIpAddresses: { ipv4Addresses: ['10.125.0.0/16'] } })),
    request: { context: { ipAddress: '10.125.0.0' } },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_IP,
    name: 'IPv4 /16 last address permits',
    policies: one(ctx({ accessControlIpAddresses: { ipv4Addresses: ['10.125.0.0/16'] } })),
    request: { context: { ipAddress: '10.125.255.255' } },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_IP,
    name: 'IPv4 just above the /16 denies',
    policies: one(ctx({ accessControlIpAddresses: { ipv4Addresses: ['10.125.0.0/16'] } })),
    request: { context: { ipAddress: '10.126.0.0' } },
    expect: 'deny',
  },
  {
    spec: S_IP,
    name: 'IPv4 just below the /16 denies',
    policies: one(ctx({ accessControlIpAddresses: { ipv4Addresses: ['10.125.0.0/16'] } })),
    request: { context: { ipAddress: '10.124.255.255' } },
    expect: 'deny',
  },
  {
    spec: S_IP,
    name: 'a bare IPv4 address is one host',
    policies: one(ctx({ accessControlIpAddresses: { ipv4Addresses: ['122.77.12.1'] } })),
    request: { context: { ipAddress: '122.77.12.2' } },
    expect: 'deny',
  },
  {
    spec: S_IP,
    name: 'IPv6 /32 last address permits',
    policies: one(ctx({ accessControlIpAddresses: { ipv6Addresses: ['Fadf:ddd0::/32'] } })),
    request: { context: { ipAddress: 'fadf:ddd0:ffff:ffff:ffff:ffff:ffff:ffff' } },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_IP,
    name: 'IPv6 just above the /32 denies',
    policies: one(ctx({ accessControlIpAddresses: { ipv6Addresses: ['Fadf:ddd0::/32'] } })),
    request: { context: { ipAddress: 'fadf:ddd1::' } },
    expect: 'deny',
  },
  {
    spec: S_IP,
    name: 'IPv6 /64 edge: abcd:ffff:abb0:aaab:: denies',
    policies: one(ctx({ accessControlIpAddresses: { ipv6Addresses: ['abcd:ffff:abb0:aaaa::/64'] } })),
    request: { context: { ipAddress: 'abcd:ffff:abb0:aaab::' } },
    expect: 'deny',
  },
  {
    spec: S_IP,
    name: 'either list may permit (ipv4 and ipv6 both given)',
    policies: one(
      ctx({
        accessControlIpAddresses: {
          ipv4Addresses: ['10.0.0.0/8'],
          ipv6Addresses: ['2001:db8::/32'],
        },
      }),
    ),
    request: { context: { ipAddress: '2001:db8::5' } },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: `${S_IP} (IPv4-mapped IPv6 source is the IPv4 host)`,
    name: '::ffff:10.125.3.4 matches 10.125.0.0/16',
    policies: one(ctx({ accessControlIpAddresses: { ipv4Addresses: ['10.125.0.0/16'] } })),
    request: { context: { ipAddress: '::ffff:10.125.3.4' } },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: `${S_IP} (an IPv4 source matches an IPv6 block through its mapped form)`,
    name: '10.125.3.4 matches ::ffff:10.125.0.0/112',
    policies: one(ctx({ accessControlIpAddresses: { ipv6Addresses: ['::ffff:10.125.0.0/112'] } })),
    request: { context: { ipAddress: '10.125.3.4' } },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_INDET,
    name: 'no rq_ip: an IP context is indeterminate and denies',
    policies: one(ctx({ accessControlIpAddresses: { ipv4Addresses: ['0.0.0.0/0'] } })),
    request: {},
    expect: 'deny',
  },
  {
    spec: S_INDET,
    name: 'a malformed rq_ip is indeterminate and denies',
    policies: one(ctx({ accessControlIpAddresses: { ipv4Addresses: ['0.0.0.0/0'] } })),
    request: { context: { ipAddress: '10.1.2' } },
    expect: 'deny',
  },

  // --- accessControlLocationRegion -------------------------------------------------------------
  {
    spec: S_CIRC,
    name: 'a point 999 m from the centre permits',
    policies: one(ctx({ accessControlLocationRegion: { circRegion: CIRCLE } })),
    request: { context: { location: north(CIRCLE[0], CIRCLE[1], 999) } },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_CIRC,
    name: 'a point 1001 m from the centre denies',
    policies: one(ctx({ accessControlLocationRegion: { circRegion: CIRCLE } })),
    request: { context: { location: north(CIRCLE[0], CIRCLE[1], 1001) } },
    expect: 'deny',
  },
  {
    spec: S_CIRC,
    name: 'the centre itself permits',
    policies: one(ctx({ accessControlLocationRegion: { circRegion: CIRCLE } })),
    request: { context: { location: { lat: CIRCLE[0], lon: CIRCLE[1] } } },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_INDET,
    name: 'a circle with no rq_loc is indeterminate and denies',
    policies: one(ctx({ accessControlLocationRegion: { circRegion: CIRCLE } })),
    request: {},
    expect: 'deny',
  },
  {
    spec: S_INDET,
    name: 'a circle with only a country in rq_loc is indeterminate and denies',
    policies: one(ctx({ accessControlLocationRegion: { circRegion: CIRCLE } })),
    request: { context: { location: { countryCode: 'FR' } } },
    expect: 'deny',
  },
  {
    spec: S_INDET,
    name: 'out-of-range request coordinates are indeterminate and deny',
    policies: one(ctx({ accessControlLocationRegion: { circRegion: [0, 0, 1e9] } })),
    request: { context: { location: { lat: 91, lon: 0 } } },
    expect: 'deny',
  },
  {
    spec: S_COUNTRY,
    name: 'a listed country permits',
    policies: one(ctx({ accessControlLocationRegion: { countryCode: ['FR', 'DE'] } })),
    request: { context: { location: { countryCode: 'DE' } } },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_COUNTRY,
    name: 'country codes compare case-insensitively',
    policies: one(ctx({ accessControlLocationRegion: { countryCode: ['FR'] } })),
    request: { context: { location: { countryCode: 'fr' } } },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_COUNTRY,
    name: 'an unlisted country denies',
    policies: one(ctx({ accessControlLocationRegion: { countryCode: ['FR', 'DE'] } })),
    request: { context: { location: { countryCode: 'ES' } } },
    expect: 'deny',
  },
  {
    spec: S_INDET,
    name: 'a country list with only coordinates in rq_loc is indeterminate and denies',
    policies: one(ctx({ accessControlLocationRegion: { countryCode: ['FR'] } })),
    request: { context: { location: { lat: 48.8566, lon: 2.3522 } } },
    expect: 'deny',
  },
  {
    spec: S_COUNTRY,
    name: 'coordinates with a country code satisfy a country list',
    policies: one(ctx({ accessControlLocationRegion: { countryCode: ['FR'] } })),
    request: { context: { location: { lat: 48.8566, lon: 2.3522, countryCode: 'FR' } } },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },

  // --- combining contexts ------------------------------------------------------------------------
  {
    spec: S_CTX,
    name: 'time matches but IP does not: AND denies',
    policies: one(
      ctx({
        accessControlWindow: ['* * 2 * * * *'],
        accessControlIpAddresses: { ipv4Addresses: ['10.0.0.0/8'] },
      }),
    ),
    request: { context: { ipAddress: '192.168.1.1' } },
    expect: 'deny',
  },
  {
    spec: S_CTX,
    name: 'time, IP and location all match: permits',
    policies: one(
      ctx({
        accessControlWindow: ['* * 2 * * * *'],
        accessControlIpAddresses: { ipv4Addresses: ['10.0.0.0/8'] },
        accessControlLocationRegion: { countryCode: ['FR'] },
      }),
    ),
    request: { context: { ipAddress: '10.9.9.9', location: { countryCode: 'FR' } } },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: `${S_CTX} (absent element admits any value: open point 9 of the digest)`,
    name: 'a context with only a window does not need rq_ip or rq_loc',
    policies: one(ctx({ accessControlWindow: ['* * 2 * * * *'] })),
    request: {},
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_CTXS,
    name: 'the second context element permits when the first does not',
    policies: one({
      accessControlContexts: [
        { accessControlIpAddresses: { ipv4Addresses: ['10.0.0.0/8'] } },
        { accessControlIpAddresses: { ipv4Addresses: ['192.168.0.0/16'] } },
      ],
    }),
    request: { context: { ipAddress: '192.168.1.1' } },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: `${S_CTXS}; ${S_INDET} (OR with an indeterminate element is still TRUE when another is TRUE)`,
    name: 'an indeterminate context does not block a matching one',
    policies: one({
      accessControlContexts: [
        { accessControlLocationRegion: { circRegion: CIRCLE } },
        { accessControlWindow: ['* * 2 * * * *'] },
      ],
    }),
    request: {},
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: `${S_CTX}; ${S_INDET} (FALSE AND indeterminate is FALSE)`,
    name: 'a failing window with a missing location denies',
    policies: one(
      ctx({
        accessControlWindow: ['* * 9 * * * *'],
        accessControlLocationRegion: { circRegion: CIRCLE },
      }),
    ),
    request: {},
    expect: 'deny',
  },
  {
    spec: S_PAIR,
    name: 'a rule without contexts permits whatever the context (no IP, no location)',
    policies: one({}),
    request: { context: { time: new Date('2031-12-31T23:59:59Z') } },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },

  // --- accessControlObjectDetails (CREATE) --------------------------------------------------------
  {
    spec: S_OBJD,
    name: 'CREATE of a listed child type permits',
    policies: one(objd({ childResourceType: [4] })),
    request: { operation: 'create', createdResourceType: 4 },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_OBJD,
    name: 'CREATE of an unlisted child type denies',
    policies: one(objd({ childResourceType: [4] })),
    request: { operation: 'create', createdResourceType: 3 },
    expect: 'deny',
  },
  {
    spec: S_OBJD,
    name: 'any element of accessControlObjectDetails may permit (OR over m)',
    policies: one(objd({ childResourceType: [4] }, { childResourceType: [3, 23] })),
    request: { operation: 'create', createdResourceType: 23 },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_OBJD_CREATE,
    name: 'object details do not restrict RETRIEVE',
    policies: one(objd({ childResourceType: [4] })),
    request: { operation: 'retrieve' },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_OBJD_CREATE,
    name: 'object details do not restrict UPDATE',
    policies: one(objd({ childResourceType: [4] })),
    request: { operation: 'update', createdResourceType: 3 },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_OBJD_NONE,
    name: 'a rule without object details permits CREATE of any type',
    policies: one({}),
    request: { operation: 'create', createdResourceType: 23 },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_OBJD_RT,
    name: 'resourceType equal to the target type, child listed: permits',
    policies: one(objd({ resourceType: 3, childResourceType: [4] })),
    request: { operation: 'create', targetResourceType: 3, createdResourceType: 4 },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_OBJD_RT,
    name: 'resourceType different from the target type: denies',
    policies: one(objd({ resourceType: 3, childResourceType: [4] })),
    request: { operation: 'create', targetResourceType: 2, createdResourceType: 4 },
    expect: 'deny',
  },
  {
    spec: `${S_OBJD_RT}; ${S_INDET}`,
    name: 'resourceType given but the request has no target type: denies',
    policies: one(objd({ resourceType: 3, childResourceType: [4] })),
    request: { operation: 'create', createdResourceType: 4 },
    expect: 'deny',
  },
  {
    spec: S_OBJD_SPTY,
    name: 'matching specializationType permits',
    policies: one(objd({ resourceType: 14, specializationType: '1001', childResourceType: [13] })),
    request: {
      operation: 'create',
      targetResourceType: 14,
      createdResourceType: 13,
      createdSpecializationType: '1001',
    },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_OBJD_SPTY,
    name: 'another specializationType denies',
    policies: one(objd({ resourceType: 14, specializationType: '1001', childResourceType: [13] })),
    request: {
      operation: 'create',
      targetResourceType: 14,
      createdResourceType: 13,
      createdSpecializationType: '1002',
    },
    expect: 'deny',
  },
  {
    spec: `${S_OBJD_SPTY}; ${S_INDET}`,
    name: 'specializationType given but the request has none: denies',
    policies: one(objd({ specializationType: '1001', childResourceType: [13] })),
    request: { operation: 'create', createdResourceType: 13 },
    expect: 'deny',
  },
  {
    spec: `${S_OBJD}; ${S_INDET}`,
    name: 'CREATE without a Resource Type against object details: denies',
    policies: one(objd({ childResourceType: [4] })),
    request: { operation: 'create' },
    expect: 'deny',
  },

  // --- permit-overrides across policies -------------------------------------------------------------
  {
    spec: S_PO,
    name: 'first policy does not apply, second permits',
    policies: [acp('acp-a', [{ accessControlOriginators: ['//sp.example/cse1/other'] }]), acp('acp-b', [{}])],
    request: { targetPolicyIds: ['acp-a', 'acp-b'] },
    expect: 'permit',
    matched: 'acp-b/privileges[0]',
  },
  {
    spec: S_PO,
    name: 'order does not matter: permitting policy listed first',
    policies: [acp('acp-a', [{ accessControlOriginators: ['//sp.example/cse1/other'] }]), acp('acp-b', [{}])],
    request: { targetPolicyIds: ['acp-b', 'acp-a'] },
    expect: 'permit',
    matched: 'acp-b/privileges[0]',
  },
  {
    spec: S_PO,
    name: 'no rule in either policy permits: deny',
    policies: [
      acp('acp-a', [{ accessControlOperations: 1 }]),
      acp('acp-b', [{ accessControlOriginators: ['all'], accessControlOperations: 8 }]),
    ],
    request: { targetPolicyIds: ['acp-a', 'acp-b'] },
    expect: 'deny',
  },
  {
    spec: S_PO,
    name: 'a policy not listed by the target is not applicable',
    policies: [acp('acp-a', [{ accessControlOperations: 1 }]), acp('acp-b', [{}])],
    request: { targetPolicyIds: ['acp-a'] },
    expect: 'deny',
  },
  {
    spec: S_EARLY,
    name: 'the first permitting rule is reported (rule 0 does not apply, rule 1 and 2 do)',
    policies: [acp('acp', [{ accessControlOperations: 1 }, {}, {}])],
    request: {},
    expect: 'permit',
    matched: 'acp/privileges[1]',
  },

  // --- default deny ---------------------------------------------------------------------------------
  {
    spec: S_DEFAULT,
    name: 'no policy listed: deny',
    policies: one({ accessControlOriginators: ['all'] }),
    request: { targetPolicyIds: [] },
    expect: 'deny',
  },
  {
    spec: S_DEFAULT,
    name: 'unknown policy id: deny',
    policies: one({ accessControlOriginators: ['all'] }),
    request: { targetPolicyIds: ['acp-unknown'] },
    expect: 'deny',
  },
  {
    spec: S_PO,
    name: 'an unknown id next to a permitting policy: permit',
    policies: one({}),
    request: { targetPolicyIds: ['acp-unknown', 'acp'] },
    expect: 'permit',
    matched: 'acp/privileges[0]',
  },
  {
    spec: S_DEFAULT,
    name: 'a policy with no privileges rules: deny',
    policies: [acp('acp', [])],
    request: {},
    expect: 'deny',
  },

  // --- selfPrivileges ------------------------------------------------------------------------------------
  {
    spec: S_SELF,
    name: 'a policy change by an originator only in privileges: deny',
    policies: [acp('acp', [{ accessControlOriginators: ['all'] }], [{ accessControlOriginators: ['/cse1/admin'] }])],
    request: { operation: 'update', isPolicyChange: true },
    expect: 'deny',
  },
  {
    spec: S_SELF,
    name: 'a policy change by an originator in selfPrivileges: permit',
    policies: [
      acp('acp', [{ accessControlOriginators: ['/cse1/other'] }], [{ accessControlOriginators: ['/cse1/admin'] }]),
    ],
    request: { operation: 'update', isPolicyChange: true, originator: '//sp.example/cse1/admin' },
    expect: 'permit',
    matched: 'acp/selfPrivileges[0]',
  },
  {
    spec: S_SELF,
    name: 'selfPrivileges do not grant access to other resources',
    policies: [
      acp('acp', [{ accessControlOriginators: ['/cse1/other'] }], [{ accessControlOriginators: ['/cse1/admin'] }]),
    ],
    request: { operation: 'update', originator: '//sp.example/cse1/admin' },
    expect: 'deny',
  },
  {
    spec: S_SELF,
    name: 'selfPrivileges are full rules: their operation bits apply (RETRIEVE-only pvs denies DELETE)',
    policies: [acp('acp', [], [{ accessControlOriginators: ['/cse1/admin'], accessControlOperations: 2 }])],
    request: { operation: 'delete', isPolicyChange: true, originator: '/cse1/admin' },
    expect: 'deny',
  },
]

// ---------------------------------------------------------------------------------------------

describe('TS-0003 §7.1 access decision (table)', () => {
  for (const c of cases) {
    test(`${c.name} — ${c.spec}`, () => {
      const index = compilePolicies(c.policies)
      const d = decide(index, request(c.request))
      assert.equal(d.decision, c.expect, d.reasons.join('; '))
      if (c.expect === 'permit') {
        assert.ok(d.matched)
        assert.equal(d.matched.source, 'policy')
        if (d.matched.source === 'policy' && c.matched !== undefined) {
          assert.equal(`${d.matched.policyId}/${d.matched.attribute}[${d.matched.ruleIndex}]`, c.matched)
        }
      } else {
        assert.equal(d.matched, undefined)
      }
      // Explain never changes the decision.
      const explained = decide(index, request(c.request), { explain: true })
      assert.equal(explained.decision, d.decision)
      assert.deepEqual(explained.matched, d.matched)
    })
  }
})

describe('Explain', () => {
  test('a deny lists every rule considered and why it did not apply', () => {
    const index = compilePolicies([
      acp('acp-a', [
        { accessControlOperations: 2 },
        { accessControlOriginators: ['//sp.example/cse1/other'] },
        { accessControlAuthenticationFlag: true },
      ]),
      acp('acp-b', [ctx({ accessControlLocationRegion: { circRegion: CIRCLE } }), objd({ childResourceType: [4] })]),
    ])
    const d = decide(
      index,
      request({
        targetPolicyIds: ['acp-a', 'acp-x', 'acp-b'],
        authenticated: false,
        operation: 'create',
        createdResourceType: 3,
      }),
      { explain: true },
    )
    assert.equal(d.decision, 'deny')
    assert.deepEqual(d.reasons, [
      'policy acp-a privileges[0]: operation not in accessControlOperations',
      'policy acp-a privileges[1]: originator, its groups and roles are not in accessControlOriginators',
      'policy acp-a privileges[2]: accessControlAuthenticationFlag requires an authenticated originator',
      'policy acp-x: not found',
      'policy acp-b privileges[0]: accessControlContexts indeterminate: request has no valid coordinates for circRegion',
      'policy acp-b privileges[1]: CREATE not allowed by accessControlObjectDetails',
      'deny: no applicable rule permits (5 rules considered)',
    ])
  })
  test('without explain a deny carries only the summary and unknown ids', () => {
    const index = compilePolicies(one({ accessControlOperations: 1 }))
    const d = decide(index, request({ targetPolicyIds: ['nope', 'acp'] }))
    assert.deepEqual(d.reasons, ['policy nope: not found', 'deny: no applicable rule permits (1 rules considered)'])
  })
  test('a permit names the deciding rule', () => {
    const index = compilePolicies(one({}))
    const d = decide(index, request())
    assert.deepEqual(d.reasons, ['permitted by policy acp privileges[0]'])
  })
})

describe('determinism and input hygiene', () => {
  test('the same request gives the same result; the index is not modified', () => {
    const index = compilePolicies([acp('acp', [{ accessControlOperations: 1 }, {}])])
    const first = decide(index, request({}), { explain: true })
    for (let i = 0; i < 5; i++) assert.deepEqual(decide(index, request({}), { explain: true }), first)
    assert.equal(index.size, 1)
  })
  test('an unknown operation name denies', () => {
    const index = compilePolicies(one({ accessControlOriginators: ['all'] }))
    const d = decide(index, request({ operation: 'constructor' as Operation }))
    assert.equal(d.decision, 'deny')
  })
  test('authenticated must be exactly true to satisfy the flag', () => {
    const index = compilePolicies(one({ accessControlAuthenticationFlag: true }))
    const d = decide(index, request({ authenticated: 'yes' as unknown as boolean }))
    assert.equal(d.decision, 'deny')
  })
  test('upsert and remove change decisions at once', () => {
    const index = compilePolicies([])
    assert.equal(decide(index, request()).decision, 'deny')
    index.upsert(acp('acp', [{}]))
    assert.equal(decide(index, request()).decision, 'permit')
    index.upsert(acp('acp', [{ accessControlOperations: 1 }]))
    assert.equal(decide(index, request()).decision, 'deny')
    index.upsert(acp('acp', [{}]))
    assert.equal(index.remove('acp'), true)
    assert.equal(decide(index, request()).decision, 'deny')
  })
})
