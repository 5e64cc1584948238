/**
 * The BSF side of Ub (TS 24.109 §4, Annex A; RFC 3310) as pure state-machine functions.
 * Nothing here stores, sends or logs: the BSF service persists the {@link UbPending}
 * record every function returns and turns results into HTTP responses.
 *
 * 1. Initial `GET /` with `Authorization: Digest username=IMPI, nonce="", response=""`:
 *    {@link parseInitialRequest} gives the IMPI; the service fetches an AV.
 * 2. {@link challenge} builds the `401` `WWW-Authenticate` header (nonce = base64(RAND || AUTN))
 *    and a pending record (opaque, expiry, the AV).
 * 3. {@link verifyResponse} checks the UE's `Authorization` against that record:
 *    `ok` (then answer `200` with {@link authenticationInfo} and the BootstrappingInfo body),
 *    `resync` (the UE sent AUTS: recover SQN_MS, fetch a fresh AV, challenge again) or a
 *    typed failure. A pending record is single-use: the first response carrying its nonce
 *    ends it, whatever the outcome, so a second one is ERR_REPLAY.
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto'
import { M2msecError, invalidArgument, isM2msecError } from '@m2msec/errors'
import { base64ToBytes, bytesToBase64, bytesToHex, constantTimeEqual, gbaKs, toBytes } from '@m2msec/crypto'
import {
  computeResponse,
  computeRspauth,
  formatAuthenticationInfo,
  formatWwwAuthenticate,
  parseAuthorization,
  type DigestCredentials,
  type DigestQop,
} from './digest.ts'
import type { GbaKeyMaterial } from './keys.ts'

/** The Digest algorithm of Ub. */
export const UB_ALGORITHM = 'AKAv1-MD5'

/** Request-URI of the bootstrapping resource (TS 24.109 A.3: "by default /"). */
export const UB_URI = '/'

/**
 * How long a challenge stays answerable unless the caller says otherwise: 5 minutes. No
 * value is given by TS 24.109; this is a project choice (a UE answers within seconds).
 */
export const DEFAULT_UB_NONCE_TTL_MS = 5 * 60_000

/** An authentication vector as the HE (the KMS `Milenage` operation) issues it. */
export interface UbAuthVector {
  rand: Uint8Array
  autn: Uint8Array
  xres: Uint8Array
  ck: Uint8Array
  ik: Uint8Array
}

/**
 * One outstanding challenge. Plain data (bytes, strings, numbers) so the service can store
 * it; it holds XRES, CK and IK, so it must be stored like key material.
 */
export interface UbPending {
  readonly impi: string
  readonly realm: string
  /** base64(RAND || AUTN), the lookup key for the UE's answer. */
  readonly nonce: string
  readonly opaque: string
  readonly qop: DigestQop
  readonly av: Readonly<UbAuthVector>
  /** Epoch milliseconds. */
  readonly issuedAt: number
  /** Epoch milliseconds; a response at or after this instant is ERR_REPLAY (`expired`). */
  readonly expiresAt: number
  /** True once a response for this nonce was evaluated. */
  readonly used: boolean
}

/** Options of {@link challenge}. */
export interface UbChallengeOptions {
  /** The IMPI the initial request named; the answer must carry the same username. */
  impi: string
  /** Lifetime of the challenge; default {@link DEFAULT_UB_NONCE_TTL_MS}. */
  ttlMs?: number
  /** qop offered; default `auth-int` as in TS 24.109 A.3. */
  qop?: DigestQop
  /** Randomness for `opaque` (16 bytes are drawn); default node:crypto. */
  randomBytes?: (length: number) => Uint8Array
}

/** What {@link challenge} returns: the `WWW-Authenticate` value and the record to keep. */
export interface UbChallenge {
  wwwAuthenticate: string
  pending: UbPending
}

