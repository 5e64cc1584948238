/**
 * The secure-environment (SE) plug-in contract of the KMS.
 *
 * A secure environment holds key material and performs the sensitive functions of
 * oneM2M TS-0003 §6.3 on it. The KMS domain never sees secret or private key bytes:
 * it holds an opaque `ref` per key version (returned by `generateKey` / `importKey`) and
 * passes it back to the SE for every operation. What a `ref` contains is the backend's
 * business: a sealed blob (software), a token object id (pkcs11), a transit key name and
 * version (vault), a key ARN (aws-kms). A `ref` is stored by the KMS in JetStream KV and
 * must therefore never contain key material in the clear.
 *
 * Core operations every SE implements are on {@link SecureEnvironment}. Optional features
 * are separate capability interfaces ({@link KeyDeriver}, {@link KeyWrapper},
 * {@link MilenageCapable}) detected with the `is…` guards below. A backend that cannot do
 * something throws `M2msecError('ERR_SE_NOT_SUPPORTED', …)`: never a silent fallback.
 *
 * Errors: every method throws `M2msecError` with one of these codes and nothing else
 * (anything else is a bug and becomes INTERNAL):
 * - `ERR_SE_NOT_SUPPORTED` the algorithm or operation is not available in this SE
 * - `ERR_KEY_TYPE_MISMATCH` the key's algorithm does not fit the operation
 * - `ERR_CIPHERTEXT_INVALID` authentication of a ciphertext / wrapped key failed
 * - `ERR_INVALID_ARGUMENT` malformed input (wrong IV length, bad key material, …)
 * - `ERR_EXPORT_DENIED` a key created non-exportable was asked to leave the SE
 * - `ERR_SE_UNAVAILABLE` the backend cannot be reached (HSM gone, Vault down)
 *
 * Concurrency: every method may be called concurrently. Backends with synchronous native
 * calls (PKCS#11) keep them off the event loop.
 */

/** Key algorithms the KMS knows. Names are part of the public API (proto enum mirrors them). */
export const KEY_ALGORITHMS = [
  'AES_256_GCM', //      symmetric encryption (AEAD), 32-byte key
  'HMAC_SHA256', //      MAC, and base key for HKDF / the 3GPP KDF; 32..64-byte key
  'EC_P256_SIGN', //     ECDSA P-256 with SHA-256 (ES256), signature r||s (64 bytes)
  'ED25519_SIGN', //     Ed25519 (EdDSA)
  'EC_P256_ECDH', //     P-256 key agreement (ECDH-ES for JWE)
  'MILENAGE', //         3GPP Milenage subscriber key: K (16 bytes) and OPc (16 bytes)
] as const
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number]

/** Secret (symmetric) algorithms: their material is raw bytes. */
export const SYMMETRIC_ALGORITHMS: ReadonlySet<KeyAlgorithm> = new Set(['AES_256_GCM', 'HMAC_SHA256', 'MILENAGE'])

/** TS-0003 table 6.3.1-1 protection levels: 0 none ... 3 certified HSM / hardware. */
export type ProtectionLevel = 0 | 1 | 2 | 3

/** The backend kinds. */
export type SeType = 'software' | 'pkcs11' | 'vault' | 'aws-kms'

/** Operations a caller may ask an SE for; listed in {@link SeCapabilities}. */
export type SeOperation =
  | 'generate'
  | 'import'
  | 'destroy'
  | 'encrypt'
  | 'decrypt'
  | 'sign'
  | 'verify'
  | 'mac'
  | 'derive-hkdf'
  | 'derive-3gpp-kdf'
  | 'wrap'
  | 'unwrap'
  | 'milenage'

/** What one SE can do, published by ListSecureEnvironments. */
export interface SeCapabilities {
  readonly algorithms: readonly KeyAlgorithm[]
  readonly operations: readonly SeOperation[]
}

/** A key inside an SE as the KMS knows it: opaque reference plus its algorithm. */
export interface SeKeyHandle {
  readonly ref: string
  readonly algorithm: KeyAlgorithm
}

/** What `generateKey` / `importKey` / derive / unwrap return. */
export interface CreatedKey {
  /** Opaque reference; stored by the KMS, passed back on every operation. No secrets in clear. */
  readonly ref: string
  /** SubjectPublicKeyInfo (DER) for asymmetric keys; absent for secret keys. */
  readonly publicKey?: Uint8Array
}

/** Parameters common to key creation. */
export interface KeySpec {
  readonly algorithm: KeyAlgorithm
  /** A non-secret label for operators (PKCS#11 CKA_LABEL, Vault key name suffix). */
  readonly label: string
  /**
   * May this key ever leave the SE (always wrapped)? Default false. Non-exportable keys are
   * created with CKA_EXTRACTABLE=false (pkcs11) or `exportable: false` (Vault).
   */
  readonly exportable?: boolean
}

/** Import: raw secret bytes, or a PKCS#8 DER private key, or for MILENAGE K||OPc (32 bytes). */
export interface ImportSpec extends KeySpec {
  readonly material: Uint8Array
}

/** AEAD encryption result (AES-256-GCM, 12-byte IV, 16-byte tag). */
export interface SealedData {
  readonly iv: Uint8Array
  readonly ciphertext: Uint8Array
  readonly tag: Uint8Array
}

/** One item of {@link SecureEnvironment.encryptMany}. */
export interface AeadInput {
  readonly plaintext: Uint8Array
  readonly aad: Uint8Array
}

/** The core contract: every SE implements all of these. */
export interface SecureEnvironment {
  /** Instance name from configuration (`software`, `hsm-eu1`, …). Unique per KMS. */
  readonly name: string
  readonly type: SeType
  readonly protectionLevel: ProtectionLevel
  readonly capabilities: SeCapabilities

