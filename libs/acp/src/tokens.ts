/**
 * oneM2M token claim checks (TS-0003 §7.3.2.4–§7.3.2.6) over a payload whose signature or
 * encryption the caller has ALREADY verified (ESData / JOSE is not done here).
 *
 * JWT claim mapping (table 7.3.2.6.2-1): version→`tkvr`, tokenID→`jti`, issuer→`iss`,
 * holder→`azp`, notBefore→`nbf`, notAfter→`exp`, tokenName→`tknm`, audience→`aud`,
 * permissions→`tkps`, extension→`tkex`. All six of version, tokenID, holder, issuer, notBefore
 * and notAfter are mandatory (m2m:tokenClaimSet multiplicity 1).
 *
 * Checks (§7.3.2.3 step 7.1.3, §7.3.2.5): the issuer is one the caller trusts (exact match);
 * the holder exactly matches the originator's absolute id; the hosting CSE-ID matches one
 * audience entry (entries may carry `*`) when the audience is present and not empty; the token
 * is valid now (`nbf` <= now < `exp`). Failures are `ERR_TOKEN_INVALID`, an expired token is
 * `ERR_TOKEN_EXPIRED`. Messages name the claim, never its value.
 */
import { M2msecError, isM2msecError, type ErrorCode } from '@m2msec/errors'
import { compileRules, type TokenGrant } from './engine.ts'
import type { AccessControlContext, AccessControlRule } from './model.ts'
import { matchesIdPattern, originatorForms, type HostIds } from './originator.ts'
import { elementNames, parseSetOfAcrs, readObject, type Field } from './parse.ts'

const PERMISSION = elementNames({ resourceIDs: ['ris'], privileges: ['pv'], roleIDs: ['rids'] })
const PERMISSIONS = elementNames({ permission: ['pm'] })

/** One `m2m:tokenPermission`. */
export interface TokenPermission {
  /** When present, the permission applies only to these resources. */
  readonly resourceIds?: readonly string[]
  /** Rules added to the applicable rules of the decision. */
  readonly privileges?: readonly AccessControlRule[]
  /** Role-IDs that count as valid roles of the originator. */
  readonly roleIds?: readonly string[]
}

/** A validated `m2m:tokenClaimSet`. */
export interface OneM2mToken {
  readonly version: string
  readonly tokenId: string
  readonly issuer: string
  /** `azp`; normally one id. */
  readonly holders: readonly string[]
  readonly notBefore: Date
  readonly notAfter: Date
  readonly tokenName?: string
  readonly audience?: readonly string[]
  readonly permissions: readonly TokenPermission[]
  readonly extension?: string
}

/** What the verifying hosting CSE expects of a token. */
export interface TokenExpectations {
  /** Issuer ids (DAS servers / authorization authorities) this CSE accepts tokens from. */
  readonly trustedIssuers: readonly string[]
  /** Absolute CSE-ID of the hosting CSE, matched against `aud`. */
  readonly audience: string
  /** Absolute AE-ID or CSE-ID of the originator the request came from, matched against `azp`. */
  readonly holder: string
  /** Current time (injected). */
  readonly now: Date
  /** Reject a token without `aud` (the specification accepts one). Default false. */
  readonly requireAudience?: boolean
  /** Allowed clock difference in seconds for `nbf` and `exp`. Default 0. */
  readonly clockToleranceSeconds?: number
}

function fail(code: ErrorCode, message: string, claim: string): never {
  throw new M2msecError(code, message, { claim })
}

function claimString(payload: Record<string, unknown>, claim: string, required: true): string
function claimString(payload: Record<string, unknown>, claim: string, required: false): string | undefined
function claimString(payload: Record<string, unknown>, claim: string, required: boolean): string | undefined {
  const v = payload[claim]
  if (v === undefined && !required) return undefined
  if (typeof v !== 'string' || v.length === 0) {
    fail('ERR_TOKEN_INVALID', `token claim "${claim}" must be a non-empty string`, claim)
  }
  return v
}

function claimTime(payload: Record<string, unknown>, claim: string): Date {
  const v = payload[claim]
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    fail('ERR_TOKEN_INVALID', `token claim "${claim}" must be a NumericDate`, claim)
  }
  return new Date(v * 1000)
}

function stringList(v: unknown, claim: string, allowSingle: boolean): string[] {
  if (allowSingle && typeof v === 'string') return [v]
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && x.length > 0)) {
    fail('ERR_TOKEN_INVALID', `token claim "${claim}" must be a list of strings`, claim)
  }
  return v as string[]
}

function readStringList(f: Field): string[] {
  if (!Array.isArray(f.value) || !f.value.every((x) => typeof x === 'string' && x.length > 0)) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', `${f.path}: must be a list of strings`, {
      path: f.path,
    })
  }
  return f.value as string[]
}

