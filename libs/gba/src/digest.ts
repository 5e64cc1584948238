/**
 * HTTP Digest authentication (RFC 2617) with the AKAv1-MD5 algorithm of RFC 3310, as Ub uses
 * it (TS 24.109): strict, bounded parsers and formatters for `WWW-Authenticate`,
 * `Authorization` and `Authentication-Info`, and the request-digest / rspauth computation.
 *
 * Parsing rules (RFC 7235 §2.1 auth-param syntax, RFC 7230 §3.2.6 quoted-string):
 * - at most {@link MAX_DIGEST_HEADER_LENGTH} characters and {@link MAX_DIGEST_PARAMS} parameters;
 * - parameter names are case-insensitive; a repeated parameter is an error;
 * - `\x` inside a quoted string stands for `x`; control characters are an error;
 * - parameters RFC 2617 defines as quoted strings (realm, nonce, username, uri, response,
 *   cnonce, opaque, auts, rspauth, nextnonce, domain) must be quoted; token-valued ones
 *   (algorithm, stale, nc, the qop of a response) may be sent either way, as many clients quote them;
 * - unknown parameters are ignored (RFC 2617 §3.2.1), an unknown algorithm is an error.
 * Error messages name the parameter at most, never its value.
 */
import { createHash } from 'node:crypto'
import { invalidArgument, type M2msecError } from '@m2msec/errors'

/** Longest header value (characters) the parsers accept. */
export const MAX_DIGEST_HEADER_LENGTH = 4096

/** Most parameters the parsers accept in one header. */
export const MAX_DIGEST_PARAMS = 32

/** Digest algorithms supported: plain MD5 (RFC 2617) and AKAv1-MD5 (RFC 3310, password = RES). */
export type DigestAlgorithm = 'MD5' | 'AKAv1-MD5'

/** Quality of protection: `auth` or `auth-int` (the latter also covers the entity body). */
export type DigestQop = 'auth' | 'auth-int'

/** A parsed `WWW-Authenticate: Digest …` challenge. */
export interface DigestChallenge {
  realm: string
  nonce: string
  /** `MD5` when the header has no algorithm parameter (RFC 2617 §3.2.1). */
  algorithm: DigestAlgorithm
  /** Offered qop options the parser knows, in header order; empty when the header had no qop. */
  qop: DigestQop[]
  opaque?: string
  /** `stale=true`: the nonce was stale, the credentials were fine. */
  stale?: boolean
}

/** A parsed `Authorization: Digest …` header (the digest-response of RFC 2617 §3.2.2). */
export interface DigestCredentials {
  username: string
  realm: string
  /** Empty in the initial Ub request. */
  nonce: string
  uri: string
  /** 32 lowercase hex digits, or empty in the initial Ub request. */
  response: string
  algorithm?: DigestAlgorithm
  qop?: DigestQop
  /** Nonce count, 8 lowercase hex digits; present iff qop is. */
  nc?: string
  /** Client nonce; present iff qop is. */
  cnonce?: string
  opaque?: string
  /** base64(AUTS) of RFC 3310 §3.4, sent on a synchronisation failure. */
  auts?: string
}

/** A parsed `Authentication-Info` header (RFC 2617 §3.2.3). */
export interface DigestAuthenticationInfo {
  /** 32 lowercase hex digits. */
  rspauth: string
  qop?: DigestQop
  nc?: string
  cnonce?: string
  nextnonce?: string
  /** Not in RFC 2617's list, but real BSFs echo them (fasferraz/GBA_ME trace). */
  opaque?: string
  nonce?: string
}

interface RawParam {
  value: string
  quoted: boolean
}

function malformed(message: string, param?: string): M2msecError {
  return invalidArgument(`Digest header: ${message}`, param === undefined ? {} : { param })
}

// RFC 7230 §3.2.6 tchar.
function isTchar(code: number): boolean {
  return (
    (code >= 0x30 && code <= 0x39) ||
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x61 && code <= 0x7a) ||
    "!#$%&'*+-.^_`|~".includes(String.fromCharCode(code))
  )
}

