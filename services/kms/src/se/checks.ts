/**
 * Argument checks and error factories shared by every SE backend, so that all of them reject
 * the same bad input with the same code (the conformance suite asserts these codes).
 * Messages name fields and algorithms, never values.
 */
import { M2msecError, invalidArgument } from '@m2msec/errors'
import type {
  KeyAlgorithm,
  KeySpec,
  MilenageInput,
  SealedData,
  SeCapabilities,
  SeKeyHandle,
  SeOperation,
} from './api.ts'
import { KEY_ALGORITHMS } from './api.ts'

/** Longest `ref` any backend accepts (a MILENAGE pkcs11 ref is about 150 characters). */
export const MAX_REF_LENGTH = 4096
/** Longest operator label (PKCS#11 CKA_LABEL has no limit, but labels are not documents). */
export const MAX_LABEL_LENGTH = 256

/** True for one of the algorithm names in {@link KEY_ALGORITHMS}. */
export function isKeyAlgorithm(value: unknown): value is KeyAlgorithm {
  return typeof value === 'string' && (KEY_ALGORITHMS as readonly string[]).includes(value)
}

/** `ERR_SE_NOT_SUPPORTED` naming the SE and what it cannot do. */
export function notSupported(seName: string, what: string, details: Record<string, string> = {}): M2msecError {
  return new M2msecError('ERR_SE_NOT_SUPPORTED', `secure environment ${seName} does not support ${what}`, {
    secureEnvironment: seName,
    ...details,
  })
}

/** `ERR_KEY_TYPE_MISMATCH` for a key whose algorithm does not fit `operation`. */
export function keyTypeMismatch(operation: string, algorithm: string): M2msecError {
  return new M2msecError('ERR_KEY_TYPE_MISMATCH', `${operation} is not possible with a ${algorithm} key`, {
    operation,
    algorithm,
  })
}

/**
 * Checks that the SE offers `operation` on `algorithm` (ERR_SE_NOT_SUPPORTED otherwise,
 * also for algorithm names the KMS does not know).
 */
export function requireCapability(
  seName: string,
  caps: SeCapabilities,
  algorithm: unknown,
  operation: SeOperation,
): KeyAlgorithm {
  if (!isKeyAlgorithm(algorithm) || !caps.algorithms.includes(algorithm)) {
    throw notSupported(seName, `the algorithm ${String(algorithm)}`, { algorithm: String(algorithm) })
  }
  if (!caps.operations.includes(operation)) {
    throw notSupported(seName, `the operation ${operation}`, { operation })
  }
  return algorithm
}

/**
 * Validates a key handle for `operation`: a known, supported algorithm (NOT_SUPPORTED), one of
 * `allowed` (KEY_TYPE_MISMATCH), the operation offered (NOT_SUPPORTED), a well-formed ref.
 */
export function requireKey(
  seName: string,
  caps: SeCapabilities,
  key: SeKeyHandle,
  allowed: readonly KeyAlgorithm[],
  operation: SeOperation,
): KeyAlgorithm {
  if (typeof key !== 'object' || key === null) throw invalidArgument('key handle is required', { field: 'key' })
  if (!isKeyAlgorithm(key.algorithm) || !caps.algorithms.includes(key.algorithm)) {
    throw notSupported(seName, `the algorithm ${String(key.algorithm)}`, { algorithm: String(key.algorithm) })
  }
  if (!allowed.includes(key.algorithm)) throw keyTypeMismatch(operation, key.algorithm)
  if (!caps.operations.includes(operation)) throw notSupported(seName, `the operation ${operation}`, { operation })
  requireRef(key.ref)
  return key.algorithm
}

/** A ref is a non-empty printable string of bounded length. */
export function requireRef(ref: unknown): asserts ref is string {
  if (typeof ref !== 'string' || ref.length === 0 || ref.length > MAX_REF_LENGTH) {
    throw invalidArgument('key ref is malformed', { field: 'ref' })
  }
}

/** The ref is not one this backend produced (or its material is gone). */
export function unknownRef(): M2msecError {
  return invalidArgument('key ref is malformed or unknown to this secure environment', { field: 'ref' })
}

/**
 * Validates a key spec for creation in an SE with `caps`. MILENAGE keys are never exportable:
 * subscriber keys stay in the SE (the KMS grants them no EXPORT operation either).
 */
export function requireSpec(seName: string, caps: SeCapabilities, spec: KeySpec, operation: SeOperation): KeyAlgorithm {
  if (typeof spec !== 'object' || spec === null) throw invalidArgument('key spec is required', { field: 'spec' })
  const algorithm = requireCapability(seName, caps, spec.algorithm, operation)
  if (typeof spec.label !== 'string' || spec.label.length > MAX_LABEL_LENGTH) {
    throw invalidArgument(`label must be a string of at most ${MAX_LABEL_LENGTH} characters`, { field: 'label' })
  }
  if (spec.exportable !== undefined && typeof spec.exportable !== 'boolean') {
    throw invalidArgument('exportable must be a boolean', { field: 'exportable' })
  }
  if (algorithm === 'MILENAGE' && spec.exportable === true) {
    throw invalidArgument('MILENAGE keys cannot be exportable', { field: 'exportable' })
  }
  return algorithm
}

/** Throws ERR_INVALID_ARGUMENT unless `value` is a Uint8Array. */
export function requireBytes(value: unknown, field: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw invalidArgument(`${field} must be bytes`, { field })
}

/** AES-256-GCM parameters of the contract: 12-byte IV, 16-byte tag. */
export const GCM_IV_LENGTH = 12
export const GCM_TAG_LENGTH = 16

/** Validates a {@link SealedData} (IV and tag lengths). */
export function requireSealed(sealed: SealedData): void {
  if (typeof sealed !== 'object' || sealed === null)
    throw invalidArgument('sealed data is required', { field: 'sealed' })
  requireBytes(sealed.iv, 'iv')
  requireBytes(sealed.ciphertext, 'ciphertext')
  requireBytes(sealed.tag, 'tag')
  if (sealed.iv.length !== GCM_IV_LENGTH) throw invalidArgument(`iv must be ${GCM_IV_LENGTH} bytes`, { field: 'iv' })
  if (sealed.tag.length !== GCM_TAG_LENGTH)
    throw invalidArgument(`tag must be ${GCM_TAG_LENGTH} bytes`, { field: 'tag' })
}

/** Validates Milenage inputs: RAND 16, SQN 6, AMF 2 bytes. */
export function requireMilenageInput(input: MilenageInput): void {
  if (typeof input !== 'object' || input === null)
    throw invalidArgument('milenage input is required', { field: 'input' })
  for (const [field, length] of [
    ['rand', 16],
    ['sqn', 6],
    ['amf', 2],
  ] as const) {
    const value: unknown = input[field]
    if (!(value instanceof Uint8Array) || value.length !== length) {
      throw invalidArgument(`${field} must be ${length} bytes`, { field })
    }
  }
}

/** The GCM tag did not verify (wrong key, wrong AAD, or tampered data). */
export function ciphertextInvalid(): M2msecError {
  return new M2msecError('ERR_CIPHERTEXT_INVALID', 'ciphertext authentication failed')
}

/** The key may not leave the SE. */
export function exportDenied(reason: string): M2msecError {
  return new M2msecError('ERR_EXPORT_DENIED', reason)
}
