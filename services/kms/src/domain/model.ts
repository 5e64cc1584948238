/**
 * The KMS key model (after Vault transit's keysutil): a key is a named, tenant-scoped
 * aggregate with numbered versions that all live in one secure environment. New data is
 * always protected with the primary (latest) version; older versions keep decrypting and
 * verifying until the key is disabled or destroyed.
 */
import type { KeyAlgorithm } from '../se/api.ts'

/**
 * Operations a usage policy can grant. Names mirror the proto enum KeyOperation. EXPORT lets
 * a caller take an exportable key out wrapped (WrapKey); WRAP / UNWRAP are the uses of a
 * wrapping key.
 */
export const KEY_OPERATIONS = [
  'ENCRYPT',
  'DECRYPT',
  'SIGN',
  'VERIFY',
  'MAC',
  'VERIFY_MAC',
  'DERIVE',
  'WRAP',
  'UNWRAP',
  'MILENAGE',
  'EXPORT',
] as const
export type KeyOperation = (typeof KEY_OPERATIONS)[number]

/** Which operations make sense for which algorithm. */
export const OPERATIONS_BY_ALGORITHM: Readonly<Record<KeyAlgorithm, readonly KeyOperation[]>> = {
  AES_256_GCM: ['ENCRYPT', 'DECRYPT', 'WRAP', 'UNWRAP', 'DERIVE', 'EXPORT'],
  HMAC_SHA256: ['MAC', 'VERIFY_MAC', 'DERIVE', 'EXPORT'],
  EC_P256_SIGN: ['SIGN', 'VERIFY', 'EXPORT'],
  ED25519_SIGN: ['SIGN', 'VERIFY', 'EXPORT'],
  EC_P256_ECDH: ['UNWRAP', 'EXPORT'],
  // Subscriber keys never leave the SE, not even wrapped.
  MILENAGE: ['MILENAGE'],
}

export type KeyState = 'ENABLED' | 'DISABLED' | 'DESTRUCTION_SCHEDULED' | 'DESTROYED'

/** One version of a key: the SE reference (no material) and, for asymmetric keys, the public key. */
export interface KeyVersion {
  readonly version: number
  readonly ref: string
  readonly createdAt: string
  /** SubjectPublicKeyInfo DER, base64. */
  readonly publicKeySpki?: string
  /** Set when the SE material was destroyed. */
  readonly destroyed?: boolean
}

/**
 * A usage rule: these principals may perform these operations. A principal entry is an
 * exact principal id, `*` (anyone of the tenant) or `role:<name>`.
 */
export interface UsageRule {
  readonly principals: readonly string[]
  readonly operations: readonly KeyOperation[]
}

export interface KeyRecord {
  readonly tenant: string
  readonly id: string
  readonly algorithm: KeyAlgorithm
  readonly purpose: string
  readonly state: KeyState
  /** With DESTRUCTION_SCHEDULED: when the material is destroyed. */
  readonly destroyAfter?: string
  /** Name of the secure environment holding every version. */
  readonly secureEnvironment: string
  readonly exportable: boolean
  readonly primaryVersion: number
  readonly versions: readonly KeyVersion[]
  readonly usagePolicy: readonly UsageRule[]
  readonly labels: Readonly<Record<string, string>>
  readonly createdAt: string
  readonly updatedAt: string
  readonly createdBy: string
}

/** The authenticated caller as the domain sees it (structurally a runtime Principal). */
export interface Caller {
  readonly tenant: string
  readonly id: string
  readonly roles: readonly string[]
}

/** Role that may manage (create, rotate, disable, import, list) every key of its tenant. */
export const ADMIN_ROLE = 'admin'

/** Key ids: what callers may choose (also what generated ids look like). */
export const KEY_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/
