import { parseSetOfAcrs, tokenPermissionsClaim, type AccessControlRule, type TokenPermission } from '@m2msec/acp'
import { M2msecError, invalidArgument } from '@m2msec/errors'
import { requireAdmin } from '../access.ts'
import { audited } from '../audit.ts'
import { LIMITS, checkCount } from '../limits.ts'
import type { Caller } from '../model.ts'
import type { AuthzDeps } from '../ports.ts'

/** Limits of IssueToken (documented in authz.proto). */
export const ISSUE_LIMITS = { audience: 16, permissions: 16, tokenName: 256 } as const

/** One permission as the caller sends it (TS-0004 long names, validated here). */
export interface IssueTokenPermission {
  readonly resourceIds?: readonly string[]
  /** An m2m:setOfAcrs as untrusted JSON (validated like policy rules). */
  readonly privileges?: unknown
  readonly roleIds?: readonly string[]
}

/** IssueToken input. */
export interface IssueTokenInput {
  /** `azp`: absolute AE-ID or CSE-ID of the originator that will present the token. */
  readonly holder: string
  /** `aud`: absolute CSE-IDs (wildcards allowed). */
  readonly audience: readonly string[]
  readonly permissions: readonly IssueTokenPermission[]
  /** Seconds; absent or 0 = the issuer's maximum. */
  readonly lifetimeSeconds?: number
  /** Absent: now. */
  readonly notBefore?: Date
  readonly tokenName?: string
}

/** IssueToken output. */
export interface IssueTokenResult {
  readonly token: string
  readonly tokenId: string
  readonly issuer: string
  readonly notBefore: Date
  readonly notAfter: Date
}

const ID = /^[^\s\p{Cc}]+$/u

function checkAbsoluteId(field: string, value: string): void {
  if (value.length > LIMITS.idLength) {
    throw new M2msecError('ERR_PAYLOAD_TOO_LARGE', `${field}: longer than ${LIMITS.idLength} characters`, {
      field,
      max: LIMITS.idLength,
    })
  }
  if (!value.startsWith('//') || value.length < 4 || !ID.test(value)) {
    throw invalidArgument(`${field}: must be an absolute id ("//sp.example/...") without whitespace`, { field })
  }
}

function checkIdList(field: string, values: readonly string[] | undefined): string[] | undefined {
  if (values === undefined || values.length === 0) return undefined
  checkCount(field, values.length, LIMITS.listEntries)
  values.forEach((v, i) => {
    if (v.length === 0 || v.length > LIMITS.idLength || !ID.test(v)) {
      throw invalidArgument(`${field}[${i}]: 1-${LIMITS.idLength} characters without whitespace`, {
        field: `${field}[${i}]`,
      })
    }
  })
  return [...values]
}

function parsePermission(p: IssueTokenPermission, i: number): TokenPermission {
  const path = `permissions[${i}]`
  const resourceIds = checkIdList(`${path}.resource_ids`, p.resourceIds)
  const roleIds = checkIdList(`${path}.role_ids`, p.roleIds)
  const out: { resourceIds?: string[]; privileges?: readonly AccessControlRule[]; roleIds?: string[] } = {}
  if (resourceIds !== undefined) out.resourceIds = resourceIds
  if (roleIds !== undefined) out.roleIds = roleIds
  if (p.privileges !== undefined) {
    const rules = parseSetOfAcrs(p.privileges, `${path}.privileges`).accessControlRule
    if (rules.length > 0) {
      // TS-0003 §7.3.2.5: "If the privileges element is present, then [resourceIDs] shall be present."
      if (resourceIds === undefined) {
        throw invalidArgument(`${path}: privileges need resource_ids`, { field: path, path })
      }
      out.privileges = rules
    }
  }
  if (out.privileges === undefined && out.roleIds === undefined) {
    throw invalidArgument(`${path}: needs privileges or role_ids`, { field: path, path })
  }
  return out
}

