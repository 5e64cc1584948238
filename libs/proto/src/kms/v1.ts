/**
 * m2msec.kms.v1: the KMS gRPC API (generated from proto/m2msec/kms/v1/kms.proto).
 *
 * `KeyManagementService` is the grpc-js service definition (`server.addService`),
 * `KeyManagementServer` the handler interface and `KeyManagementClient` the client class.
 * Build messages with `X.fromPartial({...})` or `X.create()`: a partial plain object fails
 * serialization (TOOLCHAIN pitfall 9). `bytes` fields are `Buffer`; `uint64` would be `bigint`;
 * Timestamps are `Date`; oneofs are `{ $case, value }`.
 *
 * @example
 * ```ts
 * import { credentials } from '@grpc/grpc-js'
 * import { KeyManagementClient, EncryptRequest } from '@m2msec/proto/kms/v1'
 * const client = new KeyManagementClient('127.0.0.1:50051', credentials.createInsecure())
 * client.encrypt(EncryptRequest.fromPartial({ keyId: 'orders', plaintext: Buffer.from('hi') }), (err, res) => {})
 * ```
 */
export * from '../gen/m2msec/kms/v1/kms.ts'
// GroupKeys: group key trees held by the KMS (proto/m2msec/kms/v1/group_keys.proto).
// Named: both generated files export protobufPackage and the ts-proto helper types.
export {
  AggregateAnswer,
  AggregateMember,
  ApplyMembershipChangeRequest,
  ApplyMembershipChangeResponse,
  AuthenticateGroupRequest,
  AuthenticateGroupResponse,
  CreateGroupTreeRequest,
  CreateGroupTreeResponse,
  DeleteGroupTreeRequest,
  DeleteGroupTreeResponse,
  GetGroupTreeRequest,
  GetGroupTreeResponse,
  GetMemberEnvelopesRequest,
  GetMemberEnvelopesResponse,
  GroupChallengeData,
  GroupKeysClient,
  type GroupKeysServer,
  GroupKeysService,
  GroupTree,
  GroupVerdictData,
  IndexRange,
  KeyEnvelope,
  MemberCredential,
  SealBroadcastRequest,
  SealBroadcastResponse,
  SessionConfirmation,
  SubsetAnswerData,
  SubsetQueryData,
} from '../gen/m2msec/kms/v1/group_keys.ts'
