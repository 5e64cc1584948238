/**
 * The UE side of Ub (TS 24.109 §4, Annex A; RFC 3310): builds the initial request, answers
 * the BSF's challenge with the USIM (RES as the Digest password), reports a synchronisation
 * failure with AUTS, checks rspauth and turns BootstrappingInfo into a session with Ks.
 * Pure apart from the USIM call: the SDK does the HTTP exchange.
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto'
import { M2msecError, invalidArgument } from '@m2msec/errors'
import { base64ToBytes, bytesToBase64, bytesToHex, constantTimeEqual, gbaKs, toBytes } from '@m2msec/crypto'
import {
  computeResponse,
  computeRspauth,
  formatAuthorization,
  parseAuthenticationInfo,
  parseWwwAuthenticate,
  type DigestCredentials,
  type DigestQop,
} from './digest.ts'
import { parseBootstrappingInfo } from './bootstrapping-info.ts'
import type { GbaKeyMaterial } from './keys.ts'
import type { Usim } from './usim.ts'
import { UB_ALGORITHM, UB_URI } from './ub.ts'

/**
 * Product token the UE always puts in `User-Agent` on Ub (TS 33.220 §4.5.2), telling the
 * BSF it supports TMPI.
 */
export const GBA_TMPI_PRODUCT_TOKEN = '3gpp-gba-tmpi'

/**
 * The `Authorization` value of the initial `GET /` (TS 24.109 A.3 step 1): the IMPI with
 * empty nonce and response.
 *
 * @example
 * ```ts
 * initialAuthorization({ impi: '001010123456789@ims.mnc001.mcc001.3gppnetwork.org', realm: 'bsf.mnc001.mcc001.pub.3gppnetwork.org' })
 * // 'Digest username="001010…", realm="bsf…", nonce="", uri="/", response=""'
 * ```
 */
export function initialAuthorization(input: { impi: string; realm: string; uri?: string }): string {
  if (typeof input.impi !== 'string' || input.impi.length === 0) {
    throw invalidArgument('impi must not be empty', { field: 'impi' })
  }
  return formatAuthorization({
    username: input.impi,
    realm: input.realm,
    nonce: '',
    uri: input.uri ?? UB_URI,
    response: '',
  })
}

/** What the UE remembers between its answer and the `200 OK`. Holds RES, CK and IK. */
export interface UeAuthState {
  impi: string
  realm: string
  nonce: string
  uri: string
  qop?: DigestQop
  nc?: string
  cnonce?: string
  rand: Uint8Array
  res: Uint8Array
  ck: Uint8Array
  ik: Uint8Array
}

/** Inputs of {@link answerChallenge}. */
export interface UbAnswerInput {
  impi: string
  /** The `WWW-Authenticate` value of the BSF's `401`. */
  wwwAuthenticate: string
  usim: Usim
  /** Default `GET`. */
  method?: string
  /** Default `/`. */
  uri?: string
  /** Request body, hashed for qop=auth-int; default empty. */
  body?: Uint8Array | string
  /** Randomness for the cnonce (16 bytes, hex); default node:crypto. */
  randomBytes?: (length: number) => Uint8Array
}

/**
 * The UE's answer:
 * - `response`: AKA succeeded, send `authorization`; keep `state` for the `200 OK`;
 * - `resync`: SQN out of range, `authorization` carries `auts` (digest over an empty password);
 * - `network-failure`: AUTN failed its MAC check, `authorization` has a digest over an empty
 *   password and no auts (RFC 3310 §3.3), `error` is ERR_MAC_INVALID. Do not trust this BSF.
 */
export type UbAnswer =
  | { kind: 'response'; authorization: string; state: UeAuthState }
  | { kind: 'resync'; authorization: string }
  | { kind: 'network-failure'; authorization: string; error: M2msecError }

/**
 * Answers a Ub challenge: checks algorithm AKAv1-MD5, splits the nonce into RAND (16) and
 * AUTN (16) (server data after them is ignored), runs the USIM and builds the
 * `Authorization` value. Picks qop auth-int when offered, else auth.
 *
 * @example
 * ```ts
 * const a = await answerChallenge({ impi, wwwAuthenticate: res.headers['www-authenticate'], usim })
 * // GET / with Authorization: a.authorization
 * ```
 */