function parsePermission(value: unknown, path: string): TokenPermission {
  const fields = readObject(value, path, PERMISSION)
  const out: {
    resourceIds?: string[]
    privileges?: AccessControlRule[]
    roleIds?: string[]
  } = {}
  const ris = fields.get('resourceIDs')
  if (ris !== undefined) out.resourceIds = readStringList(ris)
  const pv = fields.get('privileges')
  if (pv !== undefined) {
    // §7.3.2.5: "If the privileges element is present, then this element shall be present."
    if (ris === undefined) {
      throw new M2msecError('ERR_INVALID_ARGUMENT', `${path}: privileges need resourceIDs`, {
        path,
      })
    }
    out.privileges = [...parseSetOfAcrs(pv.value, pv.path).accessControlRule]
  }
  const rids = fields.get('roleIDs')
  if (rids !== undefined) out.roleIds = readStringList(rids)
  return out
}

/** `tkps` is an m2m:tokenPermissions: `{ pm: [...] }` / `{ permission: [...] }` or a bare list. */
function parsePermissions(v: unknown): TokenPermission[] {
  let list: unknown = v
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const fields = readObject(v, 'tkps', PERMISSIONS)
    list = fields.get('permission')?.value ?? []
  }
  if (!Array.isArray(list)) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'tkps: must be a list of permissions', {
      path: 'tkps',
    })
  }
  return list.map((p: unknown, i) => parsePermission(p, `tkps[${i}]`))
}

/**
 * Validates the structure of a verified oneM2M JWT payload (no trust decisions).
 * Throws `ERR_TOKEN_INVALID`.
 */
export function parseTokenClaims(payload: unknown): OneM2mToken {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    fail('ERR_TOKEN_INVALID', 'token payload must be a JSON object', 'payload')
  }
  const c = payload as Record<string, unknown>
  const azp = c['azp']
  if (azp === undefined) fail('ERR_TOKEN_INVALID', 'token claim "azp" (holder) is required', 'azp')
  const holders = stringList(azp, 'azp', true)
  if (holders.length === 0) fail('ERR_TOKEN_INVALID', 'token claim "azp" is empty', 'azp')
  const token: {
    -readonly [K in keyof OneM2mToken]: OneM2mToken[K]
  } = {
    version: claimString(c, 'tkvr', true),
    tokenId: claimString(c, 'jti', true),
    issuer: claimString(c, 'iss', true),
    holders,
    notBefore: claimTime(c, 'nbf'),
    notAfter: claimTime(c, 'exp'),
    permissions: [],
  }
  if (token.notAfter.getTime() <= token.notBefore.getTime()) {
    fail('ERR_TOKEN_INVALID', 'token "exp" is not after "nbf"', 'exp')
  }
  const name = claimString(c, 'tknm', false)
  if (name !== undefined) token.tokenName = name
  const ext = claimString(c, 'tkex', false)
  if (ext !== undefined) token.extension = ext
  if (c['aud'] !== undefined) token.audience = stringList(c['aud'], 'aud', true)
  if (c['tkps'] !== undefined) {
    try {
      token.permissions = parsePermissions(c['tkps'])
    } catch (err) {
      if (isM2msecError(err)) {
        fail('ERR_TOKEN_INVALID', `token claim "tkps" is malformed: ${err.message}`, 'tkps')
      }
      throw err
    }
  }
  return token
}

/**
 * Validates a verified oneM2M JWT payload for use in an access decision by this CSE.
 *
 * @example
 * ```ts
 * const token = checkTokenClaims(payload, {
 *   trustedIssuers: ['//sp.example/das-ae'], audience: '//sp.example/in-cse',
 *   holder: '//sp.example/in-cse/Cae1', now: new Date(),
 * })
 * const grants = tokenGrants(token, '//sp.example/in-cse/cnt-1')
 * decide(index, { ...request, tokenGrants: grants })
 * ```
 */
export function checkTokenClaims(payload: unknown, expect: TokenExpectations): OneM2mToken {
  const token = parseTokenClaims(payload)
  if (!expect.trustedIssuers.includes(token.issuer)) {
    fail('ERR_TOKEN_INVALID', 'token issuer is not trusted', 'iss')
  }
  if (!token.holders.includes(expect.holder)) {
    fail('ERR_TOKEN_INVALID', 'token holder is not the originator', 'azp')
  }
  const aud = token.audience ?? []
  if (aud.length === 0) {
    if (expect.requireAudience === true) {
      fail('ERR_TOKEN_INVALID', 'token has no audience', 'aud')
    }
  } else if (!aud.some((a) => matchesIdPattern(a, expect.audience))) {
    fail('ERR_TOKEN_INVALID', 'token audience does not include this CSE', 'aud')
  }
  const now = expect.now.getTime()
  const tolerance = (expect.clockToleranceSeconds ?? 0) * 1000
  if (!Number.isFinite(now)) fail('ERR_TOKEN_INVALID', 'verification time is invalid', 'now')
  if (now < token.notBefore.getTime() - tolerance) {
    fail('ERR_TOKEN_INVALID', 'token is not valid yet', 'nbf')
  }
  if (now >= token.notAfter.getTime() + tolerance) {
    fail('ERR_TOKEN_EXPIRED', 'token has expired', 'exp')
  }
  return token
}

