/**
 * Group authentication through the agent (docs/groups-protocol.md §6): the agent asks for a
 * challenge, sends one aggregate of its members' answers, answers subset queries only after a
 * mismatch, and gets a verdict with the next challenge. The KMS does every MAC and derives the
 * session keys; this service keeps the transcript (one KV record per challenge, single use)
 * and hands it to the KMS on every step.
 */
import { base64UrlToBytes, bytesToBase64Url } from '@m2msec/crypto'
import { M2msecError } from '@m2msec/errors'
import { createGroupChallenge } from '@m2msec/groupkeys'
import { loadGroup } from './access.ts'
import type { AuthSession, Caller, ChallengeData, GroupRecord } from './model.ts'
import type { GroupsDeps, Versioned } from './ports.ts'

/** The next step for the agent. */
export type AuthStep =
  | {
      readonly kind: 'query'
      readonly challengeId: string
      readonly round: number
      readonly ranges: readonly (readonly [number, number])[]
    }
  | {
      readonly kind: 'verdict'
      readonly challengeId: string
      readonly rejected: readonly number[]
      readonly rejectedMemberIds: readonly string[]
      readonly next: ChallengeData
      readonly proof: Uint8Array
      readonly confirmations: readonly { readonly memberId: string; readonly tag: Uint8Array }[]
      readonly rounds: number
    }

function replay(reason: string, message: string): M2msecError {
  return new M2msecError('ERR_REPLAY', message, { reason })
}

function newChallenge(deps: GroupsDeps, groupId: string): ChallengeData {
  const c = createGroupChallenge({
    groupId,
    random: (n) => deps.random.bytes(n),
    now: () => deps.clock.now().getTime(),
    ttlMs: deps.settings.challengeTtlMs,
  })
  return { groupId, challengeId: c.challengeId, challenge: bytesToBase64Url(c.challenge), expiresAt: c.expiresAt }
}

function toKmsChallenge(c: ChallengeData) {
  return { challengeId: c.challengeId, challenge: base64UrlToBytes(c.challenge), expiresAt: c.expiresAt }
}

async function issue(deps: GroupsDeps, group: GroupRecord): Promise<ChallengeData> {
  const challenge = newChallenge(deps, group.id)
  await deps.sessions.create({ tenant: group.tenant, groupId: group.id, challenge, state: 'issued', subsetAnswers: [] })
  return challenge
}

/** IssueChallenge (the agent, or an admin): a fresh single-use challenge. */
export async function issueChallenge(deps: GroupsDeps, caller: Caller, groupId: string): Promise<ChallengeData> {
  const { value: group } = await loadGroup(deps, caller, groupId, ['agent', 'admin'])
  if (group.members.length === 0) throw new M2msecError('ERR_FAILED_PRECONDITION', 'the group has no members')
  return issue(deps, group)
}

async function openSession(deps: GroupsDeps, group: GroupRecord, challengeId: string): Promise<Versioned<AuthSession>> {
  const found =
    typeof challengeId === 'string' && challengeId !== ''
      ? await deps.sessions.get(group.tenant, group.id, challengeId)
      : undefined
  if (found === undefined) throw replay('unknown-challenge', 'no such challenge (unknown or expired)')
  if (found.value.challenge.expiresAt <= deps.clock.now().getTime())
    throw replay('challenge-expired', 'the challenge has expired')
  return found
}

