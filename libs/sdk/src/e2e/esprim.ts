/**
 * ESPrim: end-to-end security of primitives (TS-0003 §8.4, §10.3.8). A request or
 * response primitive travels as a JWE compact serialisation (`alg: dir`, AES-GCM) under
 * sessionESPrimKey; transit CSEs relay it (`m2m:securityInfo`, sit 5) without being able
 * to read or change it.
 *
 * Session key (§10.3.8.2, esprimKeyGenAlgID 1), via `sessionEsprimKey` of @m2msec/crypto:
 *   HMAC-SHA256(pairwiseESPrimKey, receiver esrv (16 bytes) || originator esrv (16 bytes) ||
 *               "oneM2M HMAC-SHA256 sessionESPrimKey derivation algorithm")
 * The 32-byte result is the CEK of A256GCM; A192GCM / A128GCM use its first 24 / 16 bytes.
 *
 * Freshness beyond the spec (docs/e2e-protection.md §3): every request carries a
 * protected `seq`; the receiver keeps one anti-replay window per session (kid, ori, rri),
 * and the originator accepts one response per outstanding `seq`.
 */
import { CompactEncrypt, compactDecrypt, decodeProtectedHeader } from 'jose'
import { assertLength, sessionEsprimKey } from '@m2msec/crypto'
import { M2msecError, invalidArgument, type ErrorDetails } from '@m2msec/errors'
import { ReplayWindow } from '@m2msec/groupkeys'
import {
  CONTENT_ENCRYPTION_ALGORITHMS,
  assertAlgorithm,
  contentKeyLength,
  type ContentEncryption,
} from './algorithms.ts'

/** `m2m:esprimProtocolAndAlgID` (TS-0004): JWE compact with AES-GCM. */
export const ESPRIM_PROTOCOL_ALG_IDS: Readonly<Record<ContentEncryption, number>> = Object.freeze({
  A128GCM: 10,
  A192GCM: 11,
  A256GCM: 12,
})

/** `m2m:esprimKeyGenAlgID` 1 = HMAC-SHA256 (the only value). */
export const ESPRIM_KEY_GEN_HMAC_SHA256 = 1

/** `cty` of a protected request: the oneM2M media type of a JSON request primitive. */
export const ESPRIM_REQUEST_CTY = 'application/vnd.onem2m-preq+json'
/** `cty` of a protected response. The `cty` also tells the two directions apart. */
export const ESPRIM_RESPONSE_CTY = 'application/vnd.onem2m-prsp+json'

/** `m2m:securityInfo` `securityInfoType` values used here (TS-0004 §6.3.4.2.35). */
export const SECURITY_INFO_TYPE = Object.freeze({ randObjectRequest: 3, randObjectResponse: 4, esprimObject: 5 })

/** TS-0004 response status codes of ESPrim, put into `details.rsc` of the errors. */
export const ESPRIM_RSC = Object.freeze({
  unsupportedOption: 4111,
  unknownKeyId: 4112,
  unknownOrigRandId: 4113,
  unknownRecvRandId: 4114,
  badMac: 4115,
  impersonation: 4116,
  decryptionError: 5210,
  encryptionError: 5211,
})

/** A request or response primitive in its JSON form (short names: `fr`, `to`, `op`, `rqi`, …). */
export type EsprimPrimitive = Readonly<Record<string, unknown>>

/** A receiverESPrimRandObject or originatorESPrimRandObject. */
export interface EsprimRandObject {
  /** `esri`. A receiver's shared object (published in e2eSecInfo) has an id starting `shared-`. */
  readonly id: string
  /** `esrv`: 16 random bytes. */
  readonly value: Uint8Array
  /** `esrx` in ms since the epoch (whole seconds: the wire form has second precision). */
  readonly expiresAt: number
  /** `esks` (receiver, a list) or `esk` (originator, one value). */
  readonly keyGenAlgIds: readonly number[]
  /** `espa`. */
  readonly protocolAlgIds: readonly number[]
}

