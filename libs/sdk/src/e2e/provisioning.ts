/**
 * Remote provisioning of a service provider's own credential into a device, sealed end
 * to end (TS-0002 SER-020/SER-021): the provider signs the credential (JWS, ES*) and
 * encrypts it to the device's public key (JWE ECDH-ES+A256KW, A256GCM). The platform and
 * any gateway only relay the sealed object: they can neither read it, nor change it, nor
 * re-address it to another device.
 *
 * Claims (docs/e2e-protection.md §4): `iss` provider id, `aud` device id, `jti` single
 * use, `iat`/`exp` delivery window, `cid` Credential-ID, `suid`, `key` (base64url),
 * optional `crx` (credential expiry) and `lbl` (labels).
 */
import type { KeyObject, webcrypto } from 'node:crypto'
import { M2msecError, invalidArgument } from '@m2msec/errors'
import { decryptThenVerifyEsData, signThenEncryptEsData } from './esdata.ts'
import type { Random } from './esprim.ts'

/** JWS `typ` of a sealed credential, so no other signature of the provider passes as one. */
export const CREDENTIAL_JWS_TYPE = 'm2msec-credential+jws'

/** Security usage identifiers (TS-0004 `m2m:suid`). */
export const SUIDS: readonly number[] = Object.freeze([
  10, 11, 12, 13, 14, 15, 21, 22, 23, 24, 25, 32, 33, 34, 35, 40, 41, 42, 43, 44, 45,
])

const DEFAULT_VALIDITY_MS = 24 * 60 * 60 * 1000
const DEFAULT_SKEW_MS = 60 * 1000

/** A public or private EC key (P-256, P-384 or P-521) as jose accepts it. */
export type EcKey = KeyObject | webcrypto.CryptoKey

/** The credential a provider installs on a device. */
export interface ProvisionedCredential {
  /** Credential-ID (TS-0003 §10.4), e.g. `12-sp-saef@sp.example.com`. */
  readonly credentialId: string
  /** What the key may be used for (TS-0004 `m2m:suid`). */
  readonly suid: number
  /** The secret, 16..64 bytes. */
  readonly key: Uint8Array
  /** Expiry of the credential itself, ms since the epoch. */
  readonly notAfter?: number
  readonly labels?: readonly string[]
}

/** Options of {@link sealCredential}. */
export interface SealCredentialOptions {
  readonly credential: ProvisionedCredential
  /** The provider's identity (`iss`), e.g. its SP domain or AE-ID. */
  readonly providerId: string
  /** The provider's signing key and its `kid`. */
  readonly signingKey: { readonly key: EcKey; readonly kid: string; readonly alg?: 'ES256' | 'ES384' | 'ES512' }
  /** The target device (`aud`): its Node-ID / AE-ID / CSE-ID. */
  readonly deviceId: string
  /** The device's public key (e.g. from its certificate) and its `kid`. */
  readonly deviceKey: { readonly key: EcKey; readonly kid: string }
  readonly now: () => number
  readonly random: Random
  /** How long the sealed credential may take to be delivered (default 24 h). */
  readonly validityMs?: number
}

/** A provider the device trusts to install credentials. */
export interface TrustedProvider {
  readonly providerId: string
  readonly kid: string
  readonly key: EcKey
}

/** Options of {@link openCredential}. */
export interface OpenCredentialOptions {
  readonly deviceId: string
  /** The device's private key and its `kid`. */
  readonly deviceKey: { readonly key: EcKey; readonly kid: string }
  readonly trustedProviders: readonly TrustedProvider[]
  readonly now: () => number
  /**
   * Records a `jti` until `expiresAt`; returns false when it was recorded before (the
   * device's replay store, e.g. in its secure storage).
   */
  readonly markUsed: (jti: string, expiresAt: number) => boolean
  /** Clock skew tolerated on `iat`/`exp` (default 60 s). */
  readonly clockSkewMs?: number
}

/** What {@link openCredential} returns. */
export interface OpenedCredential {
  readonly credential: ProvisionedCredential
  readonly providerId: string
  readonly jti: string
  /** ms since the epoch. */
  readonly issuedAt: number
}

function checkId(value: unknown, field: string): asserts value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 256) {
    throw invalidArgument(`${field} must be a non-empty string of at most 256 characters`, { field })
  }
}

function checkCredential(c: ProvisionedCredential): void {
  checkId(c.credentialId, 'credentialId')
  if (!SUIDS.includes(c.suid)) throw invalidArgument('suid is not a security usage identifier', { field: 'suid' })
  if (!(c.key instanceof Uint8Array) || c.key.length < 16 || c.key.length > 64) {
    throw invalidArgument('credential key must be 16..64 bytes', { field: 'key' })
  }
  if (c.notAfter !== undefined && !Number.isSafeInteger(c.notAfter)) {
    throw invalidArgument('notAfter must be ms since the epoch', { field: 'notAfter' })
  }
  if (c.labels !== undefined && !c.labels.every((l) => typeof l === 'string')) {
    throw invalidArgument('labels must be strings', { field: 'labels' })
  }
}

/**
 * Seals a credential for one device (run by the service provider, not the platform).
 *
 * @example
 * ```ts
 * const sealed = await sealCredential({
 *   credential: { credentialId: '12-sp-saef@sp.example.com', suid: 12, key: randomBytes(32) },
 *   providerId: 'sp.example.com', signingKey: { key: spPrivate, kid: 'sp-sig-1' },
 *   deviceId: 'urn:dev:ops:meter-17', deviceKey: { key: devicePublic, kid: 'meter-17' },
 *   now: Date.now, random: randomBytes,
 * })
 * ```
 */
