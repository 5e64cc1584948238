/**
 * The Groups gRPC service: decode, call the use case, encode. Authorization and validation
 * live in the domain; authentication, error mapping and tracing in @m2msec/runtime.
 */
import { base64UrlToBytes } from '@m2msec/crypto'
import { M2msecError } from '@m2msec/errors'
import {
  AuthenticationStep,
  Group,
  Membership,
  RekeyPolicy,
  type Challenge,
  type GroupsService,
  type Rekey,
} from '@m2msec/proto/groups/v1'
import { KeyEnvelope } from '@m2msec/proto/kms/v1'
import type { UnaryHandlers } from '@m2msec/runtime'
import type { AuthStep } from '../domain/authentication.ts'
import type { GroupsOperations } from '../domain/index.ts'
import type { ChallengeData, Envelope, GroupRecord, MembershipMode } from '../domain/model.ts'
import type { RekeyInfo } from '../domain/membership.ts'

/** Handlers of the Groups service. */
export type GroupsHandlers = UnaryHandlers<typeof GroupsService>

function groupToProto(g: GroupRecord): Group {
  return Group.fromPartial({
    groupId: g.id,
    description: g.description,
    agentId: g.agentId,
    memberCount: g.members.length,
    epoch: g.epoch,
    rekeyPolicy: RekeyPolicy.REKEY_POLICY_EVERY_CHANGE,
    arity: g.arity,
    broadcastSender: { senderId: g.senderKeyId, publicJwk: g.senderPublicJwk },
    createdAt: new Date(g.createdAt),
    updatedAt: new Date(g.updatedAt),
    membership: g.membership === 'DYNAMIC' ? Membership.MEMBERSHIP_DYNAMIC : Membership.MEMBERSHIP_STATIC,
    joinPolicy: { allow: [...(g.joinAllow ?? [])] },
  })
}

function membershipFromProto(m: Membership): MembershipMode {
  switch (m) {
    case Membership.MEMBERSHIP_UNSPECIFIED:
    case Membership.MEMBERSHIP_STATIC:
      return 'STATIC'
    case Membership.MEMBERSHIP_DYNAMIC:
      return 'DYNAMIC'
    default:
      throw new M2msecError('ERR_INVALID_ARGUMENT', 'unknown membership mode', { field: 'membership' })
  }
}

function rekeyToProto(r: RekeyInfo): Rekey {
  return { epoch: r.epoch, joined: [...r.joined], left: [...r.left], envelopeCount: r.envelopeCount }
}

function envelopesToProto(list: readonly Envelope[]): KeyEnvelope[] {
  return list.map((e) => KeyEnvelope.fromPartial(e))
}

function challengeToProto(c: ChallengeData): Challenge {
  return {
    groupId: c.groupId,
    challengeId: c.challengeId,
    challenge: Buffer.from(base64UrlToBytes(c.challenge)),
    expiresAt: new Date(c.expiresAt),
  }
}

function stepToProto(s: AuthStep): AuthenticationStep {
  if (s.kind === 'query') {
    return AuthenticationStep.fromPartial({
      step: {
        $case: 'query',
        value: { challengeId: s.challengeId, round: s.round, ranges: s.ranges.map(([start, end]) => ({ start, end })) },
      },
    })
  }
  return AuthenticationStep.fromPartial({
    step: {
      $case: 'verdict',
      value: {
        challengeId: s.challengeId,
        rejected: [...s.rejected],
        rejectedMemberIds: [...s.rejectedMemberIds],
        next: challengeToProto(s.next),
        proof: Buffer.from(s.proof),
        confirmations: s.confirmations.map((c) => ({ memberId: c.memberId, tag: Buffer.from(c.tag) })),
        rounds: s.rounds,
      },
    },
  })
}

function required<T>(value: T | undefined, field: string): T {
  if (value === undefined) throw new M2msecError('ERR_INVALID_ARGUMENT', `${field} is required`, { field })
  return value
}

const spec = (m: { memberId: string; credentialKeyId: string }) =>
  m.credentialKeyId === '' ? { memberId: m.memberId } : { memberId: m.memberId, credentialKeyId: m.credentialKeyId }

