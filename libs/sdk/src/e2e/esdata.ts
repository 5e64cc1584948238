/**
 * ESData: end-to-end security of data (TS-0003 §8.5). A payload is protected once by its
 * source and opened only by its targets, whatever relays it: encryption-only (JWE),
 * signature-only (JWS) or nested sign-then-encrypt, in compact or JSON serialisation.
 *
 * Profile (docs/e2e-protection.md §2): the algorithms of TS-0003 tables 8.5.3.2-3/-4 and
 * 8.5.3.3-2 only; every recipient and signer is named by `kid`; compact JWE carries
 * `alg`, `enc` and `kid` in the protected header, JSON JWE carries `enc` (and caller
 * headers) protected and `alg`/`kid` per recipient; JWS always protects `alg` and `kid`.
 * `zip` is refused (compression leaks plaintext length patterns) and so is `alg: none`.
 */
import {
  FlattenedSign,
  GeneralEncrypt,
  CompactEncrypt,
  flattenedDecrypt,
  flattenedVerify,
  type FlattenedJWE,
  type FlattenedJWS,
} from 'jose'
import { M2msecError, invalidArgument } from '@m2msec/errors'
import {
  CONTENT_ENCRYPTION_ALGORITHMS,
  ESDATA_KEY_ALGORITHMS,
  ESDATA_SIGNATURE_ALGORITHMS,
  assertAlgorithm,
  protectFailure,
  type ContentEncryption,
  type EsDataKeyAlgorithm,
  type EsDataSignatureAlgorithm,
  type JoseKey,
  type Serialization,
} from './algorithms.ts'

/** Largest protected object accepted by the open functions by default, in characters. */
export const ESDATA_DEFAULT_MAX_LENGTH = 1024 * 1024

/** Header names the caller may not set: the profile fixes them. */
const RESERVED_HEADERS = new Set(['alg', 'enc', 'kid', 'zip', 'crit', 'b64', 'epk', 'iv', 'tag', 'p2s', 'p2c'])

/** One target of an encryption. */
export interface EsDataRecipient {
  /** `dir`, `A*KW` (key = bytes), `RSA-OAEP-256` or `ECDH-ES+A*KW` (key = public key). */
  readonly alg: EsDataKeyAlgorithm
  readonly key: JoseKey
  /** The target's credential identifier (e.g. a Credential-ID, TS-0003 §10.4). */
  readonly kid: string
}

/** One source of a signature. */
export interface EsDataSigner {
  readonly alg: EsDataSignatureAlgorithm
  /** Bytes for `HS*`, a private key for `RS*`/`ES*`. */
  readonly key: JoseKey
  readonly kid: string
}

/** A key the opening side holds. */
export interface EsDataKey {
  /** Matches the recipient's or signer's `kid`; undefined matches any. */
  readonly kid?: string
  /** When set, the token must use exactly this algorithm with this key. */
  readonly alg?: string
  readonly key: JoseKey
}

/** Extra protected header parameters (e.g. `cty`, `typ`); the profile's own are reserved. */
export type ExtraHeader = Readonly<Record<string, string | number | boolean>>

/** Options of {@link encryptEsData}. */
export interface EncryptEsDataOptions {
  readonly recipients: readonly EsDataRecipient[]
  /** Default A256GCM. */
  readonly enc?: ContentEncryption
  /** Default compact (exactly one recipient); JSON for several recipients or AAD. */
  readonly serialization?: Serialization
  readonly header?: ExtraHeader
  /** Additional authenticated data (JSON serialisation only). */
  readonly aad?: Uint8Array
}

/** Options of {@link decryptEsData}. */
export interface DecryptEsDataOptions {
  readonly keys: readonly EsDataKey[]
  /** Narrows the profile's `alg` list. */
  readonly algorithms?: readonly EsDataKeyAlgorithm[]
  /** Narrows the profile's `enc` list. */
  readonly encryptions?: readonly ContentEncryption[]
  /** Default {@link ESDATA_DEFAULT_MAX_LENGTH}. */
  readonly maxLength?: number
}