  generateKey(spec: KeySpec): Promise<CreatedKey>
  importKey(spec: ImportSpec): Promise<CreatedKey>
  /** Irreversibly destroys the key material. Destroying an unknown ref is not an error. */
  destroyKey(key: SeKeyHandle): Promise<void>

  /** AES-256-GCM with a fresh random 96-bit IV generated inside the SE. */
  encrypt(key: SeKeyHandle, plaintext: Uint8Array, aad: Uint8Array): Promise<SealedData>
  /**
   * Optional: `encrypt` of many items under one key in one call (BatchEncrypt). An SE offers it
   * when that saves real work: one key lookup, one IV draw and no promise per item.
   */
  encryptMany?(key: SeKeyHandle, items: readonly AeadInput[]): Promise<SealedData[]>
  /** Throws ERR_CIPHERTEXT_INVALID when the tag does not verify. */
  decrypt(key: SeKeyHandle, sealed: SealedData, aad: Uint8Array): Promise<Uint8Array>

  /** EC_P256_SIGN: ECDSA over SHA-256(message), IEEE P1363 r||s. ED25519_SIGN: pure Ed25519. */
  sign(key: SeKeyHandle, message: Uint8Array): Promise<Uint8Array>
  /** Returns false for a wrong signature; throws only for malformed input. */
  verify(key: SeKeyHandle, message: Uint8Array, signature: Uint8Array): Promise<boolean>

  /** HMAC-SHA-256. Verification is done by the caller with a constant-time compare. */
  mac(key: SeKeyHandle, data: Uint8Array): Promise<Uint8Array>

  /** Releases sessions, handles, connections. */
  close(): Promise<void>
}

/** HKDF-SHA256 (RFC 5869) with the base key as IKM. */
export interface HkdfParams {
  readonly kdf: 'HKDF_SHA256'
  readonly salt: Uint8Array
  readonly info: Uint8Array
}

/**
 * 3GPP generic KDF (TS 33.220 Annex B.2): HMAC-SHA-256(base key, S), S given already
 * encoded (FC || P0 || L0 || …; see `@m2msec/crypto` `kdf3gppInput`). Output 32 bytes.
 */
export interface Kdf3gppParams {
  readonly kdf: 'KDF_3GPP'
  readonly s: Uint8Array
}

export type DeriveParams = HkdfParams | Kdf3gppParams

/** Optional: derive a new key inside the SE from an existing one. */
export interface KeyDeriver {
  /**
   * Derives `target.algorithm` key material (its natural length) from `base` and stores it
   * as a new key. Base must be HMAC_SHA256 (or AES_256_GCM for HKDF). The derived bytes never
   * leave the SE unless `target.exportable` and a later wrap asks for them.
   */
  deriveKey(base: SeKeyHandle, params: DeriveParams, target: KeySpec): Promise<CreatedKey>
}

/** A recipient for a wrapped key: a KMS key (A256KW) or an external public key (ECDH-ES+A256KW). */
export type WrapRecipient =
  | { readonly kind: 'kms-key'; readonly key: SeKeyHandle; readonly kid: string }
  | { readonly kind: 'public-jwk'; readonly jwk: Readonly<Record<string, string>>; readonly kid: string }

/** Optional: move an exportable key out as a JWE, and import a JWE-wrapped key. */
export interface KeyWrapper {
  /**
   * Returns a JWE (compact) whose plaintext is the key material (raw bytes for secret keys,
   * PKCS#8 DER for private keys). `alg` is A256KW for a kms-key recipient (which must be an
   * AES_256_GCM key of the same SE) and ECDH-ES+A256KW for a P-256 public JWK; `enc` A256GCM.
   * Throws ERR_EXPORT_DENIED when `key` was not created exportable.
   */
  wrapKey(key: SeKeyHandle, recipient: WrapRecipient): Promise<string>
  /** Opens a JWE made with `A256KW` under `unwrapWith` and imports its plaintext as a new key. */
  unwrapKey(jwe: string, unwrapWith: SeKeyHandle, target: KeySpec): Promise<CreatedKey>
}

/** Milenage (TS 35.206) inputs. */
export interface MilenageInput {
  readonly rand: Uint8Array // 16
  readonly sqn: Uint8Array // 6
  readonly amf: Uint8Array // 2
}

/** All Milenage outputs (TS 35.206 §4.1). */
export interface MilenageOutput {
  readonly macA: Uint8Array // f1, 8
  readonly macS: Uint8Array // f1*, 8
  readonly res: Uint8Array // f2, 8
  readonly ck: Uint8Array // f3, 16
  readonly ik: Uint8Array // f4, 16
  readonly ak: Uint8Array // f5, 6
  readonly akStar: Uint8Array // f5*, 6
}

/** Optional: Milenage with K (and OPc) held in the SE; AES-ECB runs inside it. */
export interface MilenageCapable {
  milenage(key: SeKeyHandle, input: MilenageInput): Promise<MilenageOutput>
}

export function isKeyDeriver(se: SecureEnvironment): se is SecureEnvironment & KeyDeriver {
  return typeof (se as Partial<KeyDeriver>).deriveKey === 'function'
}
export function isKeyWrapper(se: SecureEnvironment): se is SecureEnvironment & KeyWrapper {
  return typeof (se as Partial<KeyWrapper>).wrapKey === 'function'
}
export function isMilenageCapable(se: SecureEnvironment): se is SecureEnvironment & MilenageCapable {
  return typeof (se as Partial<MilenageCapable>).milenage === 'function'
}

/** What each backend module exports: `create(options)`; options are validated by the backend. */
export type SecureEnvironmentFactory<Options> = (name: string, options: Options) => Promise<SecureEnvironment>