function isControl(code: number): boolean {
  return (code < 0x20 && code !== 0x09) || code === 0x7f
}

const KNOWN_PARAMS = new Set([
  'username',
  'realm',
  'nonce',
  'uri',
  'response',
  'algorithm',
  'cnonce',
  'opaque',
  'qop',
  'nc',
  'auts',
  'stale',
  'domain',
  'rspauth',
  'nextnonce',
])

/** Only names from a fixed list may appear in error details (the rest is attacker text). */
function safeName(name: string): string | undefined {
  return KNOWN_PARAMS.has(name) ? name : undefined
}

function checkBounds(header: unknown): string {
  if (typeof header !== 'string') throw malformed('header must be a string')
  if (header.length > MAX_DIGEST_HEADER_LENGTH) throw malformed('header is too long')
  for (let i = 0; i < header.length; i++) {
    if (isControl(header.charCodeAt(i))) throw malformed('header contains a control character')
  }
  return header
}

/** Parses `#auth-param` starting at `pos`: `name = (token | quoted-string)`, comma separated. */
function parseParams(text: string, pos: number): Map<string, RawParam> {
  const params = new Map<string, RawParam>()
  const skipOws = (): void => {
    while (pos < text.length && (text[pos] === ' ' || text[pos] === '\t')) pos++
  }
  const readToken = (): string => {
    const start = pos
    while (pos < text.length && isTchar(text.charCodeAt(pos))) pos++
    return text.slice(start, pos)
  }

  skipOws()
  if (pos >= text.length) throw malformed('no parameters')
  for (;;) {
    const name = readToken().toLowerCase()
    if (name.length === 0) throw malformed('expected a parameter name')
    skipOws()
    if (text[pos] !== '=') throw malformed('expected "=" after a parameter name', safeName(name))
    pos++
    skipOws()
    let param: RawParam
    if (text[pos] === '"') {
      pos++
      let value = ''
      for (;;) {
        if (pos >= text.length) throw malformed('unterminated quoted string', safeName(name))
        const ch = text[pos] as string
        if (ch === '"') {
          pos++
          break
        }
        if (ch === '\\') {
          if (pos + 1 >= text.length) throw malformed('unterminated quoted string', safeName(name))
          value += text[pos + 1] as string
          pos += 2
          continue
        }
        value += ch
        pos++
      }
      param = { value, quoted: true }
    } else {
      const value = readToken()
      if (value.length === 0) throw malformed('expected a token or a quoted string', safeName(name))
      param = { value, quoted: false }
    }
    if (params.has(name)) throw malformed('duplicate parameter', safeName(name))
    if (params.size >= MAX_DIGEST_PARAMS) throw malformed('too many parameters')
    params.set(name, param)
    skipOws()
    if (pos >= text.length) return params
    if (text[pos] !== ',') throw malformed('expected "," between parameters')
    pos++
    skipOws()
  }
}

/** Splits `Digest <params>`; the scheme name is case-insensitive (RFC 7235 §2.1). */
function parseDigestHeader(header: unknown): Map<string, RawParam> {
  const text = checkBounds(header).replace(/^[ \t]+|[ \t]+$/g, '')
  const match = /^digest[ \t]+/i.exec(text)
  if (match === null) throw malformed('scheme must be Digest')
  return parseParams(text, match[0].length)
}

function quotedParam(params: Map<string, RawParam>, name: string, required: true): string
function quotedParam(params: Map<string, RawParam>, name: string, required: false): string | undefined
function quotedParam(params: Map<string, RawParam>, name: string, required: boolean): string | undefined {
  const p = params.get(name)
  if (p === undefined) {
    if (required) throw malformed('missing parameter', name)
    return undefined
  }
  if (!p.quoted) throw malformed('parameter must be a quoted string', name)
  return p.value
}

function tokenParam(params: Map<string, RawParam>, name: string): string | undefined {
  return params.get(name)?.value
}

/**
 * Maps an algorithm name (case-insensitive) to its canonical form; anything other than MD5
 * and AKAv1-MD5 (MD5-sess, SHA-256, AKAv2-MD5, …) is ERR_INVALID_ARGUMENT.
 */
