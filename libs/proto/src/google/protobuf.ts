/**
 * google.protobuf well-known types used by the m2msec APIs (`Any` packs error details into
 * `google.rpc.Status.details`).
 *
 * @example
 * ```ts
 * import { Any } from '@m2msec/proto/google/protobuf'
 * import { ErrorInfo } from '@m2msec/proto/google/rpc'
 * const packed = Any.fromPartial({
 *   typeUrl: 'type.googleapis.com/google.rpc.ErrorInfo',
 *   value: ErrorInfo.encode(ErrorInfo.fromPartial({ reason: 'ERR_KEY_NOT_FOUND', domain: 'm2msec.io' })).finish(),
 * })
 * ```
 */
export { Any } from '../gen/google/protobuf/any.ts'
export { Duration } from '../gen/google/protobuf/duration.ts'
export { Timestamp } from '../gen/google/protobuf/timestamp.ts'
