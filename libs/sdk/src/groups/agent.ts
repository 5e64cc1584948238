/**
 * The agent role (the gateway in front of the members): relays key envelopes it cannot open,
 * runs group authentication for its members with one aggregate per challenge (subset queries
 * only after a mismatch), and checks the server's proof on the verdict (§6). Broadcast
 * commands are relayed as they are: the agent cannot read them either.
 */
import { M2msecError } from '@m2msec/errors'
import {
  answerSubsetQuery,
  buildAggregate,
  checkVerdict,
  type GroupChallenge,
  type MemberAnswer,
} from '@m2msec/groupkeys'
import type { Challenge } from '@m2msec/proto/groups/v1'
import type { GroupsApi } from './api.ts'
import { memberAuthKey } from './keys.ts'

/** Options of {@link createGroupAgent}. */
export interface GroupAgentOptions {
  readonly groupId: string
  readonly agentId: string
  /** The agent's own credential (for its proofs). */
  readonly credential: Uint8Array
  readonly api: GroupsApi
}

/** Outcome of one group authentication. */
export interface GroupAuthOutcome {
  readonly challengeId: string
  readonly accepted: readonly string[]
  readonly rejected: readonly string[]
  /** The server's confirmation tag per accepted member, to pass on to that member. */
  readonly confirmations: ReadonlyMap<string, Uint8Array>
  /** Subset query rounds. */
  readonly rounds: number
  /** Agent–service messages of this authentication (the challenge request included when made). */
  readonly messages: number
}

/** The agent of one group. */
export interface GroupAgent {
  /** Every envelope of a rekey (latest by default); pick each member's with {@link envelopesForMember}. */
  rekeyEnvelopes(epoch?: number): Promise<RelayedEnvelope[]>
  /** One member's current path, to relay to that member. */
  envelopesFor(memberId: string): Promise<string[]>
  /**
   * One group authentication: `collect` asks the members for their answers to the challenge
   * (members that do not answer are left out). Throws ERR_MAC_INVALID when the verdict's proof
   * does not verify. The verdict's next challenge is kept for the next call.
   */
  authenticate(collect: (challenge: GroupChallenge) => Promise<readonly MemberAnswer[]>): Promise<GroupAuthOutcome>
}

/** An envelope with the key names the service lists next to it. */
export interface RelayedEnvelope {
  readonly jwe: string
  readonly wrappingKid: string
  readonly wrappedKid: string
}

/**
 * The envelopes of one rekey that concern one member, so the agent does not send every member
 * every envelope of a large rekey (the first distribution of n members has about 2n). When the
 * rekey wrapped something under the member's own key, that envelope and the chain above it
 * (envelopes wrapped under the keys it yields, transitively) are selected; otherwise the
 * member's leaf did not change and it needs envelopes under node keys it already holds, which
 * the agent cannot tell apart: all envelopes are selected (a single join or leave has at most
 * 2·log2 n).
 *
 * @example
 * ```ts
 * const mine = envelopesForMember(rekey.envelopes, 'meter-7') // ~log2 n for the first distribution
 * ```
 */
export function envelopesForMember(envelopes: readonly RelayedEnvelope[], memberId: string): string[] {
  const own = `member:${memberId}#`
  const start = envelopes.filter(
    (e) => e.wrappingKid.startsWith(own) && /^[0-9]+$/.test(e.wrappingKid.slice(own.length)),
  )
  if (start.length === 0) return envelopes.map((e) => e.jwe)
  const byWrapping = new Map<string, RelayedEnvelope[]>()
  for (const e of envelopes) {
    const list = byWrapping.get(e.wrappingKid) ?? []
    list.push(e)
    byWrapping.set(e.wrappingKid, list)
  }
  const out: string[] = []
  const queue = [...start]
  const seen = new Set<RelayedEnvelope>()
  for (let e = queue.shift(); e !== undefined; e = queue.shift()) {
    if (seen.has(e)) continue
    seen.add(e)
    out.push(e.jwe)
    queue.push(...(byWrapping.get(e.wrappedKid) ?? []))
  }
  return out
}

