/**
 * Wire encoding of `google.rpc.Status` with `google.rpc.ErrorInfo` and `google.rpc.RetryInfo`
 * details, the payload of the standard `grpc-status-details-bin` trailer
 * (https://google.aip.dev/193). Hand-encoded with @bufbuild/protobuf's wire primitives so the
 * runtime needs no generated code:
 *
 *   Status    { int32 code = 1; string message = 2; repeated google.protobuf.Any details = 3; }
 *   Any       { string type_url = 1; bytes value = 2; }
 *   ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }
 *   RetryInfo { google.protobuf.Duration retry_delay = 1; }
 *   Duration  { int64 seconds = 1; int32 nanos = 2; }
 */
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire'

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
  const w = new BinaryWriter()
  if (info.reason !== '') w.tag(1, WireType.LengthDelimited).string(info.reason)
  if (info.domain !== '') w.tag(2, WireType.LengthDelimited).string(info.domain)
  for (const [key, value] of Object.entries(info.metadata)) {
    w.tag(3, WireType.LengthDelimited).fork()
    w.tag(1, WireType.LengthDelimited).string(key)
    w.tag(2, WireType.LengthDelimited).string(value)
    w.join()
  }
  return w.finish()
}

/** Decodes a `google.rpc.ErrorInfo`; unknown fields are skipped. */
export function decodeErrorInfo(bytes: Uint8Array): ErrorInfo {
  const r = new BinaryReader(bytes)
  let reason = ''
  let domain = ''
  const metadata: Record<string, string> = {}
  while (r.pos < r.len) {
    const [field, wireType] = r.tag()
    if (field === 1 && wireType === WireType.LengthDelimited) reason = r.string()
    else if (field === 2 && wireType === WireType.LengthDelimited) domain = r.string()
    else if (field === 3 && wireType === WireType.LengthDelimited) {
      const entry = new BinaryReader(r.bytes())
      let key = ''
      let value = ''
      while (entry.pos < entry.len) {
        const [f, t] = entry.tag()
        if (f === 1 && t === WireType.LengthDelimited) key = entry.string()
        else if (f === 2 && t === WireType.LengthDelimited) value = entry.string()
        else entry.skip(t, f)
      }
      metadata[key] = value
    } else r.skip(wireType, field)
  }
  return { reason, domain, metadata }
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
  const seconds = Math.floor(ms / 1000)
  const nanos = (ms % 1000) * 1_000_000
  const w = new BinaryWriter()
  // The Duration field is always written, even for zero, so "retry now" stays explicit.
  w.tag(1, WireType.LengthDelimited).fork()
  if (seconds !== 0) w.tag(1, WireType.Varint).int64(seconds)
  if (nanos !== 0) w.tag(2, WireType.Varint).int32(nanos)
  w.join()
  return w.finish()
}

/** Decodes a `google.rpc.RetryInfo` (missing delay = 0); unknown fields are skipped. */
export function decodeRetryInfo(bytes: Uint8Array): RetryInfo {
  const r = new BinaryReader(bytes)
  let retryDelayMs = 0
  while (r.pos < r.len) {
    const [field, wireType] = r.tag()
    if (field === 1 && wireType === WireType.LengthDelimited) {
      const d = new BinaryReader(r.bytes())
      let seconds = 0
      let nanos = 0
      while (d.pos < d.len) {
        const [f, t] = d.tag()
        if (f === 1 && t === WireType.Varint) seconds = Number(d.int64())
        else if (f === 2 && t === WireType.Varint) nanos = d.int32()
        else d.skip(t, f)
      }
      retryDelayMs = seconds * 1000 + nanos / 1_000_000
    } else r.skip(wireType, field)
  }
  return { retryDelayMs }
}

/** Encodes a `google.rpc.Status`. */
export function encodeRpcStatus(status: RpcStatus): Uint8Array {
  const w = new BinaryWriter()
  if (status.code !== 0) w.tag(1, WireType.Varint).int32(status.code)
  if (status.message !== '') w.tag(2, WireType.LengthDelimited).string(status.message)
  for (const any of status.details) {
    w.tag(3, WireType.LengthDelimited).fork()
    w.tag(1, WireType.LengthDelimited).string(any.typeUrl)
    w.tag(2, WireType.LengthDelimited).bytes(any.value)
    w.join()
  }
  return w.finish()
}

/** Decodes a `google.rpc.Status`; unknown fields are skipped. */
export function decodeRpcStatus(bytes: Uint8Array): RpcStatus {
  const r = new BinaryReader(bytes)
  let code = 0
  let message = ''
  const details: AnyMessage[] = []
  while (r.pos < r.len) {
    const [field, wireType] = r.tag()
    if (field === 1 && wireType === WireType.Varint) code = r.int32()
    else if (field === 2 && wireType === WireType.LengthDelimited) message = r.string()
    else if (field === 3 && wireType === WireType.LengthDelimited) {
      const any = new BinaryReader(r.bytes())
      let typeUrl = ''
      let value = Buffer.alloc(0)
      while (any.pos < any.len) {
        const [f, t] = any.tag()
        if (f === 1 && t === WireType.LengthDelimited) typeUrl = any.string()
        else if (f === 2 && t === WireType.LengthDelimited) value = Buffer.from(any.bytes())
        else any.skip(t, f)
      }
      details.push({ typeUrl, value })
    } else r.skip(wireType, field)
  }
  return { code, message, details }
}
