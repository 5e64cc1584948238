/**
 * oneM2M tokens (TS-0003 §7.3.2.3–§7.3.2.6) in a decision: verification of the JWS against the
 * tenant's trusted DAS issuers, then the claim checks of `@m2msec/acp` (holder, audience,
 * validity) and the token's permissions as grants for the decision.
 *
 * Order of checks (each failure is typed, with metadata `field` = `tokens[i]` and `claim`):
 * size (ERR_PAYLOAD_TOO_LARGE) → compact JWS shape (a JWE is refused: no decryption keys here)
 * → protected header: `alg` not `none`, `typ` JWT, no `cty` (§7.3.2.6) → `iss` trusted by the
 * tenant → `alg` allowed for that issuer → signature → claims. Messages name the claim, never
 * token content.
 */
import { checkTokenClaims, originatorForms, tokenGrants, type HostIds, type TokenGrant } from '@m2msec/acp'
import { M2msecError, isM2msecError, type ErrorCode } from '@m2msec/errors'
import { compactVerify, decodeProtectedHeader, errors as joseErrors, type ProtectedHeaderParameters } from 'jose'
import type { DasDeps } from './ports.ts'

/** At most this many tokens in one request. */
export const MAX_TOKENS = 8

/** Largest token when no DAS settings are given (the `das.maxTokenBytes` default). */
export const DEFAULT_MAX_TOKEN_BYTES = 8192

/** What a request's tokens are checked against. */
export interface TokenContext {
  readonly tenant: string
  /** The originator as the request names it (any id form). */
  readonly originator: string
  readonly host: HostIds | undefined
  /** rq_time: the validity period is checked against it. */
  readonly time: Date
  readonly targetResourceId: string | undefined
}

/** A verified token and the grants it gives for this request. */
export interface VerifiedToken {
  readonly tokenId: string
  readonly issuer: string
  readonly permissions: number
  readonly grants: readonly TokenGrant[]
}

function tokenError(code: ErrorCode, index: number, claim: string, why: string): M2msecError {
  return new M2msecError(code, `tokens[${index}]: ${why}`, { field: `tokens[${index}]`, claim })
}

function decodeSegment(segment: string): unknown {
  return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) as unknown
}

/** The unverified `iss`, only to pick the issuer's keys; everything is re-read after verification. */
function unverifiedIssuer(token: string, index: number): string {
  let payload: unknown
  try {
    payload = decodeSegment(token.split('.')[1] ?? '')
  } catch {
    throw tokenError('ERR_TOKEN_INVALID', index, 'payload', 'the payload is not base64url JSON')
  }
  const iss = (payload as { iss?: unknown } | null)?.iss
  if (typeof iss !== 'string' || iss === '') {
    throw tokenError('ERR_TOKEN_INVALID', index, 'iss', 'token claim "iss" must be a non-empty string')
  }
  return iss
}

function checkHeader(token: string, index: number): ProtectedHeaderParameters {
  const parts = token.split('.')
  if (parts.length === 5) {
    throw tokenError('ERR_TOKEN_INVALID', index, 'jwe', 'encrypted tokens (JWE) are not accepted; send a JWS')
  }
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) {
    throw tokenError('ERR_TOKEN_INVALID', index, 'token', 'not a compact JWS')
  }
  let header: ProtectedHeaderParameters
  try {
    header = decodeProtectedHeader(token)
  } catch {
    throw tokenError('ERR_TOKEN_INVALID', index, 'header', 'the protected header is not base64url JSON')
  }
  if (typeof header.alg !== 'string' || header.alg.toLowerCase() === 'none') {
    throw tokenError('ERR_TOKEN_INVALID', index, 'alg', 'unsecured tokens (alg "none") are not accepted')
  }
  // §7.3.2.6: a JWS carries "typ":"JWT" and no "cty" (only a JWE wrapping a JWS has one).
  if (typeof header.typ !== 'string' || header.typ.toUpperCase() !== 'JWT') {
    throw tokenError('ERR_TOKEN_INVALID', index, 'typ', 'header "typ" must be "JWT"')
  }
  if (header.cty !== undefined) {
    throw tokenError('ERR_TOKEN_INVALID', index, 'cty', 'header "cty" is not allowed in a JWS token')
  }
  return header
}

