/**
 * Group key trees held by the KMS (proto m2msec.kms.v1.GroupKeys, docs/groups-protocol.md):
 * `openGroupKeys` opens the tree bucket and returns the service definition with its handlers,
 * for `app.ts` to register next to KeyManagement.
 */
import type { NatsConnection } from '@m2msec/bus'
import { GroupKeysService } from '@m2msec/proto/kms/v1'
import type { KmsDeps } from '../domain/ports.ts'
import { createGroupKeysGrpcService, type GroupKeysHandlers } from './grpc.ts'
import { createGroupKeyOperations, type GroupKeyOperations } from './operations.ts'
import { openGroupTreeStore } from './store.ts'

export { createGroupKeyOperations, GROUP_LIMITS, type GroupKeyOperations } from './operations.ts'
export { createKvGroupTreeStore, GROUP_TREE_BUCKET, type GroupTreeStore } from './store.ts'
export { createGroupKeysGrpcService } from './grpc.ts'

/** What `app.ts` registers. */
export interface GroupKeysModule {
  readonly definition: typeof GroupKeysService
  readonly handlers: GroupKeysHandlers
  readonly ops: GroupKeyOperations
}

/**
 * @example
 * ```ts
 * const groupKeys = await openGroupKeys(nc, deps, { replicas: config.nats.replicas })
 * server.addUnaryService(groupKeys.definition, groupKeys.handlers)
 * ```
 */
export async function openGroupKeys(
  nc: NatsConnection,
  kms: KmsDeps,
  opts: { replicas: number },
): Promise<GroupKeysModule> {
  const ops = createGroupKeyOperations({ kms, store: await openGroupTreeStore(nc, opts) })
  return { definition: GroupKeysService, handlers: createGroupKeysGrpcService(ops), ops }
}