/** An id in absolute form (`//sp/...`) when `host` allows deriving it, else unchanged. */
function absoluteId(id: string, host: HostIds | undefined): string {
  return host === undefined ? id : (originatorForms(id, host).abs ?? id)
}

/**
 * Turns the token's permissions that apply to `targetResourceId` into grants for `decide`
 * (§7.3.2.5). A permission with `resourceIDs` applies only when the target is listed: exact
 * string match, or, with `host`, the same id once both are put in absolute form
 * (`/in-cse/cnt-1` and `cnt-1` on host `sp.example`/`in-cse` are `//sp.example/in-cse/cnt-1`).
 * Without `targetResourceId` such permissions are left out. Permissions without privileges
 * and roles give no grant.
 */
export function tokenGrants(token: OneM2mToken, targetResourceId?: string, host?: HostIds): TokenGrant[] {
  const grants: TokenGrant[] = []
  const target = targetResourceId === undefined ? undefined : absoluteId(targetResourceId, host)
  token.permissions.forEach((perm, i) => {
    if (perm.resourceIds !== undefined) {
      if (
        targetResourceId === undefined ||
        target === undefined ||
        !perm.resourceIds.some((r) => r === targetResourceId || absoluteId(r, host) === target)
      ) {
        return
      }
    }
    const rules = perm.privileges === undefined ? [] : compileRules(perm.privileges, `tkps[${i}]`)
    const roleIds = perm.roleIds ?? []
    if (rules.length === 0 && roleIds.length === 0) return
    grants.push({ tokenId: token.tokenId, permissionIndex: i, rules, roleIds })
  })
  return grants
}

function contextShortNames(c: AccessControlContext): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (c.accessControlWindow !== undefined) out['actw'] = [...c.accessControlWindow]
  const ip = c.accessControlIpAddresses
  if (ip !== undefined) {
    out['acip'] = {
      ...(ip.ipv4Addresses === undefined ? {} : { ipv4: [...ip.ipv4Addresses] }),
      ...(ip.ipv6Addresses === undefined ? {} : { ipv6: [...ip.ipv6Addresses] }),
    }
  }
  const region = c.accessControlLocationRegion
  if (region !== undefined) {
    out['aclr'] = 'circRegion' in region ? { accr: [...region.circRegion] } : { accc: [...region.countryCode] }
  }
  return out
}

/** An access control rule with the oneM2M short element names (`acor`, `acop`, ...), as JSON carries it. */
export function ruleToShortNames(rule: AccessControlRule): Record<string, unknown> {
  const out: Record<string, unknown> = {
    acor: [...rule.accessControlOriginators],
    acop: rule.accessControlOperations,
  }
  if (rule.accessControlContexts !== undefined) out['acco'] = rule.accessControlContexts.map(contextShortNames)
  if (rule.accessControlAuthenticationFlag !== undefined) out['acaf'] = rule.accessControlAuthenticationFlag
  if (rule.accessControlObjectDetails !== undefined) {
    out['acod'] = rule.accessControlObjectDetails.map((d) => ({
      ...(d.resourceType === undefined ? {} : { ty: d.resourceType }),
      ...(d.specializationType === undefined ? {} : { spty: d.specializationType }),
      chty: [...d.childResourceType],
    }))
  }
  return out
}

/**
 * The `tkps` claim (m2m:tokenPermissions, short names) for a token a DAS issues; the inverse
 * of what `parseTokenClaims` reads.
 *
 * @example
 * ```ts
 * tokenPermissionsClaim([{ resourceIds: ['//sp/in-cse/cnt-1'], privileges: [{ accessControlOriginators: ['all'], accessControlOperations: 2 }] }])
 * // { pm: [{ ris: ['//sp/in-cse/cnt-1'], pv: { acr: [{ acor: ['all'], acop: 2 }] } }] }
 * ```
 */
export function tokenPermissionsClaim(permissions: readonly TokenPermission[]): { pm: Array<Record<string, unknown>> } {
  return {
    pm: permissions.map((p) => ({
      ...(p.resourceIds === undefined ? {} : { ris: [...p.resourceIds] }),
      ...(p.privileges === undefined ? {} : { pv: { acr: p.privileges.map(ruleToShortNames) } }),
      ...(p.roleIds === undefined ? {} : { rids: [...p.roleIds] }),
    })),
  }
}