/** What {@link decryptEsData} returns. */
export interface DecryptedEsData {
  readonly plaintext: Uint8Array
  readonly serialization: Serialization
  /** The integrity-protected header. */
  readonly protectedHeader: Readonly<Record<string, unknown>>
  /** `alg` and `kid` of the recipient entry that opened. */
  readonly alg: EsDataKeyAlgorithm
  readonly kid: string | undefined
  readonly aad?: Uint8Array
}

/** Options of {@link signEsData}. */
export interface SignEsDataOptions {
  readonly signers: readonly EsDataSigner[]
  /** Default compact (exactly one signer). */
  readonly serialization?: Serialization
  readonly header?: ExtraHeader
}

/** Options of {@link verifyEsData}. */
export interface VerifyEsDataOptions {
  readonly keys: readonly EsDataKey[]
  readonly algorithms?: readonly EsDataSignatureAlgorithm[]
  readonly maxLength?: number
}

/** What {@link verifyEsData} returns (the first signature that verified). */
export interface VerifiedEsData {
  readonly payload: Uint8Array
  readonly serialization: Serialization
  readonly protectedHeader: Readonly<Record<string, unknown>>
  readonly alg: EsDataSignatureAlgorithm
  readonly kid: string | undefined
}

function checkExtraHeader(header: ExtraHeader | undefined): ExtraHeader {
  if (header === undefined) return {}
  for (const name of Object.keys(header)) {
    if (RESERVED_HEADERS.has(name)) throw invalidArgument(`header parameter "${name}" is set by the profile`)
  }
  return header
}

function checkKid(kid: unknown, field: string): asserts kid is string {
  if (typeof kid !== 'string' || kid.length === 0 || kid.length > 1024) {
    throw invalidArgument(`${field} kid must be a non-empty string`, { field })
  }
}

/**
 * Encrypts `plaintext` to one or more targets (encryption-only class). Direct mode (`dir`,
 * the key is the CEK) allows a single recipient; key-wrap and ECDH-ES modes use a fresh
 * random CEK wrapped per recipient.
 *
 * @example
 * ```ts
 * const jwe = await encryptEsData(data, { recipients: [{ alg: 'A256KW', key: kek, kid: '15-k1@sp.example' }] })
 * const many = await encryptEsData(data, {
 *   serialization: 'json',
 *   recipients: [
 *     { alg: 'ECDH-ES+A256KW', key: devicePublicKey, kid: 'dev-1' },
 *     { alg: 'A256KW', key: kek, kid: 'app-2' },
 *   ],
 * })
 * ```
 */
export async function encryptEsData(plaintext: Uint8Array, options: EncryptEsDataOptions): Promise<string> {
  if (!(plaintext instanceof Uint8Array))
    throw invalidArgument('plaintext must be a Uint8Array', { field: 'plaintext' })
  const enc = options.enc ?? 'A256GCM'
  assertAlgorithm(enc, CONTENT_ENCRYPTION_ALGORITHMS, 'enc')
  const serialization = options.serialization ?? 'compact'
  const extra = checkExtraHeader(options.header)
  const recipients = options.recipients
  if (recipients.length === 0) throw invalidArgument('at least one recipient is needed', { field: 'recipients' })
  for (const r of recipients) {
    assertAlgorithm(r.alg, ESDATA_KEY_ALGORITHMS, 'alg')
    checkKid(r.kid, 'recipient')
  }
  if (recipients.length > 1 && recipients.some((r) => r.alg === 'dir')) {
    throw invalidArgument('direct encryption (dir) allows exactly one recipient', { field: 'recipients' })
  }
  if (serialization === 'compact') {
    const [only] = recipients
    if (recipients.length !== 1 || only === undefined) {
      throw invalidArgument('compact serialisation has exactly one recipient; use json', { field: 'serialization' })
    }
    if (options.aad !== undefined) throw invalidArgument('compact serialisation cannot carry AAD', { field: 'aad' })
    try {
      return await new CompactEncrypt(plaintext)
        .setProtectedHeader({ ...extra, alg: only.alg, enc, kid: only.kid })
        .encrypt(only.key)
    } catch (cause) {
      throw protectFailure(cause, 'encrypt')
    }
  }
  if (serialization !== 'json')
    throw invalidArgument('serialization must be compact or json', { field: 'serialization' })
  const jwe = new GeneralEncrypt(plaintext).setProtectedHeader({ ...extra, enc })
  if (options.aad !== undefined) jwe.setAdditionalAuthenticatedData(options.aad)
  for (const r of recipients) jwe.addRecipient(r.key).setUnprotectedHeader({ alg: r.alg, kid: r.kid })
  try {
    return JSON.stringify(await jwe.encrypt())
  } catch (cause) {
    throw protectFailure(cause, 'encrypt')
  }
}

