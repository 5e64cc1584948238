/**
 * Attribute templates of the pkcs11 SE: least privilege per algorithm.
 *
 * Every usage attribute is set explicitly, true or false, because tokens grant defaults
 * otherwise (SoftHSM gives secret keys encrypt, decrypt, verify, wrap and unwrap: TOOLCHAIN.md
 * pitfall 18). Keys are sensitive, non-modifiable and non-copyable; CKA_EXTRACTABLE is true
 * only for keys created exportable (they can then leave the token only wrapped).
 */
import pkcs11js from 'pkcs11js'
import type { KeyAlgorithm } from '../api.ts'
import { CKK_EC_EDWARDS, EC_PARAMS_ED25519, EC_PARAMS_P256 } from './constants.ts'

const P = pkcs11js

type Template = pkcs11js.Template

const SECRET_USAGES = [P.CKA_ENCRYPT, P.CKA_DECRYPT, P.CKA_SIGN, P.CKA_VERIFY, P.CKA_WRAP, P.CKA_UNWRAP, P.CKA_DERIVE]
const PRIVATE_USAGES = [P.CKA_SIGN, P.CKA_SIGN_RECOVER, P.CKA_DECRYPT, P.CKA_UNWRAP, P.CKA_DERIVE]
const PUBLIC_USAGES = [P.CKA_VERIFY, P.CKA_VERIFY_RECOVER, P.CKA_ENCRYPT, P.CKA_WRAP, P.CKA_DERIVE]

/** Every usage in `all` set explicitly: true when granted, false otherwise. */
function usages(all: readonly number[], granted: readonly number[]): Template {
  return all.map((type) => ({ type, value: granted.includes(type) }))
}

/** Where an object lives and who may see it. */
export interface ObjectIdentity {
  readonly id: Buffer
  readonly label: string
  /** Token object (persistent) or session object (ephemeral helper keys). */
  readonly token: boolean
}

/** The kinds of secret keys this backend creates. */
export type SecretKind =
  | 'AES_256_GCM' //  data key: encrypt/decrypt, and wrap/unwrap (a KMS wrapping key for A256KW)
  | 'HMAC_SHA256' //  C_Sign with CKM_SHA256_HMAC (MAC and the 3GPP KDF)
  | 'MILENAGE_K' //   AES-128 subscriber key: only CKM_AES_ECB encrypt
  | 'OPC_KEK' //      AES-256 key sealing OPc values: encrypt/decrypt
  | 'EXPORT_KEK' //   ephemeral: wraps an exportable key out for the host
  | 'CEK_OUT' //      ephemeral: a JWE content key to be wrapped (extractable, no usage)
  | 'CEK_IN' //       ephemeral: an unwrapped JWE content key (decrypt only)
  | 'ECDH_Z' //       ephemeral: an ECDH shared secret read once by the host

const SECRET_PROFILES: Readonly<Record<SecretKind, { keyType: number; grants: readonly number[] }>> = {
  AES_256_GCM: { keyType: P.CKK_AES, grants: [P.CKA_ENCRYPT, P.CKA_DECRYPT, P.CKA_WRAP, P.CKA_UNWRAP] },
  HMAC_SHA256: { keyType: P.CKK_GENERIC_SECRET, grants: [P.CKA_SIGN] },
  MILENAGE_K: { keyType: P.CKK_AES, grants: [P.CKA_ENCRYPT] },
  OPC_KEK: { keyType: P.CKK_AES, grants: [P.CKA_ENCRYPT, P.CKA_DECRYPT] },
  EXPORT_KEK: { keyType: P.CKK_AES, grants: [P.CKA_WRAP] },
  CEK_OUT: { keyType: P.CKK_AES, grants: [] },
  CEK_IN: { keyType: P.CKK_AES, grants: [P.CKA_DECRYPT] },
  ECDH_Z: { keyType: P.CKK_GENERIC_SECRET, grants: [] },
}

/**
 * Template of a secret key. `extractable` only for exportable keys and for the ephemeral
 * objects whose whole purpose is to be read or wrapped (CEK_OUT, ECDH_Z).
 */
