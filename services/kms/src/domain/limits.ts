/** Input limits of the KMS API (documented in kms.proto); oversized input is rejected unchanged. */
import { M2msecError } from '@m2msec/errors'

export const LIMITS = {
  plaintextBytes: 64 * 1024,
  ciphertextBytes: 64 * 1024 + 1024,
  aadBytes: 8 * 1024,
  messageBytes: 64 * 1024,
  macBytes: 64,
  signatureBytes: 256,
  randomBytes: 1024,
  batchItems: 1000,
  labels: 32,
  labelBytes: 256,
  purposeBytes: 256,
  usageRules: 64,
  principalsPerRule: 64,
  secretBytes: 64 * 1024,
  secretNameLength: 128,
  wrappedKeyBytes: 16 * 1024,
  kdfParams: 16,
  kdfParamBytes: 1024,
  pageSize: 1000,
  defaultPageSize: 100,
} as const

/** Throws ERR_PAYLOAD_TOO_LARGE when `value` is longer than `max` bytes. */
export function checkSize(field: string, value: Uint8Array | string, max: number): void {
  const length = typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : value.byteLength
  if (length > max) {
    throw new M2msecError('ERR_PAYLOAD_TOO_LARGE', `${field} is larger than ${max} bytes`, { field, max })
  }
}

/** Throws ERR_INVALID_ARGUMENT unless `value` has exactly `length` bytes. */
export function checkLength(field: string, value: Uint8Array, length: number): void {
  if (value.byteLength !== length) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', `${field} must be ${length} bytes`, { field })
  }
}

/** Clamps a requested page size; 0 means the default. */
export function pageSize(requested: number): number {
  if (!Number.isInteger(requested) || requested < 0) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'page_size must be a non-negative integer', { field: 'page_size' })
  }
  return requested === 0 ? LIMITS.defaultPageSize : Math.min(requested, LIMITS.pageSize)
}