function fromProto(c: Challenge | undefined): GroupChallenge {
  if (c === undefined || c.expiresAt === undefined) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'the service sent no challenge')
  }
  return {
    challengeId: c.challengeId,
    groupId: c.groupId,
    challenge: new Uint8Array(c.challenge),
    expiresAt: c.expiresAt.getTime(),
  }
}

/**
 * @example
 * ```ts
 * const agent = createGroupAgent({ groupId: 'meters', agentId: 'dap-1', credential, api })
 * const outcome = await agent.authenticate(async (ch) => meters.map((m) => m.answer(ch)))
 * ```
 */
export function createGroupAgent(opts: GroupAgentOptions): GroupAgent {
  const authKey = memberAuthKey(opts.credential, opts.groupId)
  let next: GroupChallenge | undefined
  return {
    async rekeyEnvelopes(epoch) {
      return (await opts.api.getRekeyEnvelopes(opts.groupId, epoch)).envelopes.map((e) => ({
        jwe: e.jwe,
        wrappingKid: e.wrappingKid,
        wrappedKid: e.wrappedKid,
      }))
    },
    async envelopesFor(memberId) {
      return (await opts.api.getEnvelopes(opts.groupId, memberId)).envelopes.map((e) => e.jwe)
    },
    async authenticate(collect) {
      let messages = 0
      let challenge = next
      next = undefined
      if (challenge === undefined || challenge.expiresAt <= Date.now()) {
        challenge = fromProto(await opts.api.issueChallenge(opts.groupId))
        messages += 2
      }
      const answers = [...(await collect(challenge))]
      const response = buildAggregate(challenge, opts.agentId, answers, authKey)
      let step = await opts.api.submitAggregate(opts.groupId, challenge.challengeId, {
        agentId: response.agentId,
        members: response.members.map((m) => ({ memberId: m.memberId, nonce: Buffer.from(m.nonce) })),
        aggregate: Buffer.from(response.aggregate),
        proof: Buffer.from(response.proof),
      })
      messages += 2
      let rounds = 0
      while (step.step?.$case === 'query') {
        const q = step.step.value
        rounds++
        const a = answerSubsetQuery(
          challenge,
          opts.agentId,
          answers,
          { challengeId: q.challengeId, round: q.round, ranges: q.ranges.map((r) => [r.start, r.end] as const) },
          authKey,
        )
        step = await opts.api.submitSubsetAnswer(opts.groupId, challenge.challengeId, {
          round: a.round,
          values: a.values.map((v) => Buffer.from(v)),
          proof: Buffer.from(a.proof),
        })
        messages += 2
      }
      if (step.step?.$case !== 'verdict') throw new M2msecError('ERR_INTERNAL', 'the service sent no verdict')
      const v = step.step.value
      const nextChallenge = v.next === undefined ? undefined : fromProto(v.next)
      const verdict = {
        challengeId: v.challengeId,
        rejected: v.rejected,
        proof: new Uint8Array(v.proof),
        ...(nextChallenge === undefined ? {} : { next: nextChallenge }),
      }
      if (!checkVerdict(verdict, challenge, response, authKey)) {
        throw new M2msecError('ERR_MAC_INVALID', 'the verdict proof does not verify')
      }
      next = nextChallenge
      const rejected = new Set(v.rejected)
      return {
        challengeId: challenge.challengeId,
        accepted: answers.filter((_, i) => !rejected.has(i)).map((a) => a.memberId),
        rejected: answers.filter((_, i) => rejected.has(i)).map((a) => a.memberId),
        confirmations: new Map(v.confirmations.map((c) => [c.memberId, new Uint8Array(c.tag)])),
        rounds,
        messages,
      }
    },
  }
}