export function secretTemplate(kind: SecretKind, who: ObjectIdentity, extractable: boolean): Template {
  const profile = SECRET_PROFILES[kind]
  // CEK_OUT and ECDH_Z are read by the host on purpose; everything else stays sensitive.
  const sensitive = kind !== 'CEK_OUT' && kind !== 'ECDH_Z'
  return [
    { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
    { type: P.CKA_KEY_TYPE, value: profile.keyType },
    { type: P.CKA_TOKEN, value: who.token },
    { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_SENSITIVE, value: sensitive },
    { type: P.CKA_EXTRACTABLE, value: extractable },
    { type: P.CKA_MODIFIABLE, value: false },
    { type: P.CKA_COPYABLE, value: false },
    { type: P.CKA_ID, value: who.id },
    { type: P.CKA_LABEL, value: who.label },
    ...usages(SECRET_USAGES, profile.grants),
  ]
}

/** The secret kind of a KMS secret-key algorithm. */
export function secretKindOf(algorithm: KeyAlgorithm): SecretKind {
  if (algorithm === 'AES_256_GCM' || algorithm === 'HMAC_SHA256') return algorithm
  if (algorithm === 'MILENAGE') return 'MILENAGE_K'
  throw new RangeError(`${algorithm} is not a secret-key algorithm`)
}

/** Key type and curve parameters of an asymmetric algorithm. */
export function curveOf(algorithm: KeyAlgorithm): { keyType: number; ecParams: Buffer } {
  return algorithm === 'ED25519_SIGN'
    ? { keyType: CKK_EC_EDWARDS, ecParams: EC_PARAMS_ED25519 }
    : { keyType: P.CKK_EC, ecParams: EC_PARAMS_P256 }
}

/** Private-key template: signing keys sign, ECDH keys derive, nothing else. */
export function privateTemplate(algorithm: KeyAlgorithm, who: ObjectIdentity, extractable: boolean): Template {
  const grant = algorithm === 'EC_P256_ECDH' ? P.CKA_DERIVE : P.CKA_SIGN
  return [
    { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY },
    { type: P.CKA_KEY_TYPE, value: curveOf(algorithm).keyType },
    { type: P.CKA_TOKEN, value: who.token },
    { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_SENSITIVE, value: true },
    { type: P.CKA_EXTRACTABLE, value: extractable },
    { type: P.CKA_MODIFIABLE, value: false },
    { type: P.CKA_COPYABLE, value: false },
    { type: P.CKA_ID, value: who.id },
    { type: P.CKA_LABEL, value: who.label },
    ...usages(PRIVATE_USAGES, [grant]),
  ]
}

/** Public-key template: signing keys verify; an ECDH public key has no use in the token. */
export function publicTemplate(algorithm: KeyAlgorithm, who: ObjectIdentity): Template {
  const grants = algorithm === 'EC_P256_ECDH' ? [] : [P.CKA_VERIFY]
  return [
    { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY },
    { type: P.CKA_KEY_TYPE, value: curveOf(algorithm).keyType },
    { type: P.CKA_TOKEN, value: who.token },
    { type: P.CKA_PRIVATE, value: false },
    { type: P.CKA_MODIFIABLE, value: false },
    { type: P.CKA_COPYABLE, value: false },
    { type: P.CKA_ID, value: who.id },
    { type: P.CKA_LABEL, value: who.label },
    { type: P.CKA_EC_PARAMS, value: curveOf(algorithm).ecParams },
    ...usages(PUBLIC_USAGES, grants),
  ]
}

/** DER OCTET STRING around a public point, the CKA_EC_POINT encoding of PKCS#11. */
export function derOctetString(point: Uint8Array): Buffer {
  if (point.length >= 128) throw new RangeError('point too long')
  return Buffer.concat([Buffer.from([0x04, point.length]), point])
}

/** The raw point from CKA_EC_POINT: DER OCTET STRING (standard) or raw (some tokens). */
export function pointFromEcPoint(value: Buffer, algorithm: KeyAlgorithm): Uint8Array {
  const raw = algorithm === 'ED25519_SIGN' ? 32 : 65
  if (value.length === raw + 2 && value[0] === 0x04 && value[1] === raw) return new Uint8Array(value.subarray(2))
  return new Uint8Array(value)
}
