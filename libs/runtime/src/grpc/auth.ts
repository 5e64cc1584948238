/**
 * Who is calling: the Principal, and the Authenticator port that finds it for every gRPC call.
 *
 * Production authenticators (authn-issued JWTs, platform-CA mTLS with revocation) live with the
 * services that own those credentials. This module has only the port, a combinator, and two
 * DEVELOPMENT-ONLY authenticators for local runs and tests.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { PeerCertificate } from 'node:tls'
import type { Metadata } from '@grpc/grpc-js'
import { ERROR_CODES, M2msecError, isM2msecError } from '@m2msec/errors'

/** An authenticated caller. `tenant` scopes every object it may touch. */
export interface Principal {
  readonly tenant: string
  readonly id: string
  readonly roles: readonly string[]
  /**
   * How it was authenticated. `anonymous` only appears in methods a service declared
   * public with `addUnaryService(…, { unauthenticated: [...] })`.
   */
  readonly via: 'mtls' | 'token' | 'dev-token' | 'anonymous'
}

/** The principal of calls to methods declared public (no credentials checked). */
export const ANONYMOUS_PRINCIPAL: Principal = Object.freeze({
  tenant: '',
  id: 'anonymous',
  roles: Object.freeze([]),
  via: 'anonymous',
})

/** What an authenticator sees of a call. */
export interface AuthRequest {
  readonly metadata: Metadata
  /** The client certificate, present only when TLS verified it against the configured CA. */
  readonly peerCertificate?: PeerCertificate
}

/**
 * Identifies the caller of a call. Contract: resolves with a Principal, or rejects with an
 * M2msecError whose status is UNAUTHENTICATED (`ERR_UNAUTHENTICATED` when the credentials it
 * handles are absent, `ERR_TOKEN_*` when present but invalid). Any other rejection (e.g.
 * `ERR_UNAVAILABLE` when a key set cannot be fetched) is passed to the client as such.
 */
export interface Authenticator {
  authenticate(call: AuthRequest): Promise<Principal>
}

function isAuthFailure(err: unknown): err is M2msecError {
  return isM2msecError(err) && ERROR_CODES[err.code] === 'UNAUTHENTICATED'
}

/**
 * Tries authenticators in order; the first success wins. When all fail, rethrows the most
 * specific failure (e.g. `ERR_TOKEN_EXPIRED` beats "no token"). Errors that are not
 * authentication failures stop the chain at once.
 *
 * @example
 * ```ts
 * const auth = chainAuthenticators(mtlsAuthenticator, tokenAuthenticator)
 * ```
 */
export function chainAuthenticators(...authenticators: readonly Authenticator[]): Authenticator {
  return {
    async authenticate(call) {
      let specific: M2msecError | undefined
      for (const a of authenticators) {
        try {
          return await a.authenticate(call)
        } catch (err) {
          if (!isAuthFailure(err)) throw err
          if (specific === undefined && err.code !== 'ERR_UNAUTHENTICATED') specific = err
        }
      }
      throw specific ?? new M2msecError('ERR_UNAUTHENTICATED', 'no valid credentials')
    },
  }
}

/**
 * The token of an `authorization: Bearer <token>` header, or undefined when there is none.
 *
 * @example
 * ```ts
 * const token = readBearerToken(call.metadata)
 * ```
 */
export function readBearerToken(metadata: Metadata): string | undefined {
  const value = metadata.get('authorization')[0]
  if (typeof value !== 'string') return undefined
  const match = /^Bearer[ \t]+(\S+)\s*$/i.exec(value)
  return match?.[1]
}

/** Options of {@link devStaticTokenAuthenticator}. */
export interface DevStaticTokenOptions {
  /** The shared token, at least 16 characters. */
  readonly token: string
  readonly tenant: string
  readonly principal: string
  readonly roles: readonly string[]
}

/**
 * DEVELOPMENT ONLY. Accepts one static bearer token and maps it to one fixed principal. There
 * is no expiry, rotation, revocation or per-caller identity: use it for `npm start` and tests,
 * never in production (use authn-issued tokens or mTLS there). Compares in constant time.
 *
 * @example
 * ```ts
 * const auth = devStaticTokenAuthenticator({ token: devToken, tenant: 'demo', principal: 'admin', roles: ['admin'] })
 * // client metadata: authorization: Bearer <devToken>
 * ```
 */
