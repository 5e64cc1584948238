/**
 * Parsing and the stateless checks of a client assertion (RFC 7523 style JWT), before any
 * key is looked up: size, header, claims, times. The signature is checked by the token
 * operation with the credential the header names. Every failure is an ERR_TOKEN_INVALID,
 * except an expired assertion (ERR_TOKEN_EXPIRED).
 *
 * Rules: compact JWS of at most `maxAssertionBytes`; header `alg` HS256 (with `kid`: a
 * credential id, or a B-TID for GBA) or ES256
 * (with `kid`, or with `x5c` and no `kid`); no `crit`, `jku`, `jwk`, `x5u`; claims
 * `iss` = `sub` (the entity id), `aud` = the token endpoint id (a string or a one-element
 * array), numeric `iat` and `exp` with 0 < exp - iat <= maxAssertionLifetimeSec, `jti` of
 * 1-128 printable ASCII characters, optional `nbf`; `exp` + skew > now, `iat` - skew <= now,
 * `nbf` - skew <= now.
 */
import { M2msecError } from '@m2msec/errors'
import { BTID_PATTERN } from './model.ts'
import type { AuthnSettings } from './ports.ts'

/** The accepted assertion algorithms. */
export type AssertionAlg = 'HS256' | 'ES256'

/** An assertion that passed the stateless checks (signature not yet verified). */
export interface ParsedAssertion {
  readonly alg: AssertionAlg
  readonly kid?: string
  /** ES256 without kid: the chain, standard base64 DER, leaf first. */
  readonly x5c?: readonly string[]
  readonly sub: string
  readonly jti: string
  readonly iat: number
  readonly exp: number
  /** cnf.jkt the client wants its token bound to (must match the PoP key). */
  readonly cnfJkt?: string
  /** ASCII bytes of `<header>.<payload>`: what the signature covers. */
  readonly signingInput: Uint8Array
  readonly signature: Uint8Array
}

const B64URL = /^[A-Za-z0-9_-]*$/
const JTI = /^[\x21-\x7e]{1,128}$/
const KID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/
const FORBIDDEN_HEADERS = ['crit', 'jku', 'jwk', 'x5u']

function bad(message: string): M2msecError {
  return new M2msecError('ERR_TOKEN_INVALID', `invalid assertion: ${message}`)
}

function decodeJson(part: string, what: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'))
  } catch {
    throw bad(`${what} is not base64url JSON`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(`${what} is not a JSON object`)
  return value as Record<string, unknown>
}

function numeric(claims: Record<string, unknown>, name: string, required: boolean): number | undefined {
  const v = claims[name]
  if (v === undefined && !required) return undefined
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`${name} must be a number`)
  return v
}

/**
 * Parses and checks an assertion at time `now`.
 *
 * @example
 * ```ts
 * const a = parseAssertion(jwt, settings, clock.now())
 * // a.alg === 'HS256' → verify a.signature over a.signingInput with the credential a.kid
 * ```
 */
export function parseAssertion(
  assertion: string,
  s: Pick<AuthnSettings, 'maxAssertionBytes' | 'tokenEndpointId' | 'maxAssertionLifetimeSec' | 'clockSkewSec'>,
  now: Date,
): ParsedAssertion {
  if (typeof assertion !== 'string' || assertion.length === 0) throw bad('missing')
  if (Buffer.byteLength(assertion) > s.maxAssertionBytes) throw bad(`larger than ${s.maxAssertionBytes} bytes`)
  const parts = assertion.split('.')
  const [h, p, sig] = parts
  if (parts.length !== 3 || h === undefined || p === undefined || sig === undefined) {
    throw bad('not a compact JWS (three base64url parts)')
  }
  if (h === '' || p === '' || !B64URL.test(h) || !B64URL.test(p) || !B64URL.test(sig)) {
    throw bad('not a compact JWS (three base64url parts)')
  }

  const header = decodeJson(h, 'header')
  const alg = header['alg']
  if (alg === 'none') throw bad('alg none is not accepted')
  if (alg !== 'HS256' && alg !== 'ES256') throw bad('alg must be HS256 or ES256')
  for (const name of FORBIDDEN_HEADERS) {
    if (header[name] !== undefined) throw bad(`header ${name} is not accepted`)
  }
  const kid = header['kid']
  if (kid !== undefined && (typeof kid !== 'string' || !(KID.test(kid) || BTID_PATTERN.test(kid)))) {
    throw bad('kid is malformed')
  }
  const x5cRaw = header['x5c']
  let x5c: string[] | undefined
  if (x5cRaw !== undefined) {
    if (
      alg !== 'ES256' ||
      kid !== undefined ||
      !Array.isArray(x5cRaw) ||
      x5cRaw.length === 0 ||
      x5cRaw.length > 5 ||
      !x5cRaw.every((c) => typeof c === 'string' && /^[A-Za-z0-9+/]+={0,2}$/.test(c))
    ) {
      throw bad('x5c is only accepted with ES256 and without kid, as 1-5 base64 certificates')
    }
    x5c = x5cRaw as string[]
  }
  if (kid === undefined && x5c === undefined) throw bad(alg === 'HS256' ? 'kid is required' : 'kid or x5c is required')

  const claims = decodeJson(p, 'payload')
  const iss = claims['iss']
  const sub = claims['sub']
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > 256) throw bad('sub must be the entity id')
  if (iss !== sub) throw bad('iss must equal sub')
  const aud = claims['aud']
  const audOk = aud === s.tokenEndpointId || (Array.isArray(aud) && aud.length === 1 && aud[0] === s.tokenEndpointId)
  if (!audOk) throw bad('aud is not this token endpoint')
  const jti = claims['jti']
  if (typeof jti !== 'string' || !JTI.test(jti)) throw bad('jti must be 1-128 printable ASCII characters')
  const iat = numeric(claims, 'iat', true) as number
  const exp = numeric(claims, 'exp', true) as number
  const nbf = numeric(claims, 'nbf', false)
  if (exp <= iat) throw bad('exp must be after iat')
  if (exp - iat > s.maxAssertionLifetimeSec) throw bad(`lifetime above ${s.maxAssertionLifetimeSec} s`)
  const t = now.getTime() / 1000
  if (exp + s.clockSkewSec <= t) throw new M2msecError('ERR_TOKEN_EXPIRED', 'assertion expired')
  if (iat - s.clockSkewSec > t) throw bad('issued in the future')
  if (nbf !== undefined && nbf - s.clockSkewSec > t) throw bad('not yet valid (nbf)')
  let cnfJkt: string | undefined
  const cnf = claims['cnf']
  if (cnf !== undefined) {
    const jkt = typeof cnf === 'object' && cnf !== null ? (cnf as Record<string, unknown>)['jkt'] : undefined
    if (typeof jkt !== 'string' || jkt === '' || !B64URL.test(jkt) || jkt.length > 128) throw bad('cnf must be { jkt }')
    cnfJkt = jkt
  }

  const signature = new Uint8Array(Buffer.from(sig, 'base64url'))
  const expected = alg === 'HS256' ? 32 : 64
  if (signature.length !== expected) throw bad(`an ${alg} signature has ${expected} bytes`)
  return {
    alg,
    ...(typeof kid === 'string' ? { kid } : {}),
    ...(x5c === undefined ? {} : { x5c }),
    sub,
    jti,
    iat,
    exp,
    ...(cnfJkt === undefined ? {} : { cnfJkt }),
    signingInput: new Uint8Array(Buffer.from(`${h}.${p}`, 'ascii')),
    signature,
  }
}
