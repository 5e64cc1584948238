/**
 * Stable, typed errors shared by every m2msec layer (domain, services, SDK, CLI).
 *
 * This package has no dependencies on purpose: domain code throws these errors without
 * pulling in gRPC or NATS. `@m2msec/runtime` owns the mapping from `code` to gRPC status;
 * the SDK maps a status + reason back to the same code.
 *
 * Callers branch on `err.code`, never on `instanceof`, which stays correct when a
 * workspace ends up with two copies of this package.
 *
 * @example
 * ```ts
 * import { M2msecError, isM2msecError } from '@m2msec/errors'
 * throw new M2msecError('ERR_KEY_NOT_FOUND', 'key not found', { keyId })
 * // ...
 * if (isM2msecError(err) && err.code === 'ERR_KEY_NOT_FOUND') { ... }
 * ```
 */

/** Every error code, grouped by the gRPC status it maps to (see `@m2msec/runtime`). */
export const ERROR_CODES = {
  // INVALID_ARGUMENT: the request itself is wrong; retrying it unchanged fails again.
  ERR_INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  ERR_PAYLOAD_TOO_LARGE: 'INVALID_ARGUMENT',
  ERR_CONFIG_INVALID: 'INVALID_ARGUMENT',
  ERR_KEY_TYPE_MISMATCH: 'INVALID_ARGUMENT',
  ERR_CIPHERTEXT_INVALID: 'INVALID_ARGUMENT',
  ERR_MAC_INVALID: 'INVALID_ARGUMENT',
  ERR_SIGNATURE_INVALID: 'INVALID_ARGUMENT',
  // UNAUTHENTICATED: the caller could not be identified.
  ERR_UNAUTHENTICATED: 'UNAUTHENTICATED',
  ERR_TOKEN_INVALID: 'UNAUTHENTICATED',
  ERR_TOKEN_EXPIRED: 'UNAUTHENTICATED',
  ERR_TOKEN_REVOKED: 'UNAUTHENTICATED',
  ERR_REPLAY: 'UNAUTHENTICATED',
  // PERMISSION_DENIED: identified, but not allowed.
  ERR_PERMISSION_DENIED: 'PERMISSION_DENIED',
  ERR_KEY_USAGE_DENIED: 'PERMISSION_DENIED',
  ERR_EXPORT_DENIED: 'PERMISSION_DENIED',
  // NOT_FOUND: unknown id, or an id of another tenant (never PERMISSION_DENIED for those).
  ERR_NOT_FOUND: 'NOT_FOUND',
  ERR_KEY_NOT_FOUND: 'NOT_FOUND',
  ERR_KEY_VERSION_NOT_FOUND: 'NOT_FOUND',
  ERR_SECRET_NOT_FOUND: 'NOT_FOUND',
  ERR_SE_NOT_FOUND: 'NOT_FOUND',
  // ALREADY_EXISTS
  ERR_ALREADY_EXISTS: 'ALREADY_EXISTS',
  // FAILED_PRECONDITION: the object is in a state that forbids the operation.
  ERR_FAILED_PRECONDITION: 'FAILED_PRECONDITION',
  ERR_KEY_DISABLED: 'FAILED_PRECONDITION',
  ERR_KEY_DESTROYED: 'FAILED_PRECONDITION',
  ERR_SE_NOT_SUPPORTED: 'FAILED_PRECONDITION',
  // ABORTED: a concurrent writer won; re-read and retry.
  ERR_REVISION_CONFLICT: 'ABORTED',
  // RESOURCE_EXHAUSTED: rate limits and quotas.
  ERR_RATE_LIMITED: 'RESOURCE_EXHAUSTED',
  // UNAVAILABLE: a dependency is down; retry later.
  ERR_UNAVAILABLE: 'UNAVAILABLE',
  ERR_AUDIT_UNAVAILABLE: 'UNAVAILABLE',
  ERR_SE_UNAVAILABLE: 'UNAVAILABLE',
  // INTERNAL: a bug or an unexpected state; the message sent to clients is generic.
  ERR_INTERNAL: 'INTERNAL',
} as const

/** A stable, machine-readable error code. */
export type ErrorCode = keyof typeof ERROR_CODES

/** The gRPC status name that an error code maps to. */
export type StatusName = (typeof ERROR_CODES)[ErrorCode]

/** Structured, non-secret context for an error. Never put key material or payloads here. */
export type ErrorDetails = Readonly<Record<string, string | number | boolean>>

/**
 * The one error type of m2msec. `message` is safe to show to the caller; `cause` is for
 * logs only and is never sent over the wire.
 */
export class M2msecError extends Error {
  override readonly name = 'M2msecError'
  readonly code: ErrorCode
  readonly details: ErrorDetails

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.details = details
  }

  /** The gRPC status name this error maps to. */
  get status(): StatusName {
    return ERROR_CODES[this.code]
  }
}

/** True for any M2msecError, also one created by another copy of this package. */
export function isM2msecError(err: unknown): err is M2msecError {
  return (
    typeof err === 'object' &&
    err !== null &&
    (err as { name?: unknown }).name === 'M2msecError' &&
    typeof (err as { code?: unknown }).code === 'string' &&
    (err as { code: string }).code in ERROR_CODES
  )
}

/** True when `value` is a known error code (used when decoding a wire reason). */
export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERROR_CODES, value)
}

/** Shorthand for `new M2msecError('ERR_INVALID_ARGUMENT', message, details)`. */
export function invalidArgument(message: string, details: ErrorDetails = {}): M2msecError {
  return new M2msecError('ERR_INVALID_ARGUMENT', message, details)
}

/** Shorthand for a NOT_FOUND error with a specific code. */
export function notFound(
  code: Extract<ErrorCode, `ERR_${string}NOT_FOUND`>,
  message: string,
  details: ErrorDetails = {},
): M2msecError {
  return new M2msecError(code, message, details)
}
