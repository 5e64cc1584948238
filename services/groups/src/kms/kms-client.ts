/**
 * The GroupKms port over the KMS gRPC APIs (GroupKeys for trees, envelopes, authentication
 * and broadcast sealing; KeyManagement for the broadcast sender key). One channel serves every
 * tenant: with the platform identity `m2msec://_platform/groups` (mTLS, `OU=role:service`) each
 * call names its tenant in the `m2msec-tenant` header and acts as an admin of that tenant.
 */
import { readFileSync } from 'node:fs'
import * as grpc from '@grpc/grpc-js'
import { M2msecError } from '@m2msec/errors'
import {
  ApplyMembershipChangeRequest,
  AuthenticateGroupRequest,
  CreateGroupTreeRequest,
  CreateKeyRequest,
  DeleteGroupTreeRequest,
  GetMemberEnvelopesRequest,
  GroupKeysClient,
  GroupKeysService,
  KeyAlgorithm,
  KeyManagementClient,
  KeyManagementService,
  KeyState,
  SealBroadcastRequest,
  SetKeyStateRequest,
  SignRequest,
  type KeyEnvelope,
} from '@m2msec/proto/kms/v1'
import { promiseClient, createTenantCaller } from '@m2msec/runtime'
import type { Envelope } from '../domain/model.ts'
import type { GroupKms } from '../domain/ports.ts'

/** How the groups service reaches the KMS (the `kms` config section). */
export interface KmsClientOptions {
  readonly target: string
  readonly tls?: {
    readonly caFile: string
    readonly certFile?: string | undefined
    readonly keyFile?: string | undefined
    readonly serverName?: string | undefined
  }
  /** DEVELOPMENT: bearer token sent on every call. */
  readonly token?: string
  readonly timeoutMs: number
}

/** A GroupKms that owns its channels. */
export interface KmsClient extends GroupKms {
  close(): void
}

function credentials(opts: KmsClientOptions): grpc.ChannelCredentials {
  if (opts.tls === undefined) return grpc.credentials.createInsecure()
  const read = (f: string | undefined) => (f === undefined ? null : readFileSync(f))
  return grpc.credentials.createSsl(read(opts.tls.caFile), read(opts.tls.keyFile), read(opts.tls.certFile))
}

function envelopes(list: readonly KeyEnvelope[]): Envelope[] {
  return list.map((e) => ({ jwe: e.jwe, wrappingKid: e.wrappingKid, wrappedKid: e.wrappedKid, groupKey: e.groupKey }))
}

/**
 * @example
 * ```ts
 * const kms = createKmsClient({ target: 'kms:7001', tls: { caFile, certFile, keyFile }, timeoutMs: 10_000 })
 * await kms.createTree('acme', 'meters', 2)
 * ```
 */
