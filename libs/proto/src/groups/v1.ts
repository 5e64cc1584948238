/**
 * m2msec.groups.v1: the groups service gRPC API (generated from
 * proto/m2msec/groups/v1/groups.proto): `GroupsService` (definition), `GroupsServer`
 * (handlers), `GroupsClient`. Envelope, range and verdict messages shared with the KMS come
 * from `@m2msec/proto/kms/v1`.
 *
 * @example
 * ```ts
 * import { GroupsClient, GetEnvelopesRequest } from '@m2msec/proto/groups/v1'
 * const client = new GroupsClient('127.0.0.1:7005', credentials)
 * ```
 */
export * from '../gen/m2msec/groups/v1/groups.ts'