/** The JSON form of a rand object (oneM2M short names). */
export interface EsprimRandObjectJson {
  readonly esri: string
  /** base64url, no padding (TS-0004's type for it is not confirmed; our choice). */
  readonly esrv: string
  /** m2m:timestamp, ISO 8601 basic UTC: `YYYYMMDDTHHMMSS`. */
  readonly esrx: string
  readonly esks?: readonly number[]
  readonly esk?: number
  readonly espa: readonly number[]
}

/** Random bytes source (pass node:crypto `randomBytes`). */
export type Random = (length: number) => Uint8Array

const DEFAULT_RAND_LIFETIME_MS = 60 * 60 * 1000
const DEFAULT_MAX_LENGTH = 256 * 1024
const ID_RE = /^[A-Za-z0-9._-]{1,64}$/
const TIMESTAMP_RE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})$/

function esprimError(
  code: M2msecError['code'],
  message: string,
  rsc: number | undefined,
  details: ErrorDetails = {},
  cause?: unknown,
): M2msecError {
  return new M2msecError(
    code,
    message,
    { ...details, ...(rsc === undefined ? {} : { rsc }) },
    cause === undefined ? undefined : { cause },
  )
}

function toTimestamp(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace(/[-:]/g, '')
}

function fromTimestamp(text: unknown): number {
  const m = typeof text === 'string' ? TIMESTAMP_RE.exec(text) : null
  if (m === null) throw invalidArgument('esrx must be a timestamp YYYYMMDDTHHMMSS', { field: 'esrx' })
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number]
  const ms = Date.UTC(y, mo - 1, d, h, mi, s)
  if (toTimestamp(ms) !== text) throw invalidArgument('esrx is not a valid date', { field: 'esrx' })
  return ms
}

function isIdList(value: unknown): value is number[] {
  return Array.isArray(value) && value.length > 0 && value.length <= 16 && value.every((v) => Number.isSafeInteger(v))
}

/**
 * The JSON form of a rand object; `role` picks `esks` (receiver) or `esk` (originator).
 *
 * @example
 * ```ts
 * const json = randObjectToJson(rx.issueRandObject(), 'receiver') // { esri, esrv, esrx, esks: [1], espa: [12, 11, 10] }
 * ```
 */
export function randObjectToJson(rand: EsprimRandObject, role: 'receiver' | 'originator'): EsprimRandObjectJson {
  const base = {
    esri: rand.id,
    esrv: Buffer.from(rand.value).toString('base64url'),
    esrx: toTimestamp(rand.expiresAt),
  }
  if (role === 'receiver') return { ...base, esks: [...rand.keyGenAlgIds], espa: [...rand.protocolAlgIds] }
  const [esk] = rand.keyGenAlgIds
  if (esk === undefined || rand.keyGenAlgIds.length !== 1) {
    throw invalidArgument('an originator rand object has exactly one key generation algorithm', { field: 'esk' })
  }
  return { ...base, esk, espa: [...rand.protocolAlgIds] }
}

/**
 * Parses and validates the JSON form of a rand object (either role).
 *
 * @example
 * ```ts
 * const rro = randObjectFromJson(JSON.parse(body).ero)
 * ```
 */
export function randObjectFromJson(json: unknown): EsprimRandObject {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw invalidArgument('rand object must be a JSON object', { field: 'randObject' })
  }
  const o = json as Record<string, unknown>
  if (typeof o.esri !== 'string' || !ID_RE.test(o.esri)) {
    throw invalidArgument('esri must be 1..64 of [A-Za-z0-9._-]', { field: 'esri' })
  }
  const value = typeof o.esrv === 'string' ? new Uint8Array(Buffer.from(o.esrv, 'base64url')) : undefined
  if (value === undefined || value.length !== 16 || Buffer.from(value).toString('base64url') !== o.esrv) {
    throw invalidArgument('esrv must be 16 bytes in base64url', { field: 'esrv' })
  }
  const keyGen = o.esks ?? (o.esk === undefined ? undefined : [o.esk])
  if (!isIdList(keyGen)) throw invalidArgument('esks/esk must list key generation algorithm ids', { field: 'esks' })
  if (!isIdList(o.espa)) throw invalidArgument('espa must list protocol and algorithm ids', { field: 'espa' })
  return { id: o.esri, value, expiresAt: fromTimestamp(o.esrx), keyGenAlgIds: keyGen, protocolAlgIds: o.espa }
}