function checkAv(av: UbAuthVector): void {
  const sizes: [keyof UbAuthVector, number, number][] = [
    ['rand', 16, 16],
    ['autn', 16, 16],
    ['xres', 4, 16], // RES is 32..128 bits (TS 33.102 §6.3.2)
    ['ck', 16, 16],
    ['ik', 16, 16],
  ]
  for (const [field, min, max] of sizes) {
    const v = (av as unknown as Record<string, unknown>)[field]
    if (!(v instanceof Uint8Array) || v.length < min || v.length > max) {
      throw invalidArgument(`av.${field} must be ${min === max ? min : `${min}..${max}`} bytes`, {
        field: `av.${field}`,
      })
    }
  }
}

function checkNow(now: number): void {
  if (!Number.isFinite(now)) throw invalidArgument('now must be epoch milliseconds', { field: 'now' })
}

/**
 * Starts a challenge: nonce = base64(RAND || AUTN) (TS 24.109 A.3 step 4, no server data),
 * a random opaque, algorithm AKAv1-MD5, qop auth-int.
 *
 * @example
 * ```ts
 * const { wwwAuthenticate, pending } = challenge(av, 'bsf.mnc001.mcc001.pub.3gppnetwork.org', Date.now(), { impi })
 * // 401 with WWW-Authenticate: wwwAuthenticate; store pending under pending.nonce
 * ```
 */
export function challenge(av: UbAuthVector, realm: string, now: number, options: UbChallengeOptions): UbChallenge {
  checkAv(av)
  checkNow(now)
  if (typeof realm !== 'string' || realm.length === 0)
    throw invalidArgument('realm must not be empty', { field: 'realm' })
  if (typeof options.impi !== 'string' || options.impi.length === 0) {
    throw invalidArgument('impi must not be empty', { field: 'impi' })
  }
  const ttlMs = options.ttlMs ?? DEFAULT_UB_NONCE_TTL_MS
  if (!Number.isInteger(ttlMs) || ttlMs <= 0)
    throw invalidArgument('ttlMs must be a positive integer', { field: 'ttlMs' })
  const qop = options.qop ?? 'auth-int'
  const random = options.randomBytes ?? ((n: number) => toBytes(nodeRandomBytes(n)))
  const opaqueBytes = random(16)
  if (!(opaqueBytes instanceof Uint8Array) || opaqueBytes.length !== 16) {
    throw new M2msecError('ERR_INTERNAL', 'randomBytes must return the requested length')
  }
  const nonce = bytesToBase64(new Uint8Array([...av.rand, ...av.autn]))
  const opaque = bytesToHex(opaqueBytes)
  const pending: UbPending = {
    impi: options.impi,
    realm,
    nonce,
    opaque,
    qop,
    av: { rand: av.rand.slice(), autn: av.autn.slice(), xres: av.xres.slice(), ck: av.ck.slice(), ik: av.ik.slice() },
    issuedAt: now,
    expiresAt: now + ttlMs,
    used: false,
  }
  const wwwAuthenticate = formatWwwAuthenticate({ realm, nonce, algorithm: UB_ALGORITHM, qop: [qop], opaque })
  return { wwwAuthenticate, pending }
}

/** The initial Ub request's identity (TS 24.109 A.3 step 1). */
export interface UbInitialRequest {
  impi: string
  /** The realm the UE guessed (its BSF host); informational only. */
  realm: string
}

/**
 * Reads the initial `Authorization` header: username = IMPI, nonce and response empty.
 * Throws ERR_INVALID_ARGUMENT for anything else (use {@link verifyResponse} for answers).
 *
 * @example
 * ```ts
 * const { impi } = parseInitialRequest(req.headers.authorization)
 * ```
 */
export function parseInitialRequest(authorizationHeader: string): UbInitialRequest {
  const c = parseAuthorization(authorizationHeader)
  if (c.nonce !== '' || c.response !== '') {
    throw invalidArgument('initial Ub request must have an empty nonce and response')
  }
  if (c.username.length === 0) throw invalidArgument('initial Ub request must name the IMPI', { param: 'username' })
  return { impi: c.username, realm: c.realm }
}