/**
 * @example
 * ```ts
 * server.addUnaryService(GroupsService, createGroupsGrpcService(ops))
 * ```
 */
export function createGroupsGrpcService(ops: GroupsOperations): GroupsHandlers {
  return {
    async createGroup(r, { principal }) {
      const out = await ops.createGroup(principal, {
        groupId: r.groupId,
        description: r.description,
        agent: spec(required(r.agent, 'agent')),
        members: r.members.map(spec),
        arity: r.arity,
        membership: membershipFromProto(r.membership),
        joinAllow: r.joinPolicy?.allow ?? [],
      })
      return {
        group: groupToProto(out.group),
        ...(out.rekey === undefined ? {} : { rekey: rekeyToProto(out.rekey) }),
      }
    },
    async getGroup(r, { principal }) {
      return { group: groupToProto(await ops.getGroup(principal, r.groupId)) }
    },
    async listGroups(r, { principal }) {
      const out = await ops.listGroups(principal, { pageSize: r.pageSize, pageToken: r.pageToken })
      return { groups: out.groups.map(groupToProto), nextPageToken: out.nextPageToken }
    },
    async listMembers(r, { principal }) {
      return ops.listMembers(principal, { groupId: r.groupId, pageSize: r.pageSize, pageToken: r.pageToken })
    },
    async deleteGroup(r, { principal }) {
      await ops.deleteGroup(principal, r.groupId)
      return {}
    },
    async addMembers(r, { principal }) {
      const out = await ops.addMembers(principal, { groupId: r.groupId, members: r.members.map(spec) })
      return { group: groupToProto(out.group), rekey: rekeyToProto(out.rekey) }
    },
    async removeMembers(r, { principal }) {
      const out = await ops.removeMembers(principal, { groupId: r.groupId, memberIds: r.memberIds })
      return { group: groupToProto(out.group), rekey: rekeyToProto(out.rekey) }
    },
    async joinGroup(r, { principal }) {
      const out = await ops.joinGroup(principal, { groupId: r.groupId, credentialKeyId: r.credentialKeyId })
      return { group: groupToProto(out.group), rekey: rekeyToProto(out.rekey) }
    },
    async leaveGroup(r, { principal }) {
      const out = await ops.leaveGroup(principal, { groupId: r.groupId })
      return { group: groupToProto(out.group), rekey: rekeyToProto(out.rekey) }
    },
    async getRekeyEnvelopes(r, { principal }) {
      const out = await ops.getRekeyEnvelopes(principal, { groupId: r.groupId, epoch: r.epoch })
      return { epoch: out.epoch, envelopes: envelopesToProto(out.envelopes) }
    },
    async getEnvelopes(r, { principal }) {
      const out = await ops.getEnvelopes(principal, { groupId: r.groupId, memberId: r.memberId })
      return { epoch: out.epoch, envelopes: envelopesToProto(out.envelopes) }
    },
    async issueChallenge(r, { principal }) {
      return { challenge: challengeToProto(await ops.issueChallenge(principal, r.groupId)) }
    },
    async submitAggregate(r, { principal }) {
      const a = required(r.answer, 'answer')
      const step = await ops.submitAggregate(principal, {
        groupId: r.groupId,
        challengeId: r.challengeId,
        answer: {
          agentId: a.agentId,
          members: a.members.map((m) => ({ memberId: m.memberId, nonce: new Uint8Array(m.nonce) })),
          aggregate: new Uint8Array(a.aggregate),
          proof: new Uint8Array(a.proof),
        },
      })
      return { step: stepToProto(step) }
    },
    async submitSubsetAnswer(r, { principal }) {
      const a = required(r.answer, 'answer')
      const step = await ops.submitSubsetAnswer(principal, {
        groupId: r.groupId,
        challengeId: r.challengeId,
        answer: { round: a.round, values: a.values.map((v) => new Uint8Array(v)), proof: new Uint8Array(a.proof) },
      })
      return { step: stepToProto(step) }
    },
    async sendBroadcast(r, { principal }) {
      return ops.sendBroadcast(principal, { groupId: r.groupId, payload: new Uint8Array(r.payload) })
    },
  }
}
