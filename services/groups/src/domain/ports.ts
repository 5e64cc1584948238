/**
 * The ports the groups domain needs; adapters live in `store/`, `kms/` and `events/`, test
 * fakes in `test/`.
 */
import type { AuthSession, Envelope, GroupRecord } from './model.ts'

/** A value with the store revision it was read at. */
export interface Versioned<T> {
  readonly value: T
  readonly revision: number
}

/**
 * Group records. `create` throws ERR_ALREADY_EXISTS for a taken id; `update` throws
 * ERR_REVISION_CONFLICT when the record changed since `revision`; `list` orders by id.
 */
export interface GroupStore {
  get(tenant: string, groupId: string): Promise<Versioned<GroupRecord> | undefined>
  create(group: GroupRecord): Promise<number>
  update(group: GroupRecord, revision: number): Promise<number>
  delete(tenant: string, groupId: string): Promise<void>
  list(tenant: string, page: { limit: number; after?: string }): Promise<{ items: GroupRecord[]; next?: string }>
}

/** Envelopes of each rekey, in chunks (one KV value each). */
export interface RekeyStore {
  put(tenant: string, groupId: string, epoch: number, chunk: number, envelopes: readonly Envelope[]): Promise<void>
  get(tenant: string, groupId: string, epoch: number, chunk: number): Promise<readonly Envelope[] | undefined>
  deleteEpoch(tenant: string, groupId: string, epoch: number, chunks: number): Promise<void>
}

/** Group authentication sessions (expire on their own). Same revision rules as GroupStore. */
export interface SessionStore {
  get(tenant: string, groupId: string, challengeId: string): Promise<Versioned<AuthSession> | undefined>
  create(session: AuthSession): Promise<number>
  update(session: AuthSession, revision: number): Promise<number>
}

/** A member and the KMS key of its credential. */
export interface MemberCredential {
  readonly memberId: string
  readonly credentialKeyId: string
}

/** One step of a group authentication as the KMS answers it. */
export type KmsAuthStep =
  | { readonly kind: 'query'; readonly round: number; readonly ranges: readonly (readonly [number, number])[] }
  | {
      readonly kind: 'verdict'
      readonly rejected: readonly number[]
      readonly proof: Uint8Array
      readonly confirmations: readonly { readonly memberId: string; readonly tag: Uint8Array }[]
      readonly rounds: number
    }

/** The KMS as the groups service uses it (always on behalf of `tenant`). */
export interface GroupKms {
  createTree(tenant: string, groupId: string, arity: number): Promise<void>
  deleteTree(tenant: string, groupId: string): Promise<void>
  applyChange(
    tenant: string,
    groupId: string,
    expectedEpoch: number,
    joins: readonly MemberCredential[],
    leaves: readonly string[],
  ): Promise<{ epoch: number; envelopes: Envelope[] }>
  memberEnvelopes(tenant: string, groupId: string, memberId: string): Promise<{ epoch: number; envelopes: Envelope[] }>
  authenticate(
    tenant: string,
    req: {
      groupId: string
      agent: MemberCredential
      challenge: { challengeId: string; challenge: Uint8Array; expiresAt: number }
      next?: { challengeId: string; challenge: Uint8Array; expiresAt: number }
      answer: {
        agentId: string
        members: readonly { memberId: string; nonce: Uint8Array }[]
        aggregate: Uint8Array
        proof: Uint8Array
      }
      subsetAnswers: readonly { round: number; values: readonly Uint8Array[]; proof: Uint8Array }[]
      fanout: number
    },
  ): Promise<KmsAuthStep>
  /** A new EC_P256_SIGN key for the group's broadcasts: its id and public JWK. */
  createSenderKey(tenant: string, groupId: string): Promise<{ keyId: string; publicJwk: string }>
  /** Schedules the destruction of a sender key (group deleted). */
  retireSenderKey(tenant: string, keyId: string): Promise<void>
  /** ES256 over `message` (IEEE P1363 r||s, as JWS wants it). */
  sign(tenant: string, keyId: string, message: Uint8Array): Promise<Uint8Array>
  sealBroadcast(tenant: string, groupId: string, jws: string): Promise<{ jwe: string; epoch: number }>
}

/** Finds the KMS key of an entity's active symmetric credential (authn). */
export interface CredentialDirectory {
  /** ERR_FAILED_PRECONDITION when the entity has none. */
  credentialKeyOf(tenant: string, entityId: string): Promise<string>
}

/** Bus events, best effort after the write. */
export interface GroupEvents {
  publish(event: GroupEvent): Promise<void>
}
export type GroupEvent =
  | { readonly type: 'group.created'; readonly tenant: string; readonly groupId: string; readonly epoch: number }
  | { readonly type: 'group.deleted'; readonly tenant: string; readonly groupId: string }
  | {
      readonly type: 'membership.changed'
      readonly tenant: string
      readonly groupId: string
      readonly epoch: number
      readonly joined: readonly string[]
      readonly left: readonly string[]
      readonly envelopeCount: number
      /** The caller who made the change (audit). */
      readonly actor: string
      /** manage (AddMembers, RemoveMembers, CreateGroup), join (JoinGroup) or leave (LeaveGroup). */
      readonly via: 'manage' | 'join' | 'leave'
    }

/** Everything the operations use. */
export interface GroupsDeps {
  readonly groups: GroupStore
  readonly rekeys: RekeyStore
  readonly sessions: SessionStore
  readonly kms: GroupKms
  readonly directory?: CredentialDirectory
  readonly events: GroupEvents
  readonly clock: { now(): Date }
  readonly random: { bytes(n: number): Uint8Array }
  readonly settings: {
    readonly maxMembers: number
    readonly challengeTtlMs: number
    readonly fanout: number
    readonly keptRekeys: number
  }
  readonly onBackgroundError?: (err: unknown) => void
}