/** Runs the KMS on the transcript; on a verdict, closes the session and issues the next challenge. */
async function step(deps: GroupsDeps, group: GroupRecord, session: Versioned<AuthSession>): Promise<AuthStep> {
  const s = session.value
  const answer = s.answer
  const next = s.next
  if (answer === undefined || next === undefined) throw new M2msecError('ERR_INTERNAL', 'session without an answer')
  const members = answer.members.map(([memberId, nonce]) => ({ memberId, nonce: base64UrlToBytes(nonce) }))
  const out = await deps.kms.authenticate(group.tenant, {
    groupId: group.id,
    agent: { memberId: group.agentId, credentialKeyId: group.agentCredentialKeyId },
    challenge: toKmsChallenge(s.challenge),
    next: toKmsChallenge(next),
    answer: {
      agentId: answer.agentId,
      members,
      aggregate: base64UrlToBytes(answer.aggregate),
      proof: base64UrlToBytes(answer.proof),
    },
    subsetAnswers: s.subsetAnswers.map((a) => ({
      round: a.round,
      values: a.values.map(base64UrlToBytes),
      proof: base64UrlToBytes(a.proof),
    })),
    fanout: deps.settings.fanout,
  })
  if (out.kind === 'query')
    return { kind: 'query', challengeId: s.challenge.challengeId, round: out.round, ranges: out.ranges }
  await deps.sessions.update({ ...s, state: 'done' }, session.revision)
  await deps.sessions.create({
    tenant: group.tenant,
    groupId: group.id,
    challenge: next,
    state: 'issued',
    subsetAnswers: [],
  })
  return {
    kind: 'verdict',
    challengeId: s.challenge.challengeId,
    rejected: out.rejected,
    rejectedMemberIds: out.rejected.map((i) => members[i]?.memberId ?? ''),
    next,
    proof: out.proof,
    confirmations: out.confirmations,
    rounds: out.rounds,
  }
}

/** SubmitAggregate (the agent): uses up the challenge, then the first step. */
export async function submitAggregate(
  deps: GroupsDeps,
  caller: Caller,
  req: {
    groupId: string
    challengeId: string
    answer: {
      agentId: string
      members: readonly { memberId: string; nonce: Uint8Array }[]
      aggregate: Uint8Array
      proof: Uint8Array
    }
  },
): Promise<AuthStep> {
  const { value: group } = await loadGroup(deps, caller, req.groupId, ['agent'])
  if (req.answer.agentId !== group.agentId) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'agent_id is not the group agent', { field: 'answer.agent_id' })
  }
  if (req.answer.members.length > deps.settings.maxMembers) {
    throw new M2msecError('ERR_PAYLOAD_TOO_LARGE', 'more members than a group can have', { field: 'answer.members' })
  }
  const session = await openSession(deps, group, req.challengeId)
  if (session.value.state !== 'issued') throw replay('challenge-used', 'the challenge was already answered')
  const used: AuthSession = {
    ...session.value,
    state: 'answering',
    answer: {
      agentId: req.answer.agentId,
      members: req.answer.members.map((m) => [m.memberId, bytesToBase64Url(m.nonce)] as const),
      aggregate: bytesToBase64Url(req.answer.aggregate),
      proof: bytesToBase64Url(req.answer.proof),
    },
    next: newChallenge(deps, group.id),
  }
  let revision: number
  try {
    revision = await deps.sessions.update(used, session.revision)
  } catch (err) {
    // Two answers raced for one challenge: the other one used it.
    if (err instanceof M2msecError && err.code === 'ERR_REVISION_CONFLICT')
      throw replay('challenge-used', 'the challenge was already answered')
    throw err
  }
  return step(deps, group, { value: used, revision })
}

/** SubmitSubsetAnswer (the agent): the answer to the last query, then the next step. */
export async function submitSubsetAnswer(
  deps: GroupsDeps,
  caller: Caller,
  req: {
    groupId: string
    challengeId: string
    answer: { round: number; values: readonly Uint8Array[]; proof: Uint8Array }
  },
): Promise<AuthStep> {
  const { value: group } = await loadGroup(deps, caller, req.groupId, ['agent'])
  const session = await openSession(deps, group, req.challengeId)
  if (session.value.state !== 'answering')
    throw replay('challenge-used', 'no subset query is pending for this challenge')
  if (req.answer.round !== session.value.subsetAnswers.length + 1) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'the answer is not for the pending round', { field: 'answer.round' })
  }
  const updated: AuthSession = {
    ...session.value,
    subsetAnswers: [
      ...session.value.subsetAnswers,
      {
        round: req.answer.round,
        values: req.answer.values.map(bytesToBase64Url),
        proof: bytesToBase64Url(req.answer.proof),
      },
    ],
  }
  const revision = await deps.sessions.update(updated, session.revision)
  return step(deps, group, { value: updated, revision })
}