/** The request line and body the `Authorization` header came with. */
export interface UbRequest {
  method: string
  /** Request-target, compared with the digest `uri`. */
  uri: string
  /** Entity body (hashed for qop=auth-int); absent means empty. */
  body?: Uint8Array | string
}

/**
 * Why {@link verifyResponse} refused:
 * - `malformed` (ERR_INVALID_ARGUMENT): unparsable header, or an AUTS that is not 14 bytes;
 * - `nonce-mismatch` (ERR_UNAUTHENTICATED): the header answers another challenge;
 * - `replayed` (ERR_REPLAY): this challenge was already answered;
 * - `expired` (ERR_REPLAY): answered after `expiresAt`;
 * - `username-mismatch` (ERR_UNAUTHENTICATED): not the IMPI that was challenged;
 * - `parameter-mismatch` (ERR_UNAUTHENTICATED): realm, uri, opaque, algorithm or qop differ
 *   from the challenge and request;
 * - `wrong-response` (ERR_UNAUTHENTICATED): RES ≠ XRES (TS 24.109 §4.3, user authentication failure);
 * - `network-authentication-failure` (ERR_UNAUTHENTICATED): the digest was computed with an
 *   empty password and no AUTS: the UE rejected AUTN (RFC 3310 §3.3, TS 24.109 §4.4).
 */
export type UbFailureReason =
  | 'malformed'
  | 'nonce-mismatch'
  | 'replayed'
  | 'expired'
  | 'username-mismatch'
  | 'parameter-mismatch'
  | 'wrong-response'
  | 'network-authentication-failure'

/** Outcome of {@link verifyResponse}; every variant carries the pending record to store. */
export type UbVerifyResult =
  | ({ kind: 'ok'; pending: UbPending; credentials: DigestCredentials } & GbaKeyMaterial)
  | { kind: 'resync'; pending: UbPending; impi: string; rand: Uint8Array; auts: Uint8Array }
  | { kind: 'failure'; pending: UbPending; reason: UbFailureReason; error: M2msecError }

function failure(pending: UbPending, reason: UbFailureReason, error: M2msecError): UbVerifyResult {
  return { kind: 'failure', pending, reason, error }
}

function sameDigest(a: string, b: string): boolean {
  const enc = new TextEncoder()
  return constantTimeEqual(enc.encode(a), enc.encode(b))
}

/**
 * Checks the UE's answer to {@link challenge}. Never throws for a bad request (only for a
 * bad `pending`/`now`); the returned `pending` is the record to store (marked used once the
 * header matched its nonce). On `resync`, run `recoverSqnMs(e, opc, rand, auts)` in the HE
 * (the KMS), set SQN_HE from it and call {@link challenge} with a fresh AV.
 *
 * @example
 * ```ts
 * const r = verifyResponse(pending, req.headers.authorization, { method: 'GET', uri: '/' }, Date.now())
 * if (r.kind === 'ok') { const btid = btid(r.rand, bsfHost); ... }
 * ```
 */