function parseAlgorithm(value: string): DigestAlgorithm {
  const v = value.toLowerCase()
  if (v === 'md5') return 'MD5'
  if (v === 'akav1-md5') return 'AKAv1-MD5'
  throw malformed('unsupported algorithm', 'algorithm')
}

function parseQop(value: string): DigestQop {
  const v = value.toLowerCase()
  if (v === 'auth' || v === 'auth-int') return v
  throw malformed('unsupported qop', 'qop')
}

const NC_RE = /^[0-9a-f]{8}$/i
const DIGEST_HEX_RE = /^[0-9a-f]{32}$/i

/**
 * Parses a `WWW-Authenticate` header value holding one Digest challenge.
 *
 * @example
 * ```ts
 * const ch = parseWwwAuthenticate('Digest realm="bsf.example", nonce="…", algorithm=AKAv1-MD5, qop="auth-int", opaque="…"')
 * ch.algorithm // 'AKAv1-MD5'
 * ```
 */
export function parseWwwAuthenticate(header: string): DigestChallenge {
  const params = parseDigestHeader(header)
  const challenge: DigestChallenge = {
    realm: quotedParam(params, 'realm', true),
    nonce: quotedParam(params, 'nonce', true),
    algorithm: 'MD5',
    qop: [],
  }
  const algorithm = tokenParam(params, 'algorithm')
  if (algorithm !== undefined) challenge.algorithm = parseAlgorithm(algorithm)
  const qop = quotedParam(params, 'qop', false)
  if (qop !== undefined) {
    // RFC 2617 §3.2.1: unrecognised options are ignored, but at least one must be usable.
    for (const option of qop.split(',')) {
      const v = option.trim().toLowerCase()
      if ((v === 'auth' || v === 'auth-int') && !challenge.qop.includes(v)) challenge.qop.push(v)
    }
    if (challenge.qop.length === 0) throw malformed('no supported qop option', 'qop')
  }
  const opaque = quotedParam(params, 'opaque', false)
  if (opaque !== undefined) challenge.opaque = opaque
  const stale = tokenParam(params, 'stale')
  if (stale !== undefined) {
    const v = stale.toLowerCase()
    if (v !== 'true' && v !== 'false') throw malformed('stale must be true or false', 'stale')
    challenge.stale = v === 'true'
  }
  return challenge
}

/**
 * Parses an `Authorization` header value holding Digest credentials. Checks the shapes
 * RFC 2617 fixes (response = 32 hex digits or empty, nc = 8 hex digits, cnonce and nc
 * present exactly when qop is) and normalises hex to lowercase.
 *
 * @example
 * ```ts
 * const c = parseAuthorization('Digest username="001010123456789@ims.example", realm="bsf.example", nonce="", uri="/", response=""')
 * c.username // the IMPI
 * ```
 */
export function parseAuthorization(header: string): DigestCredentials {
  const params = parseDigestHeader(header)
  const response = quotedParam(params, 'response', true)
  if (response !== '' && !DIGEST_HEX_RE.test(response)) throw malformed('response must be 32 hex digits', 'response')
  const credentials: DigestCredentials = {
    username: quotedParam(params, 'username', true),
    realm: quotedParam(params, 'realm', true),
    nonce: quotedParam(params, 'nonce', true),
    uri: quotedParam(params, 'uri', true),
    response: response.toLowerCase(),
  }
  const algorithm = tokenParam(params, 'algorithm')
  if (algorithm !== undefined) credentials.algorithm = parseAlgorithm(algorithm)
  const qop = tokenParam(params, 'qop')
  const nc = tokenParam(params, 'nc')
  const cnonce = quotedParam(params, 'cnonce', false)
  if (qop !== undefined) {
    credentials.qop = parseQop(qop)
    if (nc === undefined) throw malformed('missing parameter', 'nc')
    if (!NC_RE.test(nc)) throw malformed('nc must be 8 hex digits', 'nc')
    if (cnonce === undefined || cnonce.length === 0) throw malformed('missing parameter', 'cnonce')
    credentials.nc = nc.toLowerCase()
    credentials.cnonce = cnonce
  } else if (nc !== undefined || cnonce !== undefined) {
    // RFC 2617 §3.2.2: cnonce and nonce-count only accompany a qop.
    throw malformed('nc and cnonce require qop', nc !== undefined ? 'nc' : 'cnonce')
  }
  const opaque = quotedParam(params, 'opaque', false)
  if (opaque !== undefined) credentials.opaque = opaque
  const auts = quotedParam(params, 'auts', false)
  if (auts !== undefined) credentials.auts = auts
  return credentials
}

