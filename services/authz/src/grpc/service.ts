/**
 * The Authorization gRPC service: decode -> call the use case -> encode. Validation, policy and
 * audit are in the domain; authentication, error mapping, tracing and limits in
 * @m2msec/runtime.
 */
import { M2msecError, isM2msecError } from '@m2msec/errors'
import type * as pb from '@m2msec/proto/authz/v1'
import type { Status } from '@m2msec/proto/google/rpc'
import { toRpcStatus, type CallContext, type UnaryHandlers } from '@m2msec/runtime'
import type { Caller } from '../domain/model.ts'
import type { AuthzOperations } from '../domain/operations/index.ts'
import { LIMITS } from '../domain/limits.ts'
import {
  checkFromProto,
  checkResultToProto,
  explainResultToProto,
  issueTokenFromProto,
  issueTokenResultToProto,
  peerIpAddress,
  policyFromProto,
  policyToProto,
  revisionFromProto,
} from './mapping.ts'

export type AuthzHandlers = UnaryHandlers<typeof pb.AuthorizationService>

/** The domain caller of a call: the authenticated principal and the address it called from. */
function callerOf(ctx: CallContext): Caller {
  const ip = peerIpAddress(ctx.peer)
  const p = ctx.principal
  return { tenant: p.tenant, id: p.id, roles: p.roles, ...(ip === undefined ? {} : { ipAddress: ip }) }
}

/**
 * The caller of a decision: decisions do not use the caller's IP address (only policy
 * management authorizes by it), so the peer string is not parsed on this hot path.
 */
function deciderOf(ctx: CallContext): Caller {
  const p = ctx.principal
  return { tenant: p.tenant, id: p.id, roles: p.roles }
}

function checkBatch(n: number): void {
  if (n === 0) throw new M2msecError('ERR_INVALID_ARGUMENT', 'items must not be empty', { field: 'items' })
  if (n > LIMITS.batchItems) {
    throw new M2msecError('ERR_PAYLOAD_TOO_LARGE', `at most ${LIMITS.batchItems} items per batch`, { field: 'items' })
  }
}

/**
 * Runs one batch item. User errors become a per-item google.rpc.Status; anything else (a bug,
 * the audit log down) fails the whole call.
 */
async function item<T>(
  run: () => Promise<T>,
): Promise<{ $case: 'result'; value: T } | { $case: 'error'; value: Status }> {
  try {
    return { $case: 'result', value: await run() }
  } catch (err) {
    if (!isM2msecError(err) || err.status === 'INTERNAL' || err.status === 'UNAVAILABLE') throw err
    return { $case: 'error', value: toRpcStatus(err) }
  }
}

/**
 * @example
 * ```ts
 * server.addUnaryService(AuthorizationService, createAuthzGrpcService(ops))
 * ```
 */
export function createAuthzGrpcService(ops: AuthzOperations): AuthzHandlers {
  return {
    async putPolicy(r, ctx) {
      const expectedRevision = revisionFromProto(r.expectedRevision)
      const out = await ops.putPolicy(callerOf(ctx), {
        policy: policyFromProto(r.policy),
        ...(expectedRevision === undefined ? {} : { expectedRevision }),
      })
      return { policy: policyToProto(out.policy), created: out.created }
    },
    async getPolicy(r, ctx) {
      return { policy: policyToProto(await ops.getPolicy(callerOf(ctx), r.policyId)) }
    },
    async deletePolicy(r, ctx) {
      await ops.deletePolicy(callerOf(ctx), r.policyId, revisionFromProto(r.expectedRevision))
      return {}
    },
    async listPolicies(r, ctx) {
      const out = await ops.listPolicies(callerOf(ctx), { pageSize: r.pageSize, pageToken: r.pageToken })
      return { policies: out.policies.map(policyToProto), nextPageToken: out.nextPageToken ?? '' }
    },
    async check(r, ctx) {
      return checkResultToProto(await ops.check(deciderOf(ctx), checkFromProto(r)))
    },
    async batchCheck(r, ctx) {
      checkBatch(r.items.length)
      const caller = deciderOf(ctx)
      return {
        results: await Promise.all(
          r.items.map(async (i) => ({
            outcome: await item(async () => checkResultToProto(await ops.check(caller, checkFromProto(i)))),
          })),
        ),
      }
    },
    async explain(r, ctx) {
      return explainResultToProto(await ops.explain(deciderOf(ctx), checkFromProto(r.check)))
    },
    async issueToken(r, ctx) {
      return issueTokenResultToProto(await ops.issueToken(callerOf(ctx), issueTokenFromProto(r)))
    },
  }
}
