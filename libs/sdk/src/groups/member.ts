/**
 * The member role (a device of the group): opens the key envelopes relayed to it with its own
 * credential, answers group challenges, checks its session-key confirmation, and opens
 * broadcast commands with replay rejection (docs/groups-protocol.md §5.4, §6.2, §6.6, §7.2).
 */
import { randomBytes } from 'node:crypto'
import { importJWK, type JWK } from 'jose'
import {
  answerChallenge,
  createBroadcastReceiver,
  createMemberKeyRing,
  deriveGroupSessionKey,
  type AcceptResult,
  type Es256Key,
  type GroupChallenge,
  type MemberAnswer,
  type OpenedBroadcast,
} from '@m2msec/groupkeys'
import type { GroupsApi } from './api.ts'
import { checkSessionConfirmTag, memberAuthKey, memberWrapKey, sessionConfirmTag } from './keys.ts'

/** Options of {@link createGroupMember}. */
export interface GroupMemberOptions {
  readonly groupId: string
  readonly memberId: string
  /** The member's own credential (the bytes the platform holds as its KMS HMAC key). */
  readonly credential: Uint8Array
  /** Verification key of a broadcast sender (see {@link senderKeyFromJwk}), or undefined. */
  readonly senderKey: (senderId: string) => Es256Key | undefined | Promise<Es256Key | undefined>
  readonly now?: () => number
  readonly random?: (n: number) => Uint8Array
  /** Anti-replay window per sender (default 64). */
  readonly windowSize?: number
  /** Refuse commands whose signature time is further than this from now (default: no limit). */
  readonly maxAgeMs?: number
}

/** A member of one group. */
export interface GroupMember {
  readonly memberId: string
  /** Opens the envelopes it can (relayed by the agent, any order); installs a newer group key. */
  accept(envelopes: readonly string[]): Promise<AcceptResult>
  /** Fetches its own current path from the service (after missed epochs) and accepts it. */
  refresh(api: GroupsApi): Promise<AcceptResult>
  /** The epoch of the newest group key held. */
  epoch(): number | undefined
  /** Answers a challenge (to the agent); remembers the nonce for {@link GroupMember.confirmSession}. */
  answer(challenge: GroupChallenge): MemberAnswer
  /**
   * Checks the server's confirmation tag for the last answer to `challengeId` and returns the
   * session key when it matches (undefined otherwise, or when no answer is pending).
   */
  confirmSession(challengeId: string, tag: Uint8Array): Uint8Array | undefined
  /** Decrypts and verifies a command; ERR_REPLAY for a replay, a stale epoch or an old number. */
  openBroadcast(jwe: string): Promise<OpenedBroadcast>
}

/**
 * A sender verification key from the group's `broadcast_sender.public_jwk`.
 *
 * @example
 * ```ts
 * const key = await senderKeyFromJwk(group.broadcastSender!.publicJwk)
 * ```
 */
export async function senderKeyFromJwk(publicJwk: string): Promise<Es256Key> {
  const jwk = JSON.parse(publicJwk) as JWK
  return (await importJWK({ ...jwk, alg: 'ES256' }, 'ES256')) as Es256Key
}

/**
 * @example
 * ```ts
 * const member = createGroupMember({ groupId: 'doors', memberId: 'door-7', credential, senderKey: () => opsKey })
 * await member.accept(relayedEnvelopes)
 * const { payload } = await member.openBroadcast(jwe)
 * ```
 */
export function createGroupMember(opts: GroupMemberOptions): GroupMember {
  const now = opts.now ?? Date.now
  const random = opts.random ?? ((n: number) => new Uint8Array(randomBytes(n)))
  const authKey = memberAuthKey(opts.credential, opts.groupId)
  const ring = createMemberKeyRing({
    groupId: opts.groupId,
    memberId: opts.memberId,
    wrapKeyFor: (e) => memberWrapKey(opts.credential, opts.groupId, e),
  })
  const receiver = createBroadcastReceiver({
    groupId: opts.groupId,
    senderKey: opts.senderKey,
    now,
    ...(opts.windowSize === undefined ? {} : { windowSize: opts.windowSize }),
    ...(opts.maxAgeMs === undefined ? {} : { maxAgeMs: opts.maxAgeMs }),
  })
  const pending = new Map<string, { challenge: GroupChallenge; nonce: Uint8Array }>()

  const accept = async (envelopes: readonly string[]): Promise<AcceptResult> => {
    const result = await ring.accept(envelopes)
    const gk = ring.groupKey()
    if (gk !== undefined) receiver.setGroupKey({ epoch: gk.epoch, key: gk.key })
    return result
  }

  return {
    memberId: opts.memberId,
    accept,
    async refresh(api) {
      const res = await api.getEnvelopes(opts.groupId, opts.memberId)
      return accept(res.envelopes.map((e) => e.jwe))
    },
    epoch: () => ring.groupKey()?.epoch,
    answer(challenge) {
      const a = answerChallenge(challenge, opts.memberId, authKey, random)
      pending.clear()
      pending.set(challenge.challengeId, { challenge, nonce: a.nonce })
      return a
    },
    confirmSession(challengeId, tag) {
      const p = pending.get(challengeId)
      if (p === undefined) return undefined
      const sk = deriveGroupSessionKey(authKey, p.challenge, opts.memberId, p.nonce)
      const expected = sessionConfirmTag(sk, p.challenge.challenge, opts.groupId, opts.memberId, p.nonce)
      if (!checkSessionConfirmTag(expected, tag)) return undefined
      pending.delete(challengeId)
      return sk
    },
    openBroadcast: (jwe) => receiver.open(jwe),
  }
}