/** A parsed JOSE object: its serialisation and one flattened view per recipient / signature. */
interface Parsed<T> {
  readonly serialization: Serialization
  readonly entries: readonly T[]
}

function parseJson(text: string, what: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (cause) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', `${what} is not valid JSON`, { reason: 'malformed' }, { cause })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', `${what} is not a JSON object`, { reason: 'malformed' })
  }
  return value as Record<string, unknown>
}

function checkLength(text: unknown, maxLength: number | undefined, what: string): asserts text is string {
  if (typeof text !== 'string') throw invalidArgument(`${what} must be a string`)
  const max = maxLength ?? ESDATA_DEFAULT_MAX_LENGTH
  if (text.length > max) throw new M2msecError('ERR_PAYLOAD_TOO_LARGE', `${what} exceeds ${max} characters`, { max })
}

function parseJwe(text: string): Parsed<FlattenedJWE> {
  const trimmed = text.trim()
  if (!trimmed.startsWith('{')) {
    const parts = trimmed.split('.')
    if (parts.length !== 5) {
      throw new M2msecError('ERR_INVALID_ARGUMENT', 'not a JWE compact serialisation', { reason: 'malformed' })
    }
    const [p, ek, iv, ct, tag] = parts as [string, string, string, string, string]
    const flat: FlattenedJWE = { protected: p, iv, ciphertext: ct, tag, ...(ek === '' ? {} : { encrypted_key: ek }) }
    return { serialization: 'compact', entries: [flat] }
  }
  const json = parseJson(trimmed, 'JWE')
  const { recipients, ...shared } = json
  if (recipients === undefined) return { serialization: 'json', entries: [json as unknown as FlattenedJWE] }
  if (!Array.isArray(recipients) || recipients.length === 0 || recipients.length > 64) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'JWE recipients must be a list of 1..64 entries', {
      reason: 'malformed',
    })
  }
  return {
    serialization: 'json',
    entries: recipients.map((r: unknown) => {
      if (typeof r !== 'object' || r === null) {
        throw new M2msecError('ERR_INVALID_ARGUMENT', 'JWE recipient is not an object', { reason: 'malformed' })
      }
      return { ...shared, ...(r as object) } as unknown as FlattenedJWE
    }),
  }
}

function decodeHeader(segment: unknown, what: string): Record<string, unknown> {
  if (segment === undefined) return {}
  if (typeof segment !== 'string') {
    throw new M2msecError('ERR_INVALID_ARGUMENT', `${what} protected header is malformed`, { reason: 'malformed' })
  }
  return parseJson(Buffer.from(segment, 'base64url').toString('utf8'), `${what} protected header`)
}

function keysFor(keys: readonly EsDataKey[], kid: unknown, alg: string): EsDataKey[] {
  return keys.filter((k) => (k.kid === undefined || k.kid === kid) && (k.alg === undefined || k.alg === alg))
}

/**
 * Opens an ESData JWE (compact, flattened or general JSON). Errors: ERR_KEY_NOT_FOUND (no
 * recipient entry names one of `keys`), ERR_CIPHERTEXT_INVALID (wrong key or modified
 * data), ERR_INVALID_ARGUMENT with `details.reason` 'unsupported-alg' / 'alg-none' /
 * 'malformed', ERR_PAYLOAD_TOO_LARGE.
 *
 * @example
 * ```ts
 * const { plaintext, kid } = await decryptEsData(jwe, { keys: [{ kid: 'dev-1', key: devicePrivateKey }] })
 * ```
 */