function randomId(prefix: string, random: Random): string {
  return `${prefix}${Buffer.from(random(9)).toString('base64url')}`
}

/** The CEK for `enc`: sessionESPrimKey itself for A256GCM, its first 24 / 16 bytes otherwise. */
function cekFor(sessionKey: Uint8Array, enc: ContentEncryption): Uint8Array {
  return sessionKey.slice(0, contentKeyLength(enc))
}

/**
 * Computes sessionESPrimKey for a pair of rand objects (TS-0003 §10.3.8.2); exported so
 * tests and other implementations can check the derivation.
 *
 * @example
 * ```ts
 * const key = deriveSessionEsprimKey(pairwiseKey, rro, oro) // 32 bytes
 * ```
 */
export function deriveSessionEsprimKey(
  pairwiseKey: Uint8Array,
  receiverRand: EsprimRandObject,
  originatorRand: EsprimRandObject,
): Uint8Array {
  return sessionEsprimKey(pairwiseKey, receiverRand.value, originatorRand.value)
}

/** The ESPrim header fields this module reads, after checking their types. */
interface EsprimHeader {
  readonly enc: ContentEncryption
  readonly kid: string
  readonly cty: string
  readonly ori: string
  readonly rri: string
  readonly seq: number
  readonly oro: unknown
}

function readHeader(jwe: unknown, allowed: readonly ContentEncryption[], maxLength: number): EsprimHeader {
  if (typeof jwe !== 'string') throw invalidArgument('ESPrim object must be a string', { field: 'epo' })
  if (jwe.length > maxLength) {
    throw new M2msecError('ERR_PAYLOAD_TOO_LARGE', `ESPrim object exceeds ${maxLength} characters`, { maxLength })
  }
  let h: Record<string, unknown>
  try {
    if (jwe.split('.').length !== 5) throw new Error('not 5 parts')
    h = decodeProtectedHeader(jwe) as Record<string, unknown>
  } catch (cause) {
    throw esprimError(
      'ERR_INVALID_ARGUMENT',
      'ESPrim object is not a JWE compact serialisation',
      undefined,
      {
        reason: 'malformed',
      },
      cause,
    )
  }
  const details = { rsc: ESPRIM_RSC.unsupportedOption }
  assertAlgorithm(h.alg, ['dir'] as const, 'alg', details)
  assertAlgorithm(h.enc, allowed, 'enc', details)
  const { kid, cty, ori, rri, seq } = h
  if (
    typeof kid !== 'string' ||
    typeof cty !== 'string' ||
    typeof ori !== 'string' ||
    typeof rri !== 'string' ||
    !Number.isSafeInteger(seq) ||
    (seq as number) < 0
  ) {
    throw esprimError(
      'ERR_INVALID_ARGUMENT',
      'ESPrim header lacks kid, cty, ori, rri or seq',
      ESPRIM_RSC.unsupportedOption,
      {
        reason: 'malformed',
      },
    )
  }
  return { enc: h.enc, kid, cty, ori, rri, seq: seq as number, oro: h.oro }
}

function parsePrimitive(plaintext: Uint8Array): EsprimPrimitive {
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plaintext))
  } catch (cause) {
    throw esprimError('ERR_INVALID_ARGUMENT', 'inner primitive is not JSON', undefined, { reason: 'malformed' }, cause)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw esprimError('ERR_INVALID_ARGUMENT', 'inner primitive is not a JSON object', undefined, {
      reason: 'malformed',
    })
  }
  return value as EsprimPrimitive
}

async function seal(
  primitive: EsprimPrimitive,
  header: Record<string, unknown> & { enc: ContentEncryption },
  sessionKey: Uint8Array,
): Promise<string> {
  if (typeof primitive !== 'object' || primitive === null || Array.isArray(primitive)) {
    throw invalidArgument('primitive must be a JSON object', { field: 'primitive' })
  }
  const plaintext = new TextEncoder().encode(JSON.stringify(primitive))
  try {
    return await new CompactEncrypt(plaintext)
      .setProtectedHeader({ alg: 'dir', ...header })
      .encrypt(cekFor(sessionKey, header.enc))
  } catch (cause) {
    throw esprimError('ERR_INTERNAL', 'ESPrim encryption failed', ESPRIM_RSC.encryptionError, {}, cause)
  }
}