export function devStaticTokenAuthenticator(opts: DevStaticTokenOptions): Authenticator {
  if (opts.token.length < 16) {
    throw new M2msecError('ERR_CONFIG_INVALID', 'dev static token must have at least 16 characters')
  }
  // Comparing digests gives equal-length inputs, so timingSafeEqual never throws or leaks length.
  const expected = createHash('sha256').update(opts.token).digest()
  const principal: Principal = Object.freeze({
    tenant: opts.tenant,
    id: opts.principal,
    roles: Object.freeze([...opts.roles]),
    via: 'dev-token',
  })
  return {
    async authenticate(call) {
      const token = readBearerToken(call.metadata)
      if (token === undefined) throw new M2msecError('ERR_UNAUTHENTICATED', 'missing bearer token')
      const actual = createHash('sha256').update(token).digest()
      if (!timingSafeEqual(actual, expected)) throw new M2msecError('ERR_TOKEN_INVALID', 'invalid bearer token')
      return principal
    },
  }
}

// A leading underscore is allowed for reserved tenants such as `_platform` (platform services).
const SEGMENT_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/

/** The URI entries of a Node `subjectaltname` string (`URI:a, DNS:b, URI:"quoted, value"`). */
export function subjectAltUris(subjectaltname: string | undefined): string[] {
  if (subjectaltname === undefined) return []
  const out: string[] = []
  const re = /(?:^|,\s*)URI:("(?:[^"\\]|\\.)*"|[^,]*)/g
  for (const m of subjectaltname.matchAll(re)) {
    const raw = m[1] ?? ''
    if (raw.startsWith('"')) {
      try {
        out.push(JSON.parse(raw) as string)
      } catch {
        // An unparsable quoted entry is ignored: it cannot be a valid m2msec URI anyway.
      }
    } else {
      out.push(raw.trim())
    }
  }
  return out
}

/** Percent-decodes one URI path segment; undefined when malformed. */
function decodeSegment(segment: string | undefined): string | undefined {
  if (segment === undefined) return undefined
  try {
    return decodeURIComponent(segment)
  } catch {
    return undefined
  }
}

function asList(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value]
}

/**
 * DEVELOPMENT ONLY. Maps the client certificate that TLS verified against the server's
 * configured CA to a principal: tenant and id from a SAN URI `m2msec://<tenant>/<principal>`
 * (percent-decoded; letters, digits, `.`, `_`, `-`),
 * roles from subject `OU=role:<name>` attributes. It trusts whatever that CA signed and checks
 * no revocation or tenant binding of the issuing CA, hence development only (the dev PKI).
 *
 * @example
 * ```ts
 * // client cert: SAN URI:m2msec://demo/gw-1, subject OU=role:gateway
 * // -> { tenant: 'demo', id: 'gw-1', roles: ['gateway'], via: 'mtls' }
 * const auth = devMtlsAuthenticator()
 * ```
 */
export function devMtlsAuthenticator(): Authenticator {
  return {
    async authenticate(call) {
      const cert = call.peerCertificate
      if (cert === undefined) throw new M2msecError('ERR_UNAUTHENTICATED', 'no verified client certificate')
      const ids = subjectAltUris(cert.subjectaltname)
        .map((uri) => /^m2msec:\/\/([^/]+)\/([^/]+)$/.exec(uri))
        .filter((m): m is RegExpExecArray => m !== null)
      const [match, ...rest] = ids
      if (match === undefined || rest.length > 0) {
        throw new M2msecError(
          'ERR_UNAUTHENTICATED',
          'client certificate needs exactly one m2msec://<tenant>/<principal> URI SAN',
        )
      }
      const tenant = decodeSegment(match[1])
      const id = decodeSegment(match[2])
      if (tenant === undefined || id === undefined || !SEGMENT_RE.test(tenant) || !SEGMENT_RE.test(id)) {
        throw new M2msecError('ERR_UNAUTHENTICATED', 'client certificate URI SAN has an invalid tenant or principal')
      }
      const roles = asList(cert.subject.OU)
        .filter((ou) => ou.startsWith('role:'))
        .map((ou) => ou.slice('role:'.length))
        .filter((r) => r !== '')
      return Object.freeze({ tenant, id, roles: Object.freeze(roles), via: 'mtls' as const })
    },
  }
}