export async function decryptEsData(jwe: string, options: DecryptEsDataOptions): Promise<DecryptedEsData> {
  checkLength(jwe, options.maxLength, 'JWE')
  const algorithms = options.algorithms ?? ESDATA_KEY_ALGORITHMS
  const encryptions = options.encryptions ?? CONTENT_ENCRYPTION_ALGORITHMS
  const parsed = parseJwe(jwe)
  const candidates: { flat: FlattenedJWE; key: EsDataKey; alg: EsDataKeyAlgorithm; kid: unknown }[] = []
  for (const flat of parsed.entries) {
    const protectedHeader = decodeHeader(flat.protected, 'JWE')
    const header = { ...flat.unprotected, ...flat.header, ...protectedHeader }
    if ('zip' in header) {
      throw new M2msecError('ERR_INVALID_ARGUMENT', 'compressed JWE (zip) is not accepted', {
        reason: 'unsupported-alg',
      })
    }
    assertAlgorithm(header.alg, algorithms, 'alg')
    assertAlgorithm(header.enc, encryptions, 'enc')
    for (const key of keysFor(options.keys, header.kid, header.alg)) {
      candidates.push({ flat, key, alg: header.alg, kid: header.kid })
    }
  }
  if (candidates.length === 0) {
    throw new M2msecError('ERR_KEY_NOT_FOUND', 'no recipient of this JWE matches a key held here')
  }
  let lastCause: unknown
  for (const c of candidates) {
    try {
      const out = await flattenedDecrypt(c.flat, c.key.key, {
        keyManagementAlgorithms: [c.alg],
        contentEncryptionAlgorithms: [...encryptions],
      })
      return {
        plaintext: new Uint8Array(out.plaintext),
        serialization: parsed.serialization,
        protectedHeader: out.protectedHeader ?? {},
        alg: c.alg,
        kid: typeof c.kid === 'string' ? c.kid : undefined,
        ...(out.additionalAuthenticatedData === undefined
          ? {}
          : { aad: new Uint8Array(out.additionalAuthenticatedData) }),
      }
    } catch (cause) {
      lastCause = cause
    }
  }
  throw new M2msecError(
    'ERR_CIPHERTEXT_INVALID',
    'JWE does not decrypt with the matching key (wrong key or modified data)',
    {},
    { cause: lastCause },
  )
}

/**
 * Signs `payload` (signature-only class): HS* = MIC with a shared key, RS* or ES* = digital
 * signature. JSON serialisation (general) allows several signers.
 *
 * @example
 * ```ts
 * const jws = await signEsData(data, { signers: [{ alg: 'ES256', key: privateKey, kid: '55-sensor-1' }] })
 * ```
 */
export async function signEsData(payload: Uint8Array, options: SignEsDataOptions): Promise<string> {
  if (!(payload instanceof Uint8Array)) throw invalidArgument('payload must be a Uint8Array', { field: 'payload' })
  const serialization = options.serialization ?? 'compact'
  const extra = checkExtraHeader(options.header)
  const signers = options.signers
  if (signers.length === 0) throw invalidArgument('at least one signer is needed', { field: 'signers' })
  for (const s of signers) {
    assertAlgorithm(s.alg, ESDATA_SIGNATURE_ALGORITHMS, 'alg')
    checkKid(s.kid, 'signer')
  }
  if (serialization === 'compact' && signers.length !== 1) {
    throw invalidArgument('compact serialisation has exactly one signature; use json', { field: 'serialization' })
  }
  if (serialization !== 'compact' && serialization !== 'json') {
    throw invalidArgument('serialization must be compact or json', { field: 'serialization' })
  }
  // One FlattenedSign per signer: the same payload, so the signatures combine into the
  // general form without jose's GeneralSign (which cannot return its parts separately).
  const flats: FlattenedJWS[] = []
  try {
    for (const s of signers) {
      flats.push(await new FlattenedSign(payload).setProtectedHeader({ ...extra, alg: s.alg, kid: s.kid }).sign(s.key))
    }
  } catch (cause) {
    throw protectFailure(cause, 'sign')
  }
  const [first] = flats
  if (first === undefined) throw invalidArgument('at least one signer is needed', { field: 'signers' })
  if (serialization === 'compact') return `${first.protected}.${first.payload}.${first.signature}`
  return JSON.stringify({
    payload: first.payload,
    signatures: flats.map((f) => ({ protected: f.protected, signature: f.signature })),
  })
}

