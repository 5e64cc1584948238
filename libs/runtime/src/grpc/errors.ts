/**
 * M2msecError <-> gRPC status. The status comes from the error code's table in
 * `@m2msec/errors`; the machine-readable reason travels twice: as `m2msec-error-code` metadata
 * (easy to read with any client) and as the standard `google.rpc.ErrorInfo` inside
 * `grpc-status-details-bin` (what grpcurl, Envoy and Google client libraries understand).
 * An error whose details carry a positive `retryAfterMs` (e.g. ERR_RATE_LIMITED) also gets a
 * `google.rpc.RetryInfo` next to the ErrorInfo and the `grpc-retry-pushback-ms` trailer
 * (gRFC A6: grpc clients with a retry policy wait that long before retrying).
 */
import { Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js'
import { ERROR_CODES, M2msecError, isErrorCode, isM2msecError, type ErrorCode } from '@m2msec/errors'
import {
  ERROR_INFO_TYPE_URL,
  RETRY_INFO_TYPE_URL,
  decodeErrorInfo,
  decodeRpcStatus,
  encodeErrorInfo,
  encodeRetryInfo,
  encodeRpcStatus,
  type AnyMessage,
  type RpcStatus,
} from './status-details.ts'

/** `ErrorInfo.domain` of every m2msec error. */
export const ERROR_DOMAIN = 'm2msec.io'
/** Metadata key carrying the error code. */
export const ERROR_CODE_METADATA = 'm2msec-error-code'
/** Metadata key carrying the request id (trailers of every answer). */
export const REQUEST_ID_METADATA = 'm2msec-request-id'
/** The standard rich-error trailer. */
export const STATUS_DETAILS_METADATA = 'grpc-status-details-bin'
/** The gRPC server push-back trailer (gRFC A6): milliseconds a retrying client should wait. */
export const RETRY_PUSHBACK_METADATA = 'grpc-retry-pushback-ms'
/** The error detail that, when a positive number of milliseconds, becomes `RetryInfo`. */
export const RETRY_AFTER_DETAIL = 'retryAfterMs'

/** The gRPC status number of an error code. */
export function grpcStatusOf(code: ErrorCode): GrpcStatus {
  return GrpcStatus[ERROR_CODES[code]]
}

function serviceError(code: GrpcStatus, message: string, metadata: Metadata): ServiceError {
  return Object.assign(new Error(message), { code, details: message, metadata })
}

/** The positive whole milliseconds of an exposed error's `retryAfterMs` detail, if any. */
function retryAfterOf(err: M2msecError): number | undefined {
  const raw = err.details[RETRY_AFTER_DETAIL]
  const ms = typeof raw === 'number' ? raw : typeof raw === 'string' ? Number(raw) : Number.NaN
  return Number.isFinite(ms) && ms > 0 ? Math.ceil(ms) : undefined
}

/**
 * The `google.rpc.Status` of an error: for an M2msecError its status, message and an
 * `ErrorInfo{reason: code, domain: 'm2msec.io', metadata: details}` (plus a
 * `RetryInfo{retry_delay}` when the details carry a positive `retryAfterMs`); for anything else (and
 * for codes whose status is INTERNAL) INTERNAL with `internal error (request id …)` and no
 * details. Structurally equal to ts-proto's `google.rpc.Status`, so batch RPCs can return it
 * per item.
 *
 * @example
 * ```ts
 * items.push({ $case: 'error', value: toRpcStatus(err, ctx.requestId) })
 * ```
 */
export function toRpcStatus(err: unknown, requestId = 'unknown'): RpcStatus {
  const known = isM2msecError(err)
  const code: ErrorCode = known ? err.code : 'ERR_INTERNAL'
  const grpcCode = grpcStatusOf(code)
  const exposed = known && grpcCode !== GrpcStatus.INTERNAL
  const message = exposed ? err.message : `internal error (request id ${requestId})`
  const details: Record<string, string> = {}
  if (exposed) {
    for (const [k, v] of Object.entries(err.details)) details[k] = String(v)
  }
  const info = encodeErrorInfo({ reason: code, domain: ERROR_DOMAIN, metadata: details })
  const anys: AnyMessage[] = [{ typeUrl: ERROR_INFO_TYPE_URL, value: Buffer.from(info) }]
  const retryMs = exposed ? retryAfterOf(err) : undefined
  if (retryMs !== undefined) {
    anys.push({ typeUrl: RETRY_INFO_TYPE_URL, value: Buffer.from(encodeRetryInfo({ retryDelayMs: retryMs })) })
  }
  return { code: grpcCode, message, details: anys }
}

/**
 * Converts anything thrown by a handler into the error sent to the client (see
 * {@link toRpcStatus} for what is exposed). The real error of an INTERNAL answer must be
 * logged by the caller; it is never sent.
 *
 * @example
 * ```ts
 * callback(toGrpcError(new M2msecError('ERR_KEY_NOT_FOUND', 'key not found', { keyId }), requestId))
 * // -> NOT_FOUND, "key not found", ErrorInfo{reason: 'ERR_KEY_NOT_FOUND', domain: 'm2msec.io', metadata: {keyId}}
 * callback(toGrpcError(new M2msecError('ERR_RATE_LIMITED', 'slow down', { retryAfterMs: 1500 }), requestId))
 * // -> RESOURCE_EXHAUSTED, ErrorInfo + RetryInfo{retry_delay: 1.5s}, trailer grpc-retry-pushback-ms: 1500
 * ```
 */
export function toGrpcError(err: unknown, requestId: string): ServiceError {
  const rpcStatus = toRpcStatus(err, requestId)
  const metadata = new Metadata()
  metadata.set(ERROR_CODE_METADATA, isM2msecError(err) ? err.code : 'ERR_INTERNAL')
  metadata.set(REQUEST_ID_METADATA, requestId)
  metadata.set(STATUS_DETAILS_METADATA, Buffer.from(encodeRpcStatus(rpcStatus)))
  const retryMs = isM2msecError(err) && grpcStatusOf(err.code) !== GrpcStatus.INTERNAL ? retryAfterOf(err) : undefined
  if (retryMs !== undefined) metadata.set(RETRY_PUSHBACK_METADATA, String(retryMs))
  return serviceError(rpcStatus.code as GrpcStatus, rpcStatus.message, metadata)
}

/**
 * The M2msecError carried by a `google.rpc.Status` (e.g. a per-item error of a batch
 * response), or undefined when it has no m2msec `ErrorInfo`.
 *
 * @example
 * ```ts
 * if (item.$case === 'error') throw fromRpcStatus(item.value)
 * ```
 */
export function fromRpcStatus(rpcStatus: {
  readonly message: string
  readonly details: readonly { readonly typeUrl: string; readonly value: Uint8Array }[]
}): M2msecError | undefined {
  for (const any of rpcStatus.details) {
    if (any.typeUrl !== ERROR_INFO_TYPE_URL) continue
    const info = decodeErrorInfo(any.value)
    if (info.domain === ERROR_DOMAIN && isErrorCode(info.reason)) {
      return new M2msecError(info.reason, rpcStatus.message, info.metadata)
    }
  }
  return undefined
}

/** Error code used when a status arrives without an m2msec reason. */
const FALLBACK_CODES: Partial<Record<GrpcStatus, ErrorCode>> = {
  [GrpcStatus.INVALID_ARGUMENT]: 'ERR_INVALID_ARGUMENT',
  [GrpcStatus.OUT_OF_RANGE]: 'ERR_INVALID_ARGUMENT',
  [GrpcStatus.UNAUTHENTICATED]: 'ERR_UNAUTHENTICATED',
  [GrpcStatus.PERMISSION_DENIED]: 'ERR_PERMISSION_DENIED',
  [GrpcStatus.NOT_FOUND]: 'ERR_NOT_FOUND',
  [GrpcStatus.ALREADY_EXISTS]: 'ERR_ALREADY_EXISTS',
  [GrpcStatus.FAILED_PRECONDITION]: 'ERR_FAILED_PRECONDITION',
  [GrpcStatus.ABORTED]: 'ERR_REVISION_CONFLICT',
  [GrpcStatus.RESOURCE_EXHAUSTED]: 'ERR_RATE_LIMITED',
  [GrpcStatus.UNAVAILABLE]: 'ERR_UNAVAILABLE',
  [GrpcStatus.DEADLINE_EXCEEDED]: 'ERR_UNAVAILABLE',
  [GrpcStatus.CANCELLED]: 'ERR_UNAVAILABLE',
}

/** What {@link fromGrpcError} reads from a client-side error. */
export interface GrpcErrorLike {
  readonly code?: number
  readonly details?: string
  readonly message?: string
  readonly metadata?: Metadata
}

function firstString(metadata: Metadata | undefined, key: string): string | undefined {
  const v = metadata?.get(key)[0]
  return typeof v === 'string' ? v : undefined
}

/**
 * Converts a gRPC client error back into the M2msecError the server threw (code, message and
 * details from `ErrorInfo`; detail values arrive as strings). A status without an m2msec
 * reason maps to a generic code (UNAVAILABLE -> ERR_UNAVAILABLE, …) with `grpcStatus` in the
 * details. The original error is kept as `cause`.
 *
 * @example
 * ```ts
 * client.getKey(req, (err, res) => { if (err) throw fromGrpcError(err) })
 * // err.code === 'ERR_KEY_NOT_FOUND'
 * ```
 */
export function fromGrpcError(err: GrpcErrorLike): M2msecError {
  const grpcCode = err.code ?? GrpcStatus.UNKNOWN
  const message = err.details ?? err.message ?? 'unknown error'
  const raw = err.metadata?.get(STATUS_DETAILS_METADATA)[0]
  if (raw instanceof Uint8Array) {
    try {
      const rpcStatus = decodeRpcStatus(raw)
      const found = fromRpcStatus(rpcStatus)
      if (found !== undefined) {
        return new M2msecError(found.code, rpcStatus.message || message, found.details, {
          cause: err,
        })
      }
    } catch {
      // A malformed trailer is not fatal: fall through to the metadata / status mapping.
    }
  }
  const reason = firstString(err.metadata, ERROR_CODE_METADATA)
  if (reason !== undefined && isErrorCode(reason)) return new M2msecError(reason, message, {}, { cause: err })
  const fallback = FALLBACK_CODES[grpcCode as GrpcStatus] ?? 'ERR_INTERNAL'
  return new M2msecError(fallback, message, { grpcStatus: GrpcStatus[grpcCode] ?? String(grpcCode) }, { cause: err })
}
