/**
 * m2msec.authz.v1: the authorization (oneM2M PDP) gRPC API (generated from
 * proto/m2msec/authz/v1/authz.proto).
 *
 * `AuthorizationService` is the grpc-js service definition (`server.addService`),
 * `AuthorizationServer` the handler interface and `AuthorizationClient` the client class.
 * Build messages with `X.fromPartial({...})` or `X.create()`: a partial plain object fails
 * serialization (TOOLCHAIN pitfall 9). `uint64` revisions are `bigint`; Timestamps are `Date`;
 * oneofs are `{ $case, value }`; proto3 `optional` scalars are `field?: T`.
 *
 * @example
 * ```ts
 * import { credentials } from '@grpc/grpc-js'
 * import { AuthorizationClient, CheckRequest, Operation } from '@m2msec/proto/authz/v1'
 * const client = new AuthorizationClient('127.0.0.1:7002', credentials.createInsecure())
 * client.check(CheckRequest.fromPartial({ originator: 'Cae1', operation: Operation.OPERATION_RETRIEVE,
 *   targetPolicyIds: ['acp-1'], authenticated: true }), (err, res) => {})
 * ```
 */
export * from '../gen/m2msec/authz/v1/authz.ts'