async function unseal(jwe: string, enc: ContentEncryption, sessionKey: Uint8Array): Promise<Uint8Array> {
  try {
    const { plaintext } = await compactDecrypt(jwe, cekFor(sessionKey, enc), {
      keyManagementAlgorithms: ['dir'],
      contentEncryptionAlgorithms: [enc],
    })
    return plaintext
  } catch (cause) {
    throw esprimError(
      'ERR_CIPHERTEXT_INVALID',
      'ESPrim object does not decrypt under the session key (modified or wrong key)',
      ESPRIM_RSC.badMac,
      {},
      cause,
    )
  }
}

/** The pairwiseESPrimKey a receiver holds for a `kid`, and the identity bound to it. */
export interface EsprimPairwiseKey {
  /** At least 16 bytes. */
  readonly key: Uint8Array
  /** The only `fr` a request under this key may carry (TS-0003 §7.2 impersonation check). */
  readonly originatorId: string
  /** ms since the epoch; absent = never expires. */
  readonly expiresAt?: number
}

/** Options of {@link createEsprimReceiver}. */
export interface EsprimReceiverOptions {
  /** Looks up a pairwiseESPrimKeyID. */
  readonly pairwiseKey: (kid: string) => EsprimPairwiseKey | undefined
  readonly random: Random
  /** ms since the epoch. */
  readonly now: () => number
  /** Accepted `enc`, strongest first (default A256GCM, A192GCM, A128GCM). */
  readonly encryptions?: readonly ContentEncryption[]
  /** Lifetime of the rand objects this receiver issues (default 1 h). */
  readonly randLifetimeMs?: number
  /** Anti-replay window per session (default 64). */
  readonly windowSize?: number
  /** Live sessions kept at most; a new one beyond it is refused, ERR_RATE_LIMITED (default 10,000). */
  readonly maxSessions?: number
  /** Largest ESPrim object accepted, in characters (default 256 KiB). */
  readonly maxLength?: number
}

/** A request that passed every check. */
export interface OpenedEsprimRequest {
  readonly primitive: EsprimPrimitive
  /** The identity bound to the pairwise key; equal to `primitive.fr`. */
  readonly originatorId: string
  readonly kid: string
  readonly ori: string
  readonly rri: string
  readonly seq: number
  readonly enc: ContentEncryption
}

/** The receiving end (a CSE or AE hosting the target resource). */
export interface EsprimReceiver {
  /** A new receiverESPrimRandObject (securityInfoType 4, or `esro` in e2eSecInfo when shared). */
  issueRandObject(options?: { readonly shared?: boolean }): EsprimRandObject
  /**
   * Checks and opens a protected request. Errors (with `details.rsc`): ERR_INVALID_ARGUMENT
   * (4111, header or alg), ERR_KEY_NOT_FOUND (4112), ERR_NOT_FOUND (4113 unknown or expired
   * originator rand, 4114 receiver rand), ERR_CIPHERTEXT_INVALID (4115), ERR_REPLAY
   * (`details.reason` replay / too-old), ERR_UNAUTHENTICATED (4116, `fr` is not the key's
   * identity), ERR_PAYLOAD_TOO_LARGE.
   */
  openRequest(jwe: string): Promise<OpenedEsprimRequest>
  /** Protects the response to `request` under the same session key and `seq`. */
  protectResponse(request: OpenedEsprimRequest, response: EsprimPrimitive): Promise<string>
  /** Sessions currently held (for metrics and tests). */
  readonly sessionCount: number
}

interface Session {
  readonly key: Uint8Array
  readonly originatorRand: EsprimRandObject
  readonly espa: readonly number[]
  readonly window: ReplayWindow
  readonly originatorId: string
  readonly expiresAt: number
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a).equals(Buffer.from(b))
}