function parseJws(text: string): Parsed<FlattenedJWS> {
  const trimmed = text.trim()
  if (!trimmed.startsWith('{')) {
    const parts = trimmed.split('.')
    if (parts.length !== 3) {
      throw new M2msecError('ERR_INVALID_ARGUMENT', 'not a JWS compact serialisation', { reason: 'malformed' })
    }
    const [p, payload, signature] = parts as [string, string, string]
    return { serialization: 'compact', entries: [{ protected: p, payload, signature }] }
  }
  const json = parseJson(trimmed, 'JWS')
  const { signatures, payload } = json
  if (signatures === undefined) return { serialization: 'json', entries: [json as unknown as FlattenedJWS] }
  if (!Array.isArray(signatures) || signatures.length === 0 || signatures.length > 64) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'JWS signatures must be a list of 1..64 entries', {
      reason: 'malformed',
    })
  }
  return {
    serialization: 'json',
    entries: signatures.map((s: unknown) => {
      if (typeof s !== 'object' || s === null) {
        throw new M2msecError('ERR_INVALID_ARGUMENT', 'JWS signature is not an object', { reason: 'malformed' })
      }
      return { ...(s as object), payload } as FlattenedJWS
    }),
  }
}

/**
 * Verifies an ESData JWS (compact, flattened or general JSON) and returns the payload of
 * the first signature made by one of `keys`. `alg` must be protected (an unprotected
 * `alg` could be swapped). Errors: ERR_KEY_NOT_FOUND (no signature by a known `kid`),
 * ERR_SIGNATURE_INVALID (wrong key or modified data), ERR_INVALID_ARGUMENT with
 * `details.reason` 'alg-none' / 'unsupported-alg' / 'malformed', ERR_PAYLOAD_TOO_LARGE.
 *
 * @example
 * ```ts
 * const { payload, kid } = await verifyEsData(jws, { keys: [{ kid: '55-sensor-1', key: publicKey }] })
 * ```
 */
export async function verifyEsData(jws: string, options: VerifyEsDataOptions): Promise<VerifiedEsData> {
  checkLength(jws, options.maxLength, 'JWS')
  const algorithms = options.algorithms ?? ESDATA_SIGNATURE_ALGORITHMS
  const parsed = parseJws(jws)
  const candidates: { flat: FlattenedJWS; key: EsDataKey; alg: EsDataSignatureAlgorithm; kid: unknown }[] = []
  for (const flat of parsed.entries) {
    const protectedHeader = decodeHeader(flat.protected, 'JWS')
    assertAlgorithm(protectedHeader.alg, algorithms, 'alg')
    const kid = protectedHeader.kid ?? flat.header?.kid
    for (const key of keysFor(options.keys, kid, protectedHeader.alg)) {
      candidates.push({ flat, key, alg: protectedHeader.alg, kid })
    }
  }
  if (candidates.length === 0) throw new M2msecError('ERR_KEY_NOT_FOUND', 'no signature by a key trusted here')
  let lastCause: unknown
  for (const c of candidates) {
    try {
      const out = await flattenedVerify(c.flat, c.key.key, { algorithms: [c.alg] })
      return {
        payload: new Uint8Array(out.payload),
        serialization: parsed.serialization,
        protectedHeader: out.protectedHeader ?? {},
        alg: c.alg,
        kid: typeof c.kid === 'string' ? c.kid : undefined,
      }
    } catch (cause) {
      lastCause = cause
    }
  }
  throw new M2msecError(
    'ERR_SIGNATURE_INVALID',
    'JWS does not verify with the matching key (wrong key or modified data)',
    {},
    { cause: lastCause },
  )
}

/** `cty` of a JWE whose plaintext is a compact JWS (RFC 7516 §4.1.12). */
export const NESTED_CONTENT_TYPE = 'JOSE'

