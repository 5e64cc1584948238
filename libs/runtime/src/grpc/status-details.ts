/**
 * `google.rpc.Status` with `google.rpc.ErrorInfo` and `google.rpc.RetryInfo` details, the
 * payload of the standard `grpc-status-details-bin` trailer (https://google.aip.dev/193),
 * encoded with the generated codecs of `@m2msec/proto/google/rpc`. The runtime's own types
 * below are plain values (a delay in milliseconds instead of a Duration).
 */
import {
  ErrorInfo as ErrorInfoCodec,
  RetryInfo as RetryInfoCodec,
  Status as StatusCodec,
} from '@m2msec/proto/google/rpc'

/** Type URL of `google.rpc.ErrorInfo` inside an `Any`. */
export const ERROR_INFO_TYPE_URL = 'type.googleapis.com/google.rpc.ErrorInfo'

/** Type URL of `google.rpc.RetryInfo` inside an `Any`. */
export const RETRY_INFO_TYPE_URL = 'type.googleapis.com/google.rpc.RetryInfo'

/** `google.rpc.ErrorInfo`. */
export interface ErrorInfo {
  readonly reason: string
  readonly domain: string
  readonly metadata: Readonly<Record<string, string>>
}

/** `google.protobuf.Any`. */
export interface AnyMessage {
  readonly typeUrl: string
  /** A Buffer, like ts-proto's `Any.value` with `env=node`, so the two types interchange. */
  readonly value: Buffer
}

/** `google.rpc.Status`. */
export interface RpcStatus {
  readonly code: number
  readonly message: string
  // Mutable array type so the value is assignable to ts-proto's `Status`.
  readonly details: AnyMessage[]
}

/** Encodes a `google.rpc.ErrorInfo`. */
export function encodeErrorInfo(info: ErrorInfo): Uint8Array {
  return ErrorInfoCodec.encode({ reason: info.reason, domain: info.domain, metadata: { ...info.metadata } }).finish()
}

/** Decodes a `google.rpc.ErrorInfo`; unknown fields are skipped. */
export function decodeErrorInfo(bytes: Uint8Array): ErrorInfo {
  return ErrorInfoCodec.decode(bytes)
}

/** `google.rpc.RetryInfo`: how long the client should wait before retrying. */
export interface RetryInfo {
  /** `retry_delay` in milliseconds (the Duration's seconds and nanos, at millisecond precision). */
  readonly retryDelayMs: number
}

/**
 * Encodes a `google.rpc.RetryInfo`; the delay is rounded up to a whole millisecond and a
 * negative or non-finite delay encodes as zero.
 *
 * @example
 * ```ts
 * encodeRetryInfo({ retryDelayMs: 1500 }) // retry_delay { seconds: 1, nanos: 500000000 }
 * ```
 */
export function encodeRetryInfo(info: RetryInfo): Uint8Array {
  const ms = Number.isFinite(info.retryDelayMs) ? Math.max(0, Math.ceil(info.retryDelayMs)) : 0
  // retry_delay is always set, even for zero, so "retry now" stays explicit.
  const retryDelay = { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 }
  return RetryInfoCodec.encode({ retryDelay }).finish()
}

/** Decodes a `google.rpc.RetryInfo` (missing delay = 0); unknown fields are skipped. */
export function decodeRetryInfo(bytes: Uint8Array): RetryInfo {
  const d = RetryInfoCodec.decode(bytes).retryDelay
  return { retryDelayMs: d === undefined ? 0 : Number(d.seconds) * 1000 + d.nanos / 1_000_000 }
}

/** Encodes a `google.rpc.Status`. */
export function encodeRpcStatus(status: RpcStatus): Uint8Array {
  return StatusCodec.encode(status).finish()
}

/** Decodes a `google.rpc.Status`; unknown fields are skipped. */
export function decodeRpcStatus(bytes: Uint8Array): RpcStatus {
  return StatusCodec.decode(bytes)
}
