/**
 * The groups domain model: a tenant-scoped group with static or dynamic membership, its agent, its
 * broadcast sender key, and the state of group authentications in progress. Records hold ids
 * and public data only: every key lives in the KMS.
 */

/** A group as stored. */
export interface GroupRecord {
  readonly tenant: string
  readonly id: string
  readonly description: string
  readonly agentId: string
  /** KMS HMAC key of the agent's credential (its proofs in group authentication). */
  readonly agentCredentialKeyId: string
  readonly arity: number
  readonly rekeyPolicy: 'EVERY_CHANGE'
  /** Who changes membership (absent in records written before modes existed: STATIC). */
  readonly membership?: MembershipMode
  /** Entity id patterns allowed to join by themselves (exact, or `prefix*`); dynamic groups only. */
  readonly joinAllow?: readonly string[]
  /** Current epoch (the KMS tree's). */
  readonly epoch: number
  /** Member ids in join order. */
  readonly members: readonly string[]
  /** KMS EC_P256_SIGN key that signs the group's broadcasts; its id is the sender id. */
  readonly senderKeyId: string
  readonly senderPublicJwk: string
  /** Next broadcast sequence number (never reused). */
  readonly nextSeq: number
  /** Epochs whose rekey envelopes are kept, oldest first. */
  readonly rekeys: readonly { readonly epoch: number; readonly chunks: number; readonly count: number }[]
  readonly createdAt: string
  readonly updatedAt: string
}

/**
 * STATIC: only tenant admins add and remove members. DYNAMIC: also self-join (join policy),
 * self-leave, and the agent adds and removes members.
 */
export type MembershipMode = 'STATIC' | 'DYNAMIC'

/** One key envelope (JWE) with its key names. */
export interface Envelope {
  readonly jwe: string
  readonly wrappingKid: string
  readonly wrappedKid: string
  readonly groupKey: boolean
}

/** A challenge as handed out. */
export interface ChallengeData {
  readonly groupId: string
  readonly challengeId: string
  /** base64url of the 32 bytes (JSON-safe). */
  readonly challenge: string
  readonly expiresAt: number
}

/** One group authentication, keyed by its challenge id; single use. */
export interface AuthSession {
  readonly tenant: string
  readonly groupId: string
  readonly challenge: ChallengeData
  readonly state: 'issued' | 'answering' | 'done'
  /** The agent's aggregate (ids and base64url nonces, aggregate, proof). */
  readonly answer?: {
    readonly agentId: string
    readonly members: readonly (readonly [string, string])[]
    readonly aggregate: string
    readonly proof: string
  }
  readonly subsetAnswers: readonly {
    readonly round: number
    readonly values: readonly string[]
    readonly proof: string
  }[]
  /** The challenge the verdict hands out (issued with the verdict). */
  readonly next?: ChallengeData
}

/** The authenticated caller (structurally a runtime Principal). */
export interface Caller {
  readonly tenant: string
  readonly id: string
  readonly roles: readonly string[]
}

/** Group ids: what callers may choose. */
export const GROUP_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

/** Limits of the groups API. */
export const LIMITS = {
  changeItems: 2000,
  memberIdLength: 1024,
  descriptionBytes: 256,
  payloadBytes: 32 * 1024,
  envelopesPerChunk: 400,
  pageSize: 1000,
  defaultPageSize: 100,
  joinPatterns: 100,
} as const