export function createKmsClient(opts: KmsClientOptions): KmsClient {
  const channelOptions: grpc.ClientOptions = {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
    ...(opts.tls?.serverName === undefined ? {} : { 'grpc.ssl_target_name_override': opts.tls.serverName }),
  }
  const creds = credentials(opts)
  const rawGroups = new GroupKeysClient(opts.target, creds, channelOptions)
  const rawKeys = new KeyManagementClient(opts.target, creds, channelOptions)
  const groups = promiseClient(GroupKeysService, rawGroups)
  const keys = promiseClient(KeyManagementService, rawKeys)

  const call = createTenantCaller({ token: opts.token, timeoutMs: opts.timeoutMs })
  const at = (ms: number) => new Date(ms)

  return {
    async createTree(tenant, groupId, arity) {
      await call(tenant, (o) => groups.createGroupTree(CreateGroupTreeRequest.fromPartial({ groupId, arity }), o))
    },
    async deleteTree(tenant, groupId) {
      await call(tenant, (o) => groups.deleteGroupTree(DeleteGroupTreeRequest.fromPartial({ groupId }), o))
    },
    async applyChange(tenant, groupId, expectedEpoch, joins, leaves) {
      const res = await call(tenant, (o) =>
        groups.applyMembershipChange(
          ApplyMembershipChangeRequest.fromPartial({ groupId, expectedEpoch, joins: [...joins], leaves: [...leaves] }),
          o,
        ),
      )
      return { epoch: res.tree?.epoch ?? 0, envelopes: envelopes(res.envelopes) }
    },
    async memberEnvelopes(tenant, groupId, memberId) {
      const res = await call(tenant, (o) =>
        groups.getMemberEnvelopes(GetMemberEnvelopesRequest.fromPartial({ groupId, memberId }), o),
      )
      return { epoch: res.epoch, envelopes: envelopes(res.envelopes) }
    },
    async authenticate(tenant, req) {
      const challenge = (c: { challengeId: string; challenge: Uint8Array; expiresAt: number }) => ({
        challengeId: c.challengeId,
        challenge: Buffer.from(c.challenge),
        expiresAt: at(c.expiresAt),
      })
      const res = await call(tenant, (o) =>
        groups.authenticateGroup(
          AuthenticateGroupRequest.fromPartial({
            groupId: req.groupId,
            agent: req.agent,
            challenge: challenge(req.challenge),
            ...(req.next === undefined ? {} : { nextChallenge: challenge(req.next) }),
            answer: {
              agentId: req.answer.agentId,
              members: req.answer.members.map((m) => ({ memberId: m.memberId, nonce: Buffer.from(m.nonce) })),
              aggregate: Buffer.from(req.answer.aggregate),
              proof: Buffer.from(req.answer.proof),
            },
            subsetAnswers: req.subsetAnswers.map((a) => ({
              round: a.round,
              values: a.values.map((v) => Buffer.from(v)),
              proof: Buffer.from(a.proof),
            })),
            fanout: req.fanout,
          }),
          o,
        ),
      )
      const outcome = res.outcome
      if (outcome?.$case === 'query') {
        return {
          kind: 'query',
          round: outcome.value.round,
          ranges: outcome.value.ranges.map((r) => [r.start, r.end] as const),
        }
      }
      if (outcome?.$case === 'verdict') {
        const v = outcome.value
        return {
          kind: 'verdict',
          rejected: v.rejected,
          proof: new Uint8Array(v.proof),
          confirmations: v.confirmations.map((c) => ({ memberId: c.memberId, tag: new Uint8Array(c.tag) })),
          rounds: v.rounds,
        }
      }
      throw new M2msecError('ERR_INTERNAL', 'the KMS answered without an outcome')
    },
    async createSenderKey(tenant, groupId) {
      const res = await call(tenant, (o) =>
        keys.createKey(
          CreateKeyRequest.fromPartial({
            keySpec: {
              algorithm: KeyAlgorithm.KEY_ALGORITHM_EC_P256_SIGN,
              purpose: 'm2msec groups broadcast sender',
              labels: { owner: 'm2msec-groups', group: groupId.slice(0, 200) },
            },
          }),
          o,
        ),
      )
      const key = res.key
      const jwk = key?.versions.find((v) => v.version === key.primaryVersion)?.publicJwk
      if (key === undefined || jwk === undefined || jwk === '') {
        throw new M2msecError('ERR_INTERNAL', 'the KMS answered without a public key')
      }
      return { keyId: key.id, publicJwk: jwk }
    },
    async retireSenderKey(tenant, keyId) {
      await call(tenant, (o) =>
        keys.setKeyState(SetKeyStateRequest.fromPartial({ keyId, state: KeyState.KEY_STATE_DESTRUCTION_SCHEDULED }), o),
      )
    },
    async sign(tenant, keyId, message) {
      const res = await call(tenant, (o) =>
        keys.sign(SignRequest.fromPartial({ keyId, message: Buffer.from(message) }), o),
      )
      return new Uint8Array(res.signature)
    },
    async sealBroadcast(tenant, groupId, jws) {
      const res = await call(tenant, (o) => groups.sealBroadcast(SealBroadcastRequest.fromPartial({ groupId, jws }), o))
      return { jwe: res.jwe, epoch: res.epoch }
    },
    close() {
      rawGroups.close()
      rawKeys.close()
    },
  }
}
