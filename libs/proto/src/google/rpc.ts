/**
 * google.rpc: the standard rich error model (vendored googleapis protos under proto/google/rpc).
 * `Status` is what travels in `grpc-status-details-bin`; `ErrorInfo` is its m2msec detail.
 * `BadRequest`, `RetryInfo`, … are available for services that want to add more detail.
 */
export { Status } from '../gen/google/rpc/status.ts'
export {
  BadRequest,
  BadRequest_FieldViolation,
  DebugInfo,
  ErrorInfo,
  Help,
  Help_Link,
  LocalizedMessage,
  PreconditionFailure,
  PreconditionFailure_Violation,
  QuotaFailure,
  QuotaFailure_Violation,
  RequestInfo,
  ResourceInfo,
  RetryInfo,
} from '../gen/google/rpc/error_details.ts'