/** Options of {@link signThenEncryptEsData}. */
export interface SignThenEncryptOptions extends Omit<EncryptEsDataOptions, 'header'> {
  readonly signer: EsDataSigner
  /** Extra protected header of the inner JWS (e.g. `typ`). */
  readonly innerHeader?: ExtraHeader
  /** Extra protected header of the outer JWE; `cty` defaults to `JOSE`. */
  readonly header?: ExtraHeader
}

/** Options of {@link decryptThenVerifyEsData}. */
export interface DecryptThenVerifyOptions {
  readonly decryptionKeys: readonly EsDataKey[]
  readonly verificationKeys: readonly EsDataKey[]
  readonly algorithms?: readonly EsDataKeyAlgorithm[]
  readonly encryptions?: readonly ContentEncryption[]
  readonly signatureAlgorithms?: readonly EsDataSignatureAlgorithm[]
  readonly maxLength?: number
}

/** What {@link decryptThenVerifyEsData} returns. */
export interface OpenedNestedEsData {
  readonly payload: Uint8Array
  readonly outer: DecryptedEsData
  readonly inner: VerifiedEsData
}

/**
 * Nested sign-then-encrypt class: a compact JWS by the source, encrypted (JWE, `cty: JOSE`)
 * to the targets. The signature survives decryption, so a target can prove the origin to
 * a third party (non-repudiation with RS* or ES*).
 *
 * @example
 * ```ts
 * const jwe = await signThenEncryptEsData(data, {
 *   signer: { alg: 'ES256', key: sourcePrivate, kid: 'src' },
 *   recipients: [{ alg: 'ECDH-ES+A256KW', key: targetPublic, kid: 'dst' }],
 * })
 * ```
 */
export async function signThenEncryptEsData(payload: Uint8Array, options: SignThenEncryptOptions): Promise<string> {
  const { signer, innerHeader, header, ...encryption } = options
  const jws = await signEsData(payload, {
    signers: [signer],
    serialization: 'compact',
    ...(innerHeader === undefined ? {} : { header: innerHeader }),
  })
  return encryptEsData(new TextEncoder().encode(jws), {
    ...encryption,
    header: { cty: NESTED_CONTENT_TYPE, ...header },
  })
}

/**
 * Opens what {@link signThenEncryptEsData} produced: decrypts with `decryptionKeys`,
 * requires `cty` JOSE or JWT, then verifies the inner JWS with `verificationKeys`.
 *
 * @example
 * ```ts
 * const { payload, inner } = await decryptThenVerifyEsData(jwe, {
 *   decryptionKeys: [{ kid: 'dst', key: targetPrivate }],
 *   verificationKeys: [{ kid: 'src', key: sourcePublic }],
 * })
 * ```
 */
export async function decryptThenVerifyEsData(
  jwe: string,
  options: DecryptThenVerifyOptions,
): Promise<OpenedNestedEsData> {
  const outer = await decryptEsData(jwe, {
    keys: options.decryptionKeys,
    ...(options.algorithms === undefined ? {} : { algorithms: options.algorithms }),
    ...(options.encryptions === undefined ? {} : { encryptions: options.encryptions }),
    ...(options.maxLength === undefined ? {} : { maxLength: options.maxLength }),
  })
  const cty = outer.protectedHeader.cty
  if (cty !== NESTED_CONTENT_TYPE && cty !== 'JWT') {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'JWE does not carry a signed payload (cty is not JOSE)', {
      reason: 'not-nested',
    })
  }
  let jws: string
  try {
    jws = new TextDecoder('utf-8', { fatal: true }).decode(outer.plaintext)
  } catch (cause) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'nested JWS is not UTF-8', { reason: 'malformed' }, { cause })
  }
  const inner = await verifyEsData(jws, {
    keys: options.verificationKeys,
    ...(options.signatureAlgorithms === undefined ? {} : { algorithms: options.signatureAlgorithms }),
    ...(options.maxLength === undefined ? {} : { maxLength: options.maxLength }),
  })
  return { payload: inner.payload, outer, inner }
}