/**
 * Creates the receiving end of ESPrim.
 *
 * @example
 * ```ts
 * const rx = createEsprimReceiver({ pairwiseKey: (kid) => keys.get(kid), random: randomBytes, now: Date.now })
 * const rro = rx.issueRandObject() // to the originator (sit 4)
 * const req = await rx.openRequest(seci.epo)
 * const epo = await rx.protectResponse(req, { rsc: 2000, rqi: req.primitive.rqi, pc: {...} })
 * ```
 */
export function createEsprimReceiver(options: EsprimReceiverOptions): EsprimReceiver {
  const encryptions = options.encryptions ?? ['A256GCM', 'A192GCM', 'A128GCM']
  for (const enc of encryptions) assertAlgorithm(enc, CONTENT_ENCRYPTION_ALGORITHMS, 'enc')
  if (encryptions.length === 0) throw invalidArgument('at least one enc is needed', { field: 'encryptions' })
  const lifetime = options.randLifetimeMs ?? DEFAULT_RAND_LIFETIME_MS
  if (!Number.isSafeInteger(lifetime) || lifetime < 1000) {
    throw invalidArgument('randLifetimeMs must be at least 1000', { field: 'randLifetimeMs' })
  }
  const windowSize = options.windowSize ?? 64
  new ReplayWindow(windowSize) // validates the size up front
  const maxSessions = options.maxSessions ?? 10_000
  const maxLength = options.maxLength ?? DEFAULT_MAX_LENGTH
  const rands = new Map<string, EsprimRandObject>()
  const sessions = new Map<string, Session>()

  const prune = (now: number): void => {
    for (const [id, r] of rands) if (r.expiresAt <= now) rands.delete(id)
    for (const [id, s] of sessions) if (s.expiresAt <= now) sessions.delete(id)
  }

  const sessionFor = (h: EsprimHeader, pk: EsprimPairwiseKey, rro: EsprimRandObject, now: number): Session => {
    const id = `${h.kid}\n${h.ori}\n${h.rri}`
    const known = sessions.get(id)
    let oro: EsprimRandObject | undefined
    if (h.oro !== undefined) {
      try {
        oro = randObjectFromJson(h.oro)
      } catch (cause) {
        throw esprimError(
          'ERR_INVALID_ARGUMENT',
          'oro is not a valid originator rand object',
          ESPRIM_RSC.unsupportedOption,
          {
            reason: 'malformed',
          },
          cause,
        )
      }
      if (oro.id !== h.ori) {
        throw esprimError('ERR_INVALID_ARGUMENT', 'oro does not match ori', ESPRIM_RSC.unknownOrigRandId, {
          reason: 'malformed',
        })
      }
    }
    if (known !== undefined) {
      if (oro !== undefined && !sameBytes(oro.value, known.originatorRand.value)) {
        throw esprimError('ERR_NOT_FOUND', 'ori names another originator rand object', ESPRIM_RSC.unknownOrigRandId)
      }
      return known
    }
    if (oro === undefined) {
      throw esprimError('ERR_NOT_FOUND', 'unknown originator rand id and no oro', ESPRIM_RSC.unknownOrigRandId)
    }
    if (oro.expiresAt <= now) {
      throw esprimError('ERR_NOT_FOUND', 'originator rand object has expired', ESPRIM_RSC.unknownOrigRandId, {
        reason: 'expired',
      })
    }
    const espa = oro.protocolAlgIds.filter((id) => rro.protocolAlgIds.includes(id))
    if (
      oro.expiresAt > rro.expiresAt ||
      espa.length !== oro.protocolAlgIds.length ||
      oro.keyGenAlgIds.length !== 1 ||
      oro.keyGenAlgIds[0] !== ESPRIM_KEY_GEN_HMAC_SHA256 ||
      !rro.keyGenAlgIds.includes(ESPRIM_KEY_GEN_HMAC_SHA256)
    ) {
      throw esprimError(
        'ERR_INVALID_ARGUMENT',
        'originator rand object is not compatible with the receiver rand object',
        ESPRIM_RSC.unsupportedOption,
        { reason: 'incompatible-rand' },
      )
    }
    return {
      key: deriveSessionEsprimKey(pk.key, rro, oro),
      originatorRand: oro,
      espa,
      window: new ReplayWindow(windowSize),
      originatorId: pk.originatorId,
      expiresAt: Math.min(oro.expiresAt, rro.expiresAt, pk.expiresAt ?? Number.POSITIVE_INFINITY),
    }
  }

  return {
    get sessionCount() {
      return sessions.size
    },
    issueRandObject(opts) {
      const now = options.now()
      prune(now)
      const rand: EsprimRandObject = {
        id: randomId(opts?.shared === true ? 'shared-' : 'r-', options.random),
        value: new Uint8Array(options.random(16)),
        // Whole seconds, so the JSON form round-trips exactly.
        expiresAt: Math.floor((now + lifetime) / 1000) * 1000,
        keyGenAlgIds: [ESPRIM_KEY_GEN_HMAC_SHA256],
        protocolAlgIds: encryptions.map((enc) => ESPRIM_PROTOCOL_ALG_IDS[enc]),
      }
      assertLength(rand.value, 16, 'random esrv')
      rands.set(rand.id, rand)
      return rand
    },
    async openRequest(jwe) {
      const h = readHeader(jwe, encryptions, maxLength)
      if (h.cty !== ESPRIM_REQUEST_CTY) {
        throw esprimError('ERR_INVALID_ARGUMENT', 'not an ESPrim request (cty)', ESPRIM_RSC.unsupportedOption, {
          reason: 'wrong-direction',
        })
      }
      const now = options.now()
      prune(now)
      const pk = options.pairwiseKey(h.kid)
      if (pk === undefined || (pk.expiresAt !== undefined && pk.expiresAt <= now)) {
        throw esprimError('ERR_KEY_NOT_FOUND', 'unknown or expired pairwiseESPrimKeyID', ESPRIM_RSC.unknownKeyId)
      }
      const rro = rands.get(h.rri)
      if (rro === undefined) {
        throw esprimError('ERR_NOT_FOUND', 'unknown or expired receiver rand id', ESPRIM_RSC.unknownRecvRandId)
      }
      const session = sessionFor(h, pk, rro, now)
      if (!session.espa.includes(ESPRIM_PROTOCOL_ALG_IDS[h.enc])) {
        throw esprimError(
          'ERR_INVALID_ARGUMENT',
          'enc is not allowed by both rand objects',
          ESPRIM_RSC.unsupportedOption,
          {
            reason: 'unsupported-alg',
          },
        )
      }
      const early = session.window.check(h.seq)
      if (early !== 'ok')
        throw esprimError('ERR_REPLAY', 'ESPrim sequence number already used or too old', undefined, { reason: early })
      const primitive = parsePrimitive(await unseal(jwe, h.enc, session.key))
      if (primitive.fr !== session.originatorId) {
        throw esprimError(
          'ERR_UNAUTHENTICATED',
          'fr is not the identity bound to the pairwise key',
          ESPRIM_RSC.impersonation,
        )
      }
      // Only an authentic request creates a session or moves its window (after the await).
      const id = `${h.kid}\n${h.ori}\n${h.rri}`
      const current = sessions.get(id)
      if (current !== undefined && current !== session) {
        throw esprimError('ERR_REPLAY', 'a parallel request set up this session', undefined, { reason: 'replay' })
      }
      const late = session.window.accept(h.seq)
      if (late !== 'ok')
        throw esprimError('ERR_REPLAY', 'ESPrim sequence number already used or too old', undefined, { reason: late })
      if (current === undefined) {
        // Refuse rather than evict: an evicted session's old requests would open again.
        if (sessions.size >= maxSessions) {
          throw new M2msecError('ERR_RATE_LIMITED', 'too many ESPrim sessions; retry later', { maxSessions })
        }
        sessions.set(id, session)
      }
      return {
        primitive,
        originatorId: session.originatorId,
        kid: h.kid,
        ori: h.ori,
        rri: h.rri,
        seq: h.seq,
        enc: h.enc,
      }
    },
    async protectResponse(request, response) {
      const session = sessions.get(`${request.kid}\n${request.ori}\n${request.rri}`)
      if (session === undefined || session.expiresAt <= options.now()) {
        throw esprimError('ERR_NOT_FOUND', 'the session of this request is gone', ESPRIM_RSC.unknownOrigRandId)
      }
      return seal(
        response,
        {
          enc: request.enc,
          kid: request.kid,
          cty: ESPRIM_RESPONSE_CTY,
          ori: request.ori,
          rri: request.rri,
          seq: request.seq,
        },
        session.key,
      )
    },
  }
}

