/**
 * The GroupKeys gRPC service (proto/m2msec/kms/v1/group_keys.proto): decode, call the group
 * key operation, encode. Validation, authorization and audit live in `operations.ts`.
 */
import { M2msecError } from '@m2msec/errors'
import type { GroupChallenge } from '@m2msec/groupkeys'
import {
  AuthenticateGroupResponse,
  GroupTree,
  KeyEnvelope,
  type GroupChallengeData,
  type GroupKeysService,
} from '@m2msec/proto/kms/v1'
import type { UnaryHandlers } from '@m2msec/runtime'
import type { EnvelopeOut, GroupKeyOperations, GroupTreeInfo } from './operations.ts'

/** Handlers of the GroupKeys service. */
export type GroupKeysHandlers = UnaryHandlers<typeof GroupKeysService>

function treeToProto(t: GroupTreeInfo): GroupTree {
  return GroupTree.fromPartial({
    groupId: t.groupId,
    arity: t.arity,
    height: t.height,
    epoch: t.epoch,
    memberCount: t.memberCount,
    groupKeyKid: t.groupKeyKid,
    createdAt: new Date(t.createdAt),
  })
}

function envelopesToProto(list: readonly EnvelopeOut[]): KeyEnvelope[] {
  return list.map((e) => KeyEnvelope.fromPartial(e))
}

function challengeFromProto(groupId: string, c: GroupChallengeData | undefined, field: string): GroupChallenge {
  if (c === undefined || c.expiresAt === undefined) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', `${field} is required`, { field })
  }
  if (c.challenge.length !== 32) throw new M2msecError('ERR_INVALID_ARGUMENT', `${field} must be 32 bytes`, { field })
  return {
    challengeId: c.challengeId,
    groupId,
    challenge: new Uint8Array(c.challenge),
    expiresAt: c.expiresAt.getTime(),
  }
}

/**
 * @example
 * ```ts
 * server.addUnaryService(GroupKeysService, createGroupKeysGrpcService(groupKeyOps))
 * ```
 */
export function createGroupKeysGrpcService(ops: GroupKeyOperations): GroupKeysHandlers {
  return {
    async createGroupTree(r, { principal }) {
      return { tree: treeToProto(await ops.createTree(principal, { groupId: r.groupId, arity: r.arity })) }
    },
    async getGroupTree(r, { principal }) {
      return { tree: treeToProto(await ops.getTree(principal, r.groupId)) }
    },
    async deleteGroupTree(r, { principal }) {
      await ops.deleteTree(principal, r.groupId)
      return {}
    },
    async applyMembershipChange(r, { principal }) {
      const out = await ops.applyChange(principal, {
        groupId: r.groupId,
        expectedEpoch: r.expectedEpoch,
        joins: r.joins.map((j) => ({ memberId: j.memberId, credentialKeyId: j.credentialKeyId })),
        leaves: r.leaves,
      })
      return { tree: treeToProto(out.tree), envelopes: envelopesToProto(out.envelopes) }
    },
    async getMemberEnvelopes(r, { principal }) {
      const out = await ops.memberEnvelopes(principal, { groupId: r.groupId, memberId: r.memberId })
      return { epoch: out.epoch, envelopes: envelopesToProto(out.envelopes) }
    },
    async authenticateGroup(r, { principal }) {
      if (r.agent === undefined || r.answer === undefined) {
        throw new M2msecError('ERR_INVALID_ARGUMENT', 'agent and answer are required', { field: 'answer' })
      }
      const out = await ops.authenticate(principal, {
        groupId: r.groupId,
        agent: { memberId: r.agent.memberId, credentialKeyId: r.agent.credentialKeyId },
        challenge: challengeFromProto(r.groupId, r.challenge, 'challenge'),
        ...(r.nextChallenge === undefined
          ? {}
          : { next: challengeFromProto(r.groupId, r.nextChallenge, 'next_challenge') }),
        answer: {
          agentId: r.answer.agentId,
          members: r.answer.members.map((m) => ({ memberId: m.memberId, nonce: new Uint8Array(m.nonce) })),
          aggregate: new Uint8Array(r.answer.aggregate),
          proof: new Uint8Array(r.answer.proof),
        },
        subsetAnswers: r.subsetAnswers.map((a) => ({
          round: a.round,
          values: a.values.map((v) => new Uint8Array(v)),
          proof: new Uint8Array(a.proof),
        })),
        fanout: r.fanout,
      })
      if (out.kind === 'query') {
        return AuthenticateGroupResponse.fromPartial({
          outcome: {
            $case: 'query',
            value: { round: out.round, ranges: out.ranges.map(([start, end]) => ({ start, end })) },
          },
        })
      }
      return AuthenticateGroupResponse.fromPartial({
        outcome: {
          $case: 'verdict',
          value: {
            rejected: [...out.rejected],
            proof: Buffer.from(out.proof),
            confirmations: out.confirmations.map((c) => ({ memberId: c.memberId, tag: Buffer.from(c.tag) })),
            rounds: out.rounds,
            macComputations: out.macComputations,
          },
        },
      })
    },
    async sealBroadcast(r, { principal }) {
      return ops.sealBroadcast(principal, { groupId: r.groupId, jws: r.jws })
    },
  }
}