/**
 * IssueToken: this service as the tenant's DAS Server (TS-0003 §7.3.2.1) issues a oneM2M JWT
 * (§7.3.2.6 claim mapping: `tkvr` 1, `jti`, `iss` = the tenant's DAS identity, `azp` = holder,
 * `nbf`/`exp` NumericDate, `aud`, `tkps` with short names, `tknm`), signed ES256 by the tenant's
 * DAS key in the KMS. Admins only: a token grants access like a policy does. Audited (an
 * attempt record before signing, then the outcome, with the token id; never the token).
 *
 * @example
 * ```ts
 * const { token } = await ops.issueToken(admin, { holder: '//sp.example/in-cse/Cae1',
 *   audience: ['//sp.example/in-cse'], permissions: [{ roleIds: ['R-reader'] }] })
 * ```
 */
export async function issueToken(deps: AuthzDeps, caller: Caller, input: IssueTokenInput): Promise<IssueTokenResult> {
  const signer = deps.das?.signer
  const tokenId = signer?.newTokenId() ?? ''
  return audited(
    deps,
    caller,
    {
      action: 'authz.IssueToken',
      resource: `token/${tokenId}`,
      details: { holder: input.holder.slice(0, 512), permissions: input.permissions.length },
    },
    async () => {
      requireAdmin(caller, 'issuing a token')
      const identity = signer?.identity(caller.tenant)
      if (signer === undefined || identity === undefined) {
        throw new M2msecError('ERR_FAILED_PRECONDITION', 'this service issues no tokens for the tenant (das.issuers)')
      }
      checkAbsoluteId('holder', input.holder)
      if (input.audience.length === 0) throw invalidArgument('audience: at least one CSE-ID', { field: 'audience' })
      checkCount('audience', input.audience.length, ISSUE_LIMITS.audience)
      input.audience.forEach((a, i) => checkAbsoluteId(`audience[${i}]`, a))
      if (input.permissions.length === 0) {
        throw invalidArgument('permissions: at least one permission', { field: 'permissions' })
      }
      checkCount('permissions', input.permissions.length, ISSUE_LIMITS.permissions)
      const permissions = input.permissions.map(parsePermission)
      const name = input.tokenName
      if (name !== undefined && (name.length > ISSUE_LIMITS.tokenName || /\p{Cc}/u.test(name))) {
        throw invalidArgument(`token_name: at most ${ISSUE_LIMITS.tokenName} characters, no control characters`, {
          field: 'token_name',
        })
      }
      const lifetime =
        input.lifetimeSeconds === undefined || input.lifetimeSeconds === 0
          ? identity.maxLifetimeSec
          : input.lifetimeSeconds
      if (!Number.isInteger(lifetime) || lifetime < 1 || lifetime > identity.maxLifetimeSec) {
        throw invalidArgument(`lifetime_seconds: 1..${identity.maxLifetimeSec}`, { field: 'lifetime_seconds' })
      }
      const nbfMs = (input.notBefore ?? deps.clock.now()).getTime()
      if (!Number.isFinite(nbfMs) || nbfMs < 0) {
        throw invalidArgument('not_before: not a valid time', { field: 'not_before' })
      }
      const nbf = Math.floor(nbfMs / 1000)
      const exp = nbf + lifetime
      const payload: Record<string, unknown> = {
        tkvr: '1',
        jti: tokenId,
        iss: identity.issuer,
        azp: input.holder,
        nbf,
        exp,
        aud: [...input.audience],
        tkps: tokenPermissionsClaim(permissions),
      }
      if (name !== undefined && name !== '') payload['tknm'] = name
      const token = await signer.sign(caller.tenant, { typ: 'JWT' }, payload)
      return {
        token,
        tokenId,
        issuer: identity.issuer,
        notBefore: new Date(nbf * 1000),
        notAfter: new Date(exp * 1000),
      }
    },
    { mutating: true },
  )
}
