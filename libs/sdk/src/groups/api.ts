/**
 * A promise-based view of the groups gRPC API for the SDK roles. Errors are the gRPC
 * `ServiceError`s of @grpc/grpc-js (the m2msec reason is in their `google.rpc.ErrorInfo`).
 */
import * as grpc from '@grpc/grpc-js'
import {
  GetEnvelopesRequest,
  GetGroupRequest,
  GetRekeyEnvelopesRequest,
  IssueChallengeRequest,
  SubmitAggregateRequest,
  SubmitSubsetAnswerRequest,
  type AuthenticationStep,
  type Challenge,
  type GetEnvelopesResponse,
  type Group,
  type GroupsClient,
} from '@m2msec/proto/groups/v1'
import type { AggregateAnswer, SubsetAnswerData } from '@m2msec/proto/kms/v1'

/** The calls members and agents make. */
export interface GroupsApi {
  getGroup(groupId: string): Promise<Group>
  getEnvelopes(groupId: string, memberId?: string): Promise<GetEnvelopesResponse>
  getRekeyEnvelopes(groupId: string, epoch?: number): Promise<GetEnvelopesResponse>
  issueChallenge(groupId: string): Promise<Challenge>
  submitAggregate(groupId: string, challengeId: string, answer: AggregateAnswer): Promise<AuthenticationStep>
  submitSubsetAnswer(groupId: string, challengeId: string, answer: SubsetAnswerData): Promise<AuthenticationStep>
}

/** Options of {@link groupsApi}. */
export interface GroupsApiOptions {
  /** Metadata of every call (e.g. `authorization: Bearer <token>`); default none. */
  readonly metadata?: () => grpc.Metadata
  /** Deadline of each call, ms (default 30 s). */
  readonly timeoutMs?: number
}

type Unary<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: Partial<grpc.CallOptions>,
  callback: (err: grpc.ServiceError | null, res: Res) => void,
) => grpc.ClientUnaryCall

/**
 * @example
 * ```ts
 * const api = groupsApi(new GroupsClient(target, credentials))
 * const { envelopes } = await api.getEnvelopes('meters')
 * ```
 */
export function groupsApi(client: GroupsClient, opts: GroupsApiOptions = {}): GroupsApi {
  const call = <Req, Res>(fn: Unary<Req, Res>, request: Req): Promise<Res> =>
    new Promise((resolve, reject) => {
      const metadata = opts.metadata?.() ?? new grpc.Metadata()
      fn.call(client, request, metadata, { deadline: new Date(Date.now() + (opts.timeoutMs ?? 30_000)) }, (err, res) =>
        err ? reject(err) : resolve(res),
      )
    })
  return {
    async getGroup(groupId) {
      const res = await call(
        client.getGroup as Unary<GetGroupRequest, { group?: Group }>,
        GetGroupRequest.fromPartial({ groupId }),
      )
      if (res.group === undefined) throw new Error('the groups service answered without a group')
      return res.group
    },
    getEnvelopes: (groupId, memberId = '') =>
      call(
        client.getEnvelopes as Unary<GetEnvelopesRequest, GetEnvelopesResponse>,
        GetEnvelopesRequest.fromPartial({ groupId, memberId }),
      ),
    getRekeyEnvelopes: (groupId, epoch = 0) =>
      call(
        client.getRekeyEnvelopes as Unary<GetRekeyEnvelopesRequest, GetEnvelopesResponse>,
        GetRekeyEnvelopesRequest.fromPartial({ groupId, epoch }),
      ),
    async issueChallenge(groupId) {
      const res = await call(
        client.issueChallenge as Unary<IssueChallengeRequest, { challenge?: Challenge }>,
        IssueChallengeRequest.fromPartial({ groupId }),
      )
      if (res.challenge === undefined) throw new Error('the groups service answered without a challenge')
      return res.challenge
    },
    async submitAggregate(groupId, challengeId, answer) {
      const res = await call(
        client.submitAggregate as Unary<SubmitAggregateRequest, { step?: AuthenticationStep }>,
        SubmitAggregateRequest.fromPartial({ groupId, challengeId, answer }),
      )
      if (res.step === undefined) throw new Error('the groups service answered without a step')
      return res.step
    },
    async submitSubsetAnswer(groupId, challengeId, answer) {
      const res = await call(
        client.submitSubsetAnswer as Unary<SubmitSubsetAnswerRequest, { step?: AuthenticationStep }>,
        SubmitSubsetAnswerRequest.fromPartial({ groupId, challengeId, answer }),
      )
      if (res.step === undefined) throw new Error('the groups service answered without a step')
      return res.step
    },
  }
}