export async function sealCredential(options: SealCredentialOptions): Promise<string> {
  checkCredential(options.credential)
  checkId(options.providerId, 'providerId')
  checkId(options.deviceId, 'deviceId')
  const validity = options.validityMs ?? DEFAULT_VALIDITY_MS
  if (!Number.isSafeInteger(validity) || validity < 1000) {
    throw invalidArgument('validityMs must be at least 1000', { field: 'validityMs' })
  }
  const now = options.now()
  const c = options.credential
  const claims = {
    iss: options.providerId,
    aud: options.deviceId,
    jti: Buffer.from(options.random(16)).toString('base64url'),
    iat: Math.floor(now / 1000),
    exp: Math.floor((now + validity) / 1000),
    cid: c.credentialId,
    suid: c.suid,
    key: Buffer.from(c.key).toString('base64url'),
    ...(c.notAfter === undefined ? {} : { crx: Math.floor(c.notAfter / 1000) }),
    ...(c.labels === undefined ? {} : { lbl: [...c.labels] }),
  }
  return signThenEncryptEsData(new TextEncoder().encode(JSON.stringify(claims)), {
    signer: { alg: options.signingKey.alg ?? 'ES256', key: options.signingKey.key, kid: options.signingKey.kid },
    innerHeader: { typ: CREDENTIAL_JWS_TYPE },
    recipients: [{ alg: 'ECDH-ES+A256KW', key: options.deviceKey.key, kid: options.deviceKey.kid }],
    enc: 'A256GCM',
  })
}

function claimsOf(payload: Uint8Array): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload))
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>
  } catch {
    // fall through: reported below without the parser's message
  }
  throw new M2msecError('ERR_INVALID_ARGUMENT', 'sealed credential claims are not a JSON object', {
    reason: 'malformed',
  })
}

/**
 * Opens a sealed credential on the device: decrypts with the device key, verifies the
 * provider's signature, then checks `typ`, `iss` (must be the provider whose key
 * verified), `aud` (this device), the delivery window and single use of `jti`.
 * Errors: ERR_KEY_NOT_FOUND (not sealed to this device's key, or no trusted signer),
 * ERR_CIPHERTEXT_INVALID, ERR_SIGNATURE_INVALID, ERR_UNAUTHENTICATED (issuer mismatch),
 * ERR_PERMISSION_DENIED (`reason` audience), ERR_TOKEN_EXPIRED, ERR_REPLAY,
 * ERR_INVALID_ARGUMENT.
 *
 * @example
 * ```ts
 * const { credential } = await openCredential(sealed, {
 *   deviceId: 'urn:dev:ops:meter-17', deviceKey: { key: devicePrivate, kid: 'meter-17' },
 *   trustedProviders: [{ providerId: 'sp.example.com', kid: 'sp-sig-1', key: spPublic }],
 *   now: Date.now, markUsed: (jti, exp) => store.addIfAbsent(jti, exp),
 * })
 * ```
 */
export async function openCredential(sealed: string, options: OpenCredentialOptions): Promise<OpenedCredential> {
  const opened = await decryptThenVerifyEsData(sealed, {
    decryptionKeys: [{ kid: options.deviceKey.kid, key: options.deviceKey.key, alg: 'ECDH-ES+A256KW' }],
    verificationKeys: options.trustedProviders.map((p) => ({ kid: p.kid, key: p.key })),
    algorithms: ['ECDH-ES+A256KW'],
    encryptions: ['A256GCM'],
    signatureAlgorithms: ['ES256', 'ES384', 'ES512'],
    maxLength: 64 * 1024,
  })
  if (opened.inner.protectedHeader.typ !== CREDENTIAL_JWS_TYPE) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'signed object is not a sealed credential (typ)', {
      reason: 'wrong-type',
    })
  }
  const provider = options.trustedProviders.find((p) => p.kid === opened.inner.kid)
  const claims = claimsOf(opened.payload)
  if (provider === undefined || claims.iss !== provider.providerId) {
    throw new M2msecError('ERR_UNAUTHENTICATED', 'credential issuer is not the provider that signed it')
  }
  if (claims.aud !== options.deviceId) {
    throw new M2msecError('ERR_PERMISSION_DENIED', 'credential is addressed to another device', {
      reason: 'audience',
    })
  }
  const { jti, iat, exp, cid, suid, key, crx, lbl } = claims
  if (
    typeof jti !== 'string' ||
    jti.length === 0 ||
    !Number.isSafeInteger(iat) ||
    !Number.isSafeInteger(exp) ||
    typeof cid !== 'string' ||
    typeof suid !== 'number' ||
    typeof key !== 'string' ||
    (crx !== undefined && !Number.isSafeInteger(crx)) ||
    (lbl !== undefined && !(Array.isArray(lbl) && lbl.every((l) => typeof l === 'string')))
  ) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'sealed credential lacks a required claim', { reason: 'malformed' })
  }
  const now = options.now()
  const skew = options.clockSkewMs ?? DEFAULT_SKEW_MS
  const issuedAt = (iat as number) * 1000
  const expiresAt = (exp as number) * 1000
  if (expiresAt + skew <= now || issuedAt - skew > now) {
    throw new M2msecError('ERR_TOKEN_EXPIRED', 'sealed credential is outside its delivery window')
  }
  const credential: ProvisionedCredential = {
    credentialId: cid,
    suid,
    key: new Uint8Array(Buffer.from(key, 'base64url')),
    ...(crx === undefined ? {} : { notAfter: (crx as number) * 1000 }),
    ...(lbl === undefined ? {} : { labels: lbl as string[] }),
  }
  checkCredential(credential)
  if (!options.markUsed(jti, expiresAt + skew)) {
    throw new M2msecError('ERR_REPLAY', 'sealed credential was already installed', { reason: 'replay' })
  }
  return { credential, providerId: provider.providerId, jti, issuedAt }
}