/**
 * Parses an `Authentication-Info` header value (no scheme name, RFC 2617 §3.2.3).
 *
 * @example
 * ```ts
 * const info = parseAuthenticationInfo('qop=auth-int, rspauth="…", cnonce="…", nc=00000001')
 * ```
 */
export function parseAuthenticationInfo(header: string): DigestAuthenticationInfo {
  const params = parseParams(checkBounds(header).replace(/^[ \t]+|[ \t]+$/g, ''), 0)
  const rspauth = quotedParam(params, 'rspauth', true)
  if (!DIGEST_HEX_RE.test(rspauth)) throw malformed('rspauth must be 32 hex digits', 'rspauth')
  const info: DigestAuthenticationInfo = { rspauth: rspauth.toLowerCase() }
  const qop = tokenParam(params, 'qop')
  if (qop !== undefined) info.qop = parseQop(qop)
  const nc = tokenParam(params, 'nc')
  if (nc !== undefined) {
    if (!NC_RE.test(nc)) throw malformed('nc must be 8 hex digits', 'nc')
    info.nc = nc.toLowerCase()
  }
  for (const name of ['cnonce', 'nextnonce', 'opaque', 'nonce'] as const) {
    const v = quotedParam(params, name, false)
    if (v !== undefined) info[name] = v
  }
  return info
}

// ---------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------

function quote(name: string, value: string): string {
  if (typeof value !== 'string') throw invalidArgument(`${name} must be a string`, { param: name })
  for (let i = 0; i < value.length; i++) {
    // A control character (CR/LF above all) would let a value inject header lines.
    if (isControl(value.charCodeAt(i)) || value.charCodeAt(i) === 0x09) {
      throw invalidArgument(`${name} contains a control character`, { param: name })
    }
  }
  return `${name}="${value.replace(/["\\]/g, (c) => `\\${c}`)}"`
}

function checkNc(nc: string): string {
  if (!NC_RE.test(nc)) throw invalidArgument('nc must be 8 hex digits', { param: 'nc' })
  return nc.toLowerCase()
}

function checkAlgorithm(algorithm: string): DigestAlgorithm {
  if (algorithm !== 'MD5' && algorithm !== 'AKAv1-MD5') {
    throw invalidArgument('unsupported algorithm', { param: 'algorithm' })
  }
  return algorithm
}

function checkQop(qop: string): DigestQop {
  if (qop !== 'auth' && qop !== 'auth-int') throw invalidArgument('unsupported qop', { param: 'qop' })
  return qop
}

/**
 * Formats a `WWW-Authenticate` header value, in the parameter order of the TS 24.109 example:
 * realm, nonce, algorithm, qop, opaque, stale.
 *
 * @example
 * ```ts
 * formatWwwAuthenticate({ realm: 'bsf.example', nonce, algorithm: 'AKAv1-MD5', qop: ['auth-int'], opaque })
 * // 'Digest realm="bsf.example", nonce="…", algorithm=AKAv1-MD5, qop="auth-int", opaque="…"'
 * ```
 */
export function formatWwwAuthenticate(challenge: DigestChallenge): string {
  const parts = [quote('realm', challenge.realm), quote('nonce', challenge.nonce)]
  parts.push(`algorithm=${checkAlgorithm(challenge.algorithm)}`)
  if (challenge.qop.length > 0) parts.push(`qop="${challenge.qop.map(checkQop).join(',')}"`)
  if (challenge.opaque !== undefined) parts.push(quote('opaque', challenge.opaque))
  if (challenge.stale === true) parts.push('stale=true')
  return `Digest ${parts.join(', ')}`
}