/** Options of {@link createEsprimOriginator}. */
export interface EsprimOriginatorOptions {
  /** pairwiseESPrimKeyID (sent as `kid`). */
  readonly keyId: string
  /** pairwiseESPrimKey, at least 16 bytes. */
  readonly pairwiseKey: Uint8Array
  /** The receiver's rand object (from e2eSecInfo `esro` or a sit 4 response). */
  readonly receiverRandObject: EsprimRandObject
  readonly random: Random
  readonly now: () => number
  /** Preferred `enc`, strongest first (default A256GCM, A192GCM, A128GCM). */
  readonly encryptions?: readonly ContentEncryption[]
  /** Lifetime of the originator rand object; capped at the receiver's (default: the receiver's). */
  readonly lifetimeMs?: number
  /** Responses awaited at most at a time; the oldest is forgotten first (default 1,024). */
  readonly maxPending?: number
  readonly maxLength?: number
}

/** A response that passed every check. */
export interface OpenedEsprimResponse {
  readonly primitive: EsprimPrimitive
  readonly seq: number
}

/** The originating end of one ESPrim session. */
export interface EsprimOriginator {
  /** originatorESPrimRandObject (sent as `oro` until the receiver has answered once). */
  readonly randObject: EsprimRandObject
  readonly enc: ContentEncryption
  readonly nextSeq: number
  /** Protects a request primitive; uses and advances `nextSeq`. */
  protectRequest(primitive: EsprimPrimitive): Promise<string>
  /**
   * Opens the response to an outstanding request, once. Errors: ERR_REPLAY (no request
   * with that `seq` is outstanding), ERR_CIPHERTEXT_INVALID (4115), ERR_INVALID_ARGUMENT.
   */
  openResponse(jwe: string): Promise<OpenedEsprimResponse>
}

