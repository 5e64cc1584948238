/**
 * m2msec.common.v1: the error model shared by every m2msec gRPC API (generated from
 * proto/m2msec/common/v1/error.proto), plus the constants that go with it.
 *
 * A failed call carries a `google.rpc.Status` in the `grpc-status-details-bin` trailer whose
 * details hold one `google.rpc.ErrorInfo { reason: <ErrorReason name>, domain: ERROR_DOMAIN }`.
 *
 * @example
 * ```ts
 * import { ErrorReason, errorReasonFromJSON } from '@m2msec/proto/common/v1'
 * errorReasonFromJSON('ERR_KEY_NOT_FOUND') === ErrorReason.ERR_KEY_NOT_FOUND // true
 * ```
 */
export * from '../gen/m2msec/common/v1/error.ts'

/** `google.rpc.ErrorInfo.domain` of every m2msec error. */
export const ERROR_DOMAIN = 'm2msec.io'

/** Metadata key of the trailer that carries the binary `google.rpc.Status`. */
export const STATUS_DETAILS_METADATA_KEY = 'grpc-status-details-bin'

/** `google.protobuf.Any.type_url` of a packed `google.rpc.ErrorInfo`. */
export const ERROR_INFO_TYPE_URL = 'type.googleapis.com/google.rpc.ErrorInfo'