/**
 * Formats an `Authorization` header value. qop, nc and algorithm are written as tokens
 * (RFC 2617 §3.2.2), everything else quoted.
 *
 * @example
 * ```ts
 * formatAuthorization({ username: impi, realm, nonce: '', uri: '/', response: '' })
 * // 'Digest username="…", realm="…", nonce="", uri="/", response=""'
 * ```
 */
export function formatAuthorization(credentials: DigestCredentials): string {
  const c = credentials
  if (c.response !== '' && !DIGEST_HEX_RE.test(c.response)) {
    throw invalidArgument('response must be 32 hex digits or empty', { param: 'response' })
  }
  const parts = [
    quote('username', c.username),
    quote('realm', c.realm),
    quote('nonce', c.nonce),
    quote('uri', c.uri),
    quote('response', c.response.toLowerCase()),
  ]
  if (c.algorithm !== undefined) parts.push(`algorithm=${checkAlgorithm(c.algorithm)}`)
  if (c.qop !== undefined) {
    if (c.nc === undefined || c.cnonce === undefined || c.cnonce.length === 0) {
      throw invalidArgument('qop requires nc and cnonce', { param: 'qop' })
    }
    parts.push(`qop=${checkQop(c.qop)}`, `nc=${checkNc(c.nc)}`, quote('cnonce', c.cnonce))
  } else if (c.nc !== undefined || c.cnonce !== undefined) {
    throw invalidArgument('nc and cnonce require qop', { param: 'qop' })
  }
  if (c.opaque !== undefined) parts.push(quote('opaque', c.opaque))
  if (c.auts !== undefined) parts.push(quote('auts', c.auts))
  return `Digest ${parts.join(', ')}`
}

/**
 * Formats an `Authentication-Info` header value: qop, rspauth, cnonce, nc, then the
 * optional nextnonce, opaque and nonce.
 *
 * @example
 * ```ts
 * formatAuthenticationInfo({ qop: 'auth-int', rspauth, cnonce, nc: '00000001' })
 * ```
 */
export function formatAuthenticationInfo(info: DigestAuthenticationInfo): string {
  if (!DIGEST_HEX_RE.test(info.rspauth)) throw invalidArgument('rspauth must be 32 hex digits', { param: 'rspauth' })
  const parts: string[] = []
  if (info.qop !== undefined) parts.push(`qop=${checkQop(info.qop)}`)
  parts.push(quote('rspauth', info.rspauth.toLowerCase()))
  if (info.cnonce !== undefined) parts.push(quote('cnonce', info.cnonce))
  if (info.nc !== undefined) parts.push(`nc=${checkNc(info.nc)}`)
  for (const name of ['nextnonce', 'opaque', 'nonce'] as const) {
    const v = info[name]
    if (v !== undefined) parts.push(quote(name, v))
  }
  return parts.join(', ')
}

// ---------------------------------------------------------------------------------------
// Request digest (RFC 2617 §3.2.2.1) and rspauth (§3.2.3)
// ---------------------------------------------------------------------------------------

/** Inputs of {@link computeResponse}. */
export interface DigestResponseInput {
  username: string
  realm: string
  /** The password; for AKAv1-MD5 the raw RES octets (RFC 3310 §3.1), empty on AUTS or MAC failure. */
  password: Uint8Array | string
  /** Request method (`GET`); the empty string gives rspauth (RFC 2617 §3.2.3). */
  method: string
  uri: string
  nonce: string
  /** Omitted: the RFC 2069 form KD(H(A1), nonce ":" H(A2)). */
  qop?: DigestQop | undefined
  nc?: string | undefined
  cnonce?: string | undefined
  /** Entity body, hashed into A2 for qop=auth-int; absent means empty. */
  body?: Uint8Array | string | undefined
  /** MD5 (default) or AKAv1-MD5: the same computation, only the password differs. */
  algorithm?: DigestAlgorithm | undefined
}