/**
 * Starts an ESPrim session towards a receiver.
 *
 * @example
 * ```ts
 * const tx = createEsprimOriginator({ keyId: 'ae-7-esprim', pairwiseKey, receiverRandObject: rro,
 *   random: randomBytes, now: Date.now })
 * const epo = await tx.protectRequest({ op: 2, to: '/in-cse/ae-9/cnt', fr: 'Cae-7', rqi: 'r1', rvi: '3' })
 * const { primitive } = await tx.openResponse(responseEpo)
 * ```
 */
export function createEsprimOriginator(options: EsprimOriginatorOptions): EsprimOriginator {
  const now = options.now()
  const rro = options.receiverRandObject
  if (typeof options.keyId !== 'string' || options.keyId.length === 0) {
    throw invalidArgument('keyId must be a non-empty string', { field: 'keyId' })
  }
  if (!(options.pairwiseKey instanceof Uint8Array) || options.pairwiseKey.length < 16) {
    throw invalidArgument('pairwiseKey must be at least 16 bytes', { field: 'pairwiseKey' })
  }
  if (rro.expiresAt <= now) {
    throw esprimError('ERR_INVALID_ARGUMENT', 'the receiver rand object has expired', ESPRIM_RSC.unknownRecvRandId, {
      reason: 'expired',
    })
  }
  if (!rro.keyGenAlgIds.includes(ESPRIM_KEY_GEN_HMAC_SHA256)) {
    throw esprimError('ERR_INVALID_ARGUMENT', 'receiver does not offer HMAC-SHA256', ESPRIM_RSC.unsupportedOption)
  }
  const preference = options.encryptions ?? ['A256GCM', 'A192GCM', 'A128GCM']
  const enc = preference.find((e) => rro.protocolAlgIds.includes(ESPRIM_PROTOCOL_ALG_IDS[e]))
  if (enc === undefined) {
    throw esprimError('ERR_INVALID_ARGUMENT', 'no enc in common with the receiver', ESPRIM_RSC.unsupportedOption, {
      reason: 'unsupported-alg',
    })
  }
  const lifetime = options.lifetimeMs ?? rro.expiresAt - now
  const randObject: EsprimRandObject = {
    id: randomId('o-', options.random),
    value: new Uint8Array(options.random(16)),
    expiresAt: Math.min(rro.expiresAt, Math.floor((now + lifetime) / 1000) * 1000),
    keyGenAlgIds: [ESPRIM_KEY_GEN_HMAC_SHA256],
    protocolAlgIds: [ESPRIM_PROTOCOL_ALG_IDS[enc]],
  }
  assertLength(randObject.value, 16, 'random esrv')
  const oroJson = randObjectToJson(randObject, 'originator')
  const sessionKey = deriveSessionEsprimKey(options.pairwiseKey, rro, randObject)
  const maxPending = options.maxPending ?? 1024
  const maxLength = options.maxLength ?? DEFAULT_MAX_LENGTH
  const pending = new Set<number>()
  let seq = 0
  let confirmed = false

  return {
    randObject,
    enc,
    get nextSeq() {
      return seq
    },
    async protectRequest(primitive) {
      if (options.now() >= randObject.expiresAt) {
        throw new M2msecError('ERR_FAILED_PRECONDITION', 'ESPrim session has expired; start a new one', {
          reason: 'expired',
        })
      }
      const mySeq = seq++
      const header = {
        enc,
        kid: options.keyId,
        cty: ESPRIM_REQUEST_CTY,
        ori: randObject.id,
        rri: rro.id,
        seq: mySeq,
        ...(confirmed ? {} : { oro: oroJson }),
      }
      const jwe = await seal(primitive, header, sessionKey)
      if (pending.size >= maxPending) {
        const oldest = pending.values().next().value
        if (oldest !== undefined) pending.delete(oldest)
      }
      pending.add(mySeq)
      return jwe
    },
    async openResponse(jwe) {
      const h = readHeader(jwe, [enc], maxLength)
      if (h.cty !== ESPRIM_RESPONSE_CTY || h.kid !== options.keyId || h.ori !== randObject.id || h.rri !== rro.id) {
        throw esprimError(
          'ERR_INVALID_ARGUMENT',
          'not a response of this ESPrim session',
          ESPRIM_RSC.unsupportedOption,
          {
            reason: 'wrong-session',
          },
        )
      }
      if (!pending.has(h.seq)) {
        throw esprimError('ERR_REPLAY', 'no request with this sequence number is outstanding', undefined, {
          reason: 'replay',
        })
      }
      const primitive = parsePrimitive(await unseal(jwe, enc, sessionKey))
      if (!pending.delete(h.seq)) {
        throw esprimError('ERR_REPLAY', 'response already accepted', undefined, { reason: 'replay' })
      }
      confirmed = true
      return { primitive, seq: h.seq }
    },
  }
}

/** `m2m:securityInfo` carrying an ESPrim object (sit 5, `epo`). */
export interface EsprimSecurityInfo {
  readonly sit: 5
  readonly epo: string
}

/**
 * Wraps an ESPrim object for the outer primitive's content.
 *
 * @example
 * ```ts
 * const outer = { op: 5, to: '/in-cse/ae-9', fr: 'Cae-7', rqi: 'o1', pc: { 'm2m:seci': toSecurityInfo(epo) } }
 * ```
 */
export function toSecurityInfo(epo: string): EsprimSecurityInfo {
  return { sit: SECURITY_INFO_TYPE.esprimObject, epo }
}

/** Reads the ESPrim object out of an `m2m:securityInfo` (sit 5). */
export function fromSecurityInfo(seci: unknown): string {
  const s = seci as { sit?: unknown; epo?: unknown } | null
  if (typeof s !== 'object' || s === null || s.sit !== SECURITY_INFO_TYPE.esprimObject || typeof s.epo !== 'string') {
    throw invalidArgument('securityInfo is not an ESPrim object (sit 5 with epo)', { field: 'seci' })
  }
  return s.epo
}