async function verifySignature(
  das: DasDeps,
  tenant: string,
  token: string,
  index: number,
): Promise<{ issuer: string; payload: unknown; requireAudience: boolean }> {
  const header = checkHeader(token, index)
  const iss = unverifiedIssuer(token, index)
  const trusted = das.trust.issuer(tenant, iss)
  if (trusted === undefined) throw tokenError('ERR_TOKEN_INVALID', index, 'iss', 'the issuer is not trusted')
  if (!trusted.algorithms.includes(header.alg as string)) {
    throw tokenError('ERR_TOKEN_INVALID', index, 'alg', 'the algorithm is not allowed for this issuer')
  }
  let payload: Uint8Array
  try {
    ;({ payload } = await compactVerify(token, trusted.key, { algorithms: [...trusted.algorithms] }))
  } catch (err) {
    if (isM2msecError(err)) {
      if (err.code !== 'ERR_TOKEN_INVALID') throw err
      const claim = typeof err.details['claim'] === 'string' ? err.details['claim'] : 'signature'
      throw tokenError('ERR_TOKEN_INVALID', index, claim, err.message)
    }
    if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) {
      throw new M2msecError(
        'ERR_UNAVAILABLE',
        'the verification keys of a token issuer are unavailable',
        {},
        { cause: err },
      )
    }
    const noKey = err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys
    throw tokenError(
      'ERR_TOKEN_INVALID',
      index,
      'signature',
      noKey ? 'no verification key of the issuer matches the token' : 'the signature does not verify',
    )
  }
  let claims: unknown
  try {
    claims = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload)) as unknown
  } catch {
    throw tokenError('ERR_TOKEN_INVALID', index, 'payload', 'the payload is not JSON')
  }
  return { issuer: iss, payload: claims, requireAudience: trusted.requireAudience }
}

/** The absolute CSE-ID `//sp/cse` of the hosting CSE (the audience a token must name). */
export function hostCseId(host: HostIds): string {
  const strip = (s: string): string => s.replace(/^\/+/, '')
  return `//${strip(host.spId)}/${strip(host.cseId ?? '')}`
}

/**
 * Verifies every token of a request and returns its grants (TS-0003 §7.3.2.3 step 7.1.3,
 * §7.3.2.5). Throws on the first token that fails: ERR_TOKEN_INVALID / ERR_TOKEN_EXPIRED,
 * ERR_PAYLOAD_TOO_LARGE, ERR_INVALID_ARGUMENT (no host), ERR_UNAVAILABLE (issuer keys).
 *
 * @example
 * ```ts
 * const verified = await verifyTokens(deps.das, tokens, { tenant, originator, host, time, targetResourceId })
 * decide(index, { ...request, tokenGrants: verified.flatMap((t) => t.grants) })
 * ```
 */
export async function verifyTokens(
  das: DasDeps | undefined,
  tokens: readonly string[],
  ctx: TokenContext,
): Promise<VerifiedToken[]> {
  if (tokens.length > MAX_TOKENS) {
    throw new M2msecError('ERR_PAYLOAD_TOO_LARGE', `tokens: at most ${MAX_TOKENS} entries`, {
      field: 'tokens',
      max: MAX_TOKENS,
    })
  }
  const host = ctx.host
  if (host?.cseId === undefined || host.cseId.replace(/^\/+/, '') === '') {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'host with sp_id and cse_id is required to check tokens', {
      field: 'host',
    })
  }
  const holder = originatorForms(ctx.originator, host).abs
  if (holder === null) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'originator: no absolute id can be derived to check token holders', {
      field: 'originator',
    })
  }
  const maxBytes = das?.settings.maxTokenBytes ?? DEFAULT_MAX_TOKEN_BYTES
  const out: VerifiedToken[] = []
  for (const [i, token] of tokens.entries()) {
    if (token.length === 0) throw tokenError('ERR_TOKEN_INVALID', i, 'token', 'empty token')
    if (Buffer.byteLength(token) > maxBytes) {
      throw new M2msecError('ERR_PAYLOAD_TOO_LARGE', `tokens[${i}]: longer than ${maxBytes} bytes`, {
        field: `tokens[${i}]`,
        max: maxBytes,
      })
    }
    if (das === undefined) throw tokenError('ERR_TOKEN_INVALID', i, 'iss', 'the issuer is not trusted')
    const { issuer, payload, requireAudience } = await verifySignature(das, ctx.tenant, token, i)
    try {
      const claims = checkTokenClaims(payload, {
        trustedIssuers: [issuer],
        audience: hostCseId(host),
        holder,
        now: ctx.time,
        requireAudience,
        clockToleranceSeconds: das.settings.clockToleranceSec,
      })
      out.push({
        tokenId: claims.tokenId,
        issuer,
        permissions: claims.permissions.length,
        grants: tokenGrants(claims, ctx.targetResourceId, host),
      })
    } catch (err) {
      if (isM2msecError(err) && (err.code === 'ERR_TOKEN_INVALID' || err.code === 'ERR_TOKEN_EXPIRED')) {
        const claim = typeof err.details['claim'] === 'string' ? err.details['claim'] : 'payload'
        throw tokenError(err.code, i, claim, err.message)
      }
      throw err
    }
  }
  return out
}