export function verifyResponse(
  pending: UbPending,
  authorizationHeader: string,
  request: UbRequest,
  now: number,
): UbVerifyResult {
  checkNow(now)
  checkAv(pending.av)
  let c: DigestCredentials
  try {
    c = parseAuthorization(authorizationHeader)
  } catch (err) {
    if (isM2msecError(err)) return failure(pending, 'malformed', err)
    throw err
  }
  if (c.nonce !== pending.nonce) {
    return failure(pending, 'nonce-mismatch', new M2msecError('ERR_UNAUTHENTICATED', 'unknown nonce'))
  }
  if (pending.used) {
    return failure(pending, 'replayed', new M2msecError('ERR_REPLAY', 'challenge already answered'))
  }
  const used: UbPending = { ...pending, used: true }
  if (now >= pending.expiresAt) {
    return failure(used, 'expired', new M2msecError('ERR_REPLAY', 'challenge expired'))
  }
  if (c.username !== pending.impi) {
    return failure(
      used,
      'username-mismatch',
      new M2msecError('ERR_UNAUTHENTICATED', 'username does not match the challenge'),
    )
  }
  const mismatch = (param: string): UbVerifyResult =>
    failure(
      used,
      'parameter-mismatch',
      new M2msecError('ERR_UNAUTHENTICATED', 'Digest parameter does not match the challenge', { param }),
    )
  if (c.realm !== pending.realm) return mismatch('realm')
  if (c.uri !== request.uri) return mismatch('uri')
  if (c.opaque !== pending.opaque) return mismatch('opaque')
  if (c.algorithm !== UB_ALGORITHM) return mismatch('algorithm')
  if (c.qop !== pending.qop) return mismatch('qop')
  if (c.response === '') {
    return failure(used, 'malformed', invalidArgument('Digest header: missing response', { param: 'response' }))
  }

  const digestFor = (password: Uint8Array): string =>
    computeResponse({
      username: c.username,
      realm: c.realm,
      password,
      method: request.method,
      uri: c.uri,
      nonce: c.nonce,
      qop: c.qop,
      nc: c.nc,
      cnonce: c.cnonce,
      body: request.body,
    })
  const wrongResponse = (): UbVerifyResult =>
    failure(used, 'wrong-response', new M2msecError('ERR_UNAUTHENTICATED', 'Digest response does not verify'))

  if (c.auts !== undefined) {
    // RFC 3310 §3.4: on a synchronisation failure the digest uses an empty password.
    if (!sameDigest(c.response, digestFor(new Uint8Array(0)))) return wrongResponse()
    let auts: Uint8Array
    try {
      auts = base64ToBytes(c.auts)
    } catch {
      auts = new Uint8Array(0)
    }
    if (auts.length !== 14) {
      return failure(used, 'malformed', invalidArgument('auts must be base64 of 14 bytes', { param: 'auts' }))
    }
    return { kind: 'resync', pending: used, impi: pending.impi, rand: pending.av.rand.slice(), auts }
  }

  if (!sameDigest(c.response, digestFor(pending.av.xres))) {
    if (sameDigest(c.response, digestFor(new Uint8Array(0)))) {
      return failure(
        used,
        'network-authentication-failure',
        new M2msecError('ERR_UNAUTHENTICATED', 'UE rejected the network authentication token'),
      )
    }
    return wrongResponse()
  }
  return {
    kind: 'ok',
    pending: used,
    credentials: c,
    impi: pending.impi,
    rand: pending.av.rand.slice(),
    ks: gbaKs(pending.av.ck, pending.av.ik),
  }
}

/**
 * `Authentication-Info` for the `200 OK` (RFC 2617 §3.2.3, TS 24.109 A.3 step 6): rspauth
 * over the response body with XRES as the password, echoing qop, cnonce, nc, opaque and
 * nonce as the public trace does.
 *
 * @example
 * ```ts
 * const body = bootstrappingInfo({ btid: btid(r.rand, bsfHost), lifetime })
 * res.setHeader('Authentication-Info', authenticationInfo(r.pending, r.credentials, body))
 * ```
 */
export function authenticationInfo(
  pending: UbPending,
  credentials: DigestCredentials,
  responseBody: string | Uint8Array,
): string {
  checkAv(pending.av)
  const rspauth = computeRspauth({
    username: credentials.username,
    realm: credentials.realm,
    password: pending.av.xres,
    uri: credentials.uri,
    nonce: credentials.nonce,
    qop: credentials.qop,
    nc: credentials.nc,
    cnonce: credentials.cnonce,
    body: responseBody,
  })
  return formatAuthenticationInfo({
    rspauth,
    ...(credentials.qop === undefined ? {} : { qop: credentials.qop }),
    ...(credentials.cnonce === undefined ? {} : { cnonce: credentials.cnonce }),
    ...(credentials.nc === undefined ? {} : { nc: credentials.nc }),
    opaque: pending.opaque,
    nonce: pending.nonce,
  })
}