function utf8(value: Uint8Array | string): Uint8Array {
  return typeof value === 'string' ? new TextEncoder().encode(value) : value
}

function md5Hex(...parts: (Uint8Array | string)[]): string {
  const h = createHash('md5')
  for (const p of parts) h.update(utf8(p))
  return h.digest('hex')
}

/**
 * The request-digest of RFC 2617 §3.2.2.1 (32 lowercase hex digits):
 * H(A1) = MD5(username ":" realm ":" password), A2 = method ":" uri [":" MD5(body) for auth-int],
 * response = MD5(H(A1) ":" nonce ":" nc ":" cnonce ":" qop ":" H(A2)).
 *
 * @example
 * ```ts
 * // RFC 2617 §3.5
 * computeResponse({ username: 'Mufasa', realm: 'testrealm@host.com', password: 'Circle Of Life', method: 'GET',
 *   uri: '/dir/index.html', nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093', qop: 'auth', nc: '00000001', cnonce: '0a4f113b' })
 * // '6629fae49393a05397450978507c4ef1'
 * ```
 */
export function computeResponse(input: DigestResponseInput): string {
  const { username, realm } = input
  for (const [name, v] of Object.entries({ username, realm })) {
    if (typeof v !== 'string') throw invalidArgument(`${name} must be a string`, { param: name })
  }
  if (!(input.password instanceof Uint8Array) && typeof input.password !== 'string') {
    throw invalidArgument('password must be bytes or a string', { param: 'password' })
  }
  return computeResponseWithHa1({ ...input, ha1: digestHa1(username, realm, input.password) })
}

/**
 * H(A1) = MD5(username ":" realm ":" password) (RFC 2617 §3.2.2.2), 32 lowercase hex digits.
 * A verifier may keep H(A1) instead of the password: it answers for this realm only.
 *
 * @example
 * ```ts
 * digestHa1('Mufasa', 'testrealm@host.com', 'Circle Of Life') // '939e7578ed9e3c518a452acee763bce9'
 * ```
 */
export function digestHa1(username: string, realm: string, password: Uint8Array | string): string {
  return md5Hex(username, ':', realm, ':', password)
}

/**
 * {@link computeResponse} from H(A1) (see {@link digestHa1}) instead of the password.
 *
 * @example
 * ```ts
 * computeResponseWithHa1({ ha1, username, realm, method: 'POST', uri, nonce, qop: 'auth', nc: '00000001', cnonce })
 * ```
 */
export function computeResponseWithHa1(input: Omit<DigestResponseInput, 'password'> & { ha1: string }): string {
  const { method, uri, nonce, ha1 } = input
  for (const [name, v] of Object.entries({ method, uri, nonce, ha1 })) {
    if (typeof v !== 'string') throw invalidArgument(`${name} must be a string`, { param: name })
  }
  if (input.algorithm !== undefined) checkAlgorithm(input.algorithm)
  if (input.qop === undefined) {
    return md5Hex(ha1, ':', nonce, ':', md5Hex(method, ':', uri))
  }
  const qop = checkQop(input.qop)
  if (input.nc === undefined || input.cnonce === undefined) {
    throw invalidArgument('qop requires nc and cnonce', { param: 'qop' })
  }
  const nc = checkNc(input.nc)
  const ha2 = qop === 'auth-int' ? md5Hex(method, ':', uri, ':', md5Hex(input.body ?? '')) : md5Hex(method, ':', uri)
  return md5Hex(ha1, ':', nonce, ':', nc, ':', input.cnonce, ':', qop, ':', ha2)
}

/**
 * rspauth for `Authentication-Info` (RFC 2617 §3.2.3): the request-digest with an empty
 * method and, for auth-int, the hash of the RESPONSE body.
 *
 * @example
 * ```ts
 * const rspauth = computeRspauth({ username, realm, password: xres, uri: '/', nonce, qop: 'auth-int', nc, cnonce, body: xml })
 * ```
 */
export function computeRspauth(input: Omit<DigestResponseInput, 'method'>): string {
  return computeResponse({ ...input, method: '' })
}