export async function answerChallenge(input: UbAnswerInput): Promise<UbAnswer> {
  const ch = parseWwwAuthenticate(input.wwwAuthenticate)
  if (ch.algorithm !== UB_ALGORITHM) {
    throw invalidArgument('Ub challenge must use algorithm AKAv1-MD5', { param: 'algorithm' })
  }
  let nonceBytes: Uint8Array
  try {
    nonceBytes = base64ToBytes(ch.nonce)
  } catch {
    throw invalidArgument('Ub nonce must be base64', { param: 'nonce' })
  }
  if (nonceBytes.length < 32) throw invalidArgument('Ub nonce must hold RAND and AUTN', { param: 'nonce' })
  const rand = nonceBytes.slice(0, 16)
  const autn = nonceBytes.slice(16, 32)

  const method = input.method ?? 'GET'
  const uri = input.uri ?? UB_URI
  const qop: DigestQop | undefined = ch.qop.includes('auth-int') ? 'auth-int' : ch.qop[0]
  const random = input.randomBytes ?? ((n: number) => toBytes(nodeRandomBytes(n)))
  const cnonceBytes = random(16)
  if (!(cnonceBytes instanceof Uint8Array) || cnonceBytes.length !== 16) {
    throw new M2msecError('ERR_INTERNAL', 'randomBytes must return the requested length')
  }
  const cnonce = bytesToHex(cnonceBytes)
  const nc = '00000001' // one request per nonce on Ub

  const build = (password: Uint8Array, auts?: Uint8Array): string => {
    const credentials: DigestCredentials = {
      username: input.impi,
      realm: ch.realm,
      nonce: ch.nonce,
      uri,
      response: computeResponse({
        username: input.impi,
        realm: ch.realm,
        password,
        method,
        uri,
        nonce: ch.nonce,
        qop,
        nc,
        cnonce,
        body: input.body,
      }),
      algorithm: UB_ALGORITHM,
      ...(qop === undefined ? {} : { qop, nc, cnonce }),
      ...(ch.opaque === undefined ? {} : { opaque: ch.opaque }),
      ...(auts === undefined ? {} : { auts: bytesToBase64(auts) }),
    }
    return formatAuthorization(credentials)
  }

  const result = await input.usim.authenticate(rand, autn)
  switch (result.kind) {
    case 'success': {
      const state: UeAuthState = {
        impi: input.impi,
        realm: ch.realm,
        nonce: ch.nonce,
        uri,
        ...(qop === undefined ? {} : { qop, nc, cnonce }),
        rand,
        res: result.res,
        ck: result.ck,
        ik: result.ik,
      }
      return { kind: 'response', authorization: build(result.res), state }
    }
    case 'sync-failure':
      return { kind: 'resync', authorization: build(new Uint8Array(0), result.auts) }
    case 'mac-failure':
      return {
        kind: 'network-failure',
        authorization: build(new Uint8Array(0)),
        error: new M2msecError('ERR_MAC_INVALID', 'AUTN MAC-A does not verify'),
      }
  }
}

/**
 * Checks the `Authentication-Info` of the `200 OK`: rspauth over the response body with RES
 * as the password, and the echoed qop, nc and cnonce. Throws ERR_UNAUTHENTICATED when it
 * does not verify, ERR_INVALID_ARGUMENT when the header is malformed.
 *
 * @example
 * ```ts
 * verifyAuthenticationInfo(a.state, res.headers['authentication-info'], body)
 * ```
 */
export function verifyAuthenticationInfo(state: UeAuthState, header: string, responseBody: string | Uint8Array): void {
  const info = parseAuthenticationInfo(header)
  if (info.qop !== state.qop || info.nc !== state.nc || info.cnonce !== state.cnonce) {
    throw new M2msecError('ERR_UNAUTHENTICATED', 'Authentication-Info does not match the request')
  }
  const expected = computeRspauth({
    username: state.impi,
    realm: state.realm,
    password: state.res,
    uri: state.uri,
    nonce: state.nonce,
    qop: state.qop,
    nc: state.nc,
    cnonce: state.cnonce,
    body: responseBody,
  })
  const enc = new TextEncoder()
  if (!constantTimeEqual(enc.encode(info.rspauth), enc.encode(expected))) {
    throw new M2msecError('ERR_UNAUTHENTICATED', 'rspauth does not verify')
  }
}

/** A bootstrapping session on the UE: B-TID, key lifetime and the key material. */
export interface UeBootstrapSession extends GbaKeyMaterial {
  btid: string
  lifetime: Date
}

/**
 * Finishes the bootstrap: parses the BootstrappingInfo body and derives Ks = CK || IK.
 *
 * @example
 * ```ts
 * const session = completeBootstrap(a.state, await res.text())
 * const ksNaf = deriveSessionKsNaf(session, 'naf.example.com', UA_PROTOCOL_ID.httpDigest)
 * ```
 */
export function completeBootstrap(state: UeAuthState, bootstrappingInfoBody: string | Uint8Array): UeBootstrapSession {
  const info = parseBootstrappingInfo(bootstrappingInfoBody)
  return {
    impi: state.impi,
    rand: state.rand.slice(),
    ks: gbaKs(state.ck, state.ik),
    btid: info.btid,
    lifetime: info.lifetime,
  }
}
