/**
 * m2msec.authn.v1: the authentication (MAF and token issuer) gRPC API (generated from
 * proto/m2msec/authn/v1/authn.proto).
 *
 * `AuthenticationService` is the grpc-js service definition (`server.addService`),
 * `AuthenticationServer` the handler interface and `AuthenticationClient` the client class.
 * Build messages with `X.fromPartial({...})` or `X.create()`: a partial plain object fails
 * serialization (TOOLCHAIN pitfall 9). Timestamps are `Date`; oneofs are `{ $case, value }`.
 *
 * @example
 * ```ts
 * import { credentials } from '@grpc/grpc-js'
 * import { AuthenticationClient, IssueTokenRequest } from '@m2msec/proto/authn/v1'
 * const client = new AuthenticationClient('127.0.0.1:7003', credentials.createInsecure())
 * client.issueToken(IssueTokenRequest.fromPartial({ tenant: 'acme', assertion }), (err, res) => {})
 * ```
 */
export * from '../gen/m2msec/authn/v1/authn.ts'
