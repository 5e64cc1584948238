/**
 * Group authentication through the group agent (TR-0012 §5.2.1; SER-027, SER-028), protocol
 * in docs/groups-protocol.md §6.
 *
 * The server sends one challenge; every member answers with MAC_i under its own key; the
 * agent (gateway) forwards one aggregate: the member ids and nonces, the XOR of all MAC_i,
 * and its own proof. The server recomputes every MAC_i in the KMS (`macFor`) and compares
 * the XOR. When it differs, the server asks the agent for XORs over sub-ranges of the member
 * list and narrows down, round by round, to the members whose MAC is wrong; good members
 * are never asked to answer again. Each accepted member then shares a session key with the
 * server (HKDF of its key and the challenge) that the agent cannot compute.
 *
 * Why XOR is sound here: every MAC_i is a PRF output under a key the agent lacks, so the
 * agent cannot produce the XOR of any set that contains a MAC it does not know; duplicate
 * member ids (whose MACs would cancel) are rejected.
 */
import { createHash, createHmac } from 'node:crypto'
import { bytesToBase64Url, constantTimeEqual, hkdfSha256 } from '@m2msec/crypto'
import { invalidArgument, M2msecError } from '@m2msec/errors'
import { assertId, encodeFields, LABELS } from './encoding.ts'
import type { RandomSource } from './key-ids.ts'

/** Server challenge length (bytes). */
export const CHALLENGE_LENGTH = 32
/** Member nonce length (bytes). */
export const NONCE_LENGTH = 16
/** HMAC-SHA256 output length (bytes). */
export const MAC_LENGTH = 32

const DEFAULT_TTL_MS = 60_000
const DEFAULT_MAX_MEMBERS = 100_000

/** One server challenge to one agent for one group. Single use: the service records its id. */
export interface GroupChallenge {
  /** base64url of 16 random bytes. */
  readonly challengeId: string
  readonly groupId: string
  readonly challenge: Uint8Array
  /** Milliseconds since the epoch (injected clock). */
  readonly expiresAt: number
}

/** A member's answer to a challenge, given to the agent. */
export interface MemberAnswer {
  readonly memberId: string
  readonly nonce: Uint8Array
  readonly mac: Uint8Array
}

/** Message 2 (agent → server). */
export interface AggregateResponse {
  readonly challengeId: string
  readonly groupId: string
  readonly agentId: string
  /** Order matters: sub-range queries and the verdict refer to members by index. */
  readonly members: readonly { readonly memberId: string; readonly nonce: Uint8Array }[]
  /** XOR of every member's MAC. */
  readonly aggregate: Uint8Array
  /** HMAC of the agent's own key over the response ({@link agentProofInput}). */
  readonly proof: Uint8Array
}

/** Server → agent, only after a mismatch: XORs wanted over index ranges [start, end). */
export interface SubsetQuery {
  readonly challengeId: string
  /** 1, 2, … */
  readonly round: number
  readonly ranges: readonly (readonly [number, number])[]
}

/** Agent → server: one XOR per queried range, plus the agent's proof over them. */
export interface SubsetAnswer {
  readonly challengeId: string
  readonly round: number
  readonly values: readonly Uint8Array[]
  readonly proof: Uint8Array
}

/** Last message (server → agent): who failed, the next challenge, the server's proof. */
export interface Verdict {
  readonly challengeId: string
  /** Indexes (into the response's member list) of the members that failed. */
  readonly rejected: readonly number[]
  /** The challenge for the next authentication, so that one costs two messages in total. */
  readonly next?: GroupChallenge
  readonly proof: Uint8Array
}

/** HMAC-SHA256(key, data) as a fresh Uint8Array. */
export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', key).update(data).digest())
}

/**
 * Issues a challenge (message 1, or the `next` of a verdict).
 *
 * @example
 * ```ts
 * const ch = createGroupChallenge({ groupId, random: randomBytes, now: Date.now })
 * ```
 */
export function createGroupChallenge(options: {
  readonly groupId: string
  readonly random: RandomSource
  readonly now: () => number
  readonly ttlMs?: number
}): GroupChallenge {
  assertId(options.groupId, 'groupId')
  const ttl = options.ttlMs ?? DEFAULT_TTL_MS
  if (!Number.isSafeInteger(ttl) || ttl <= 0) throw invalidArgument('ttlMs must be a positive integer')
  const challenge = options.random(CHALLENGE_LENGTH)
  const id = options.random(16)
  if (challenge.length !== CHALLENGE_LENGTH || id.length !== 16) {
    throw new M2msecError('ERR_INTERNAL', 'random source returned the wrong number of bytes')
  }
  return {
    challengeId: bytesToBase64Url(id),
    groupId: options.groupId,
    challenge: new Uint8Array(challenge),
    expiresAt: options.now() + ttl,
  }
}

/**
 * A member's (or agent's) group-authentication key: HKDF-SHA256(IKM = credential, salt =
 * empty, info = fields(label, groupId)). The KMS derives it from the stored credential.
 *
 * @example
 * ```ts
 * const authKey = deriveMemberAuthKey(credential, 'tenant-a/meters')
 * ```
 */
export function deriveMemberAuthKey(credential: Uint8Array, groupId: string): Uint8Array {
  if (!(credential instanceof Uint8Array) || credential.length < 16) {
    throw invalidArgument('credential must be at least 16 bytes', { field: 'credential' })
  }
  assertId(groupId, 'groupId')
  return hkdfSha256(credential, new Uint8Array(0), encodeFields(LABELS.memberAuthKey, groupId), 32)
}

/** The bytes a member MACs: fields(label, challenge, groupId, memberId, nonce). */
export function memberMacInput(challenge: GroupChallenge, memberId: string, nonce: Uint8Array): Uint8Array {
  return encodeFields(LABELS.memberMac, challenge.challenge, challenge.groupId, memberId, nonce)
}

/**
 * A member answers a challenge with a fresh nonce.
 *
 * @example
 * ```ts
 * const answer = answerChallenge(ch, 'meter-7', authKey, randomBytes) // to the agent
 * ```
 */
export function answerChallenge(
  challenge: GroupChallenge,
  memberId: string,
  authKey: Uint8Array,
  random: RandomSource,
): MemberAnswer {
  assertId(memberId, 'memberId')
  const nonce = new Uint8Array(random(NONCE_LENGTH))
  if (nonce.length !== NONCE_LENGTH) throw new M2msecError('ERR_INTERNAL', 'random source returned the wrong length')
  return { memberId, nonce, mac: hmacSha256(authKey, memberMacInput(challenge, memberId, nonce)) }
}

/** SHA-256 over fields(label, id_1, nonce_1, …, id_n, nonce_n): binds the proofs to the list. */
export function membersDigest(members: AggregateResponse['members']): Uint8Array {
  const fields: (string | Uint8Array)[] = [LABELS.membersDigest]
  for (const m of members) fields.push(m.memberId, m.nonce)
  return new Uint8Array(
    createHash('sha256')
      .update(encodeFields(...fields))
      .digest(),
  )
}

/** The bytes of the agent's proof in message 2. */
export function agentProofInput(
  challenge: GroupChallenge,
  agentId: string,
  digest: Uint8Array,
  aggregate: Uint8Array,
): Uint8Array {
  return encodeFields(LABELS.agentProof, challenge.challenge, challenge.groupId, agentId, digest, aggregate)
}

function rangesBytes(ranges: SubsetQuery['ranges']): Uint8Array {
  const out = new Uint8Array(ranges.length * 8)
  const view = new DataView(out.buffer)
  ranges.forEach(([start, end], i) => {
    view.setUint32(i * 8, start)
    view.setUint32(i * 8 + 4, end)
  })
  return out
}

/** The bytes of the agent's proof over a subset answer. */
export function subsetProofInput(
  challenge: GroupChallenge,
  agentId: string,
  round: number,
  ranges: SubsetQuery['ranges'],
  values: readonly Uint8Array[],
): Uint8Array {
  const joined = new Uint8Array(values.length * MAC_LENGTH)
  values.forEach((v, i) => joined.set(v, i * MAC_LENGTH))
  return encodeFields(
    LABELS.agentSubsetProof,
    challenge.challenge,
    challenge.groupId,
    agentId,
    round,
    rangesBytes(ranges),
    joined,
  )
}

function xorInto(acc: Uint8Array, value: Uint8Array): void {
  for (let i = 0; i < acc.length; i++) acc[i]! ^= value[i]!
}

function xorRange(macs: readonly Uint8Array[], start: number, end: number): Uint8Array {
  const acc = new Uint8Array(MAC_LENGTH)
  for (let i = start; i < end; i++) xorInto(acc, macs[i]!)
  return acc
}

/**
 * The agent builds message 2 from the answers it collected (it drops members that did not
 * answer or failed its own local check before calling this).
 *
 * @example
 * ```ts
 * const response = buildAggregate(ch, 'gw-1', answers, agentAuthKey)
 * ```
 */
export function buildAggregate(
  challenge: GroupChallenge,
  agentId: string,
  answers: readonly MemberAnswer[],
  agentAuthKey: Uint8Array,
): AggregateResponse {
  assertId(agentId, 'agentId')
  const members = answers.map((a) => ({ memberId: a.memberId, nonce: a.nonce }))
  const aggregate = xorRange(
    answers.map((a) => a.mac),
    0,
    answers.length,
  )
  const proof = hmacSha256(agentAuthKey, agentProofInput(challenge, agentId, membersDigest(members), aggregate))
  return { challengeId: challenge.challengeId, groupId: challenge.groupId, agentId, members, aggregate, proof }
}

/**
 * The agent answers a subset query from the answers it kept (same order as in message 2).
 *
 * @example
 * ```ts
 * const reply = answerSubsetQuery(ch, 'gw-1', answers, query, agentAuthKey)
 * ```
 */
export function answerSubsetQuery(
  challenge: GroupChallenge,
  agentId: string,
  answers: readonly MemberAnswer[],
  query: SubsetQuery,
  agentAuthKey: Uint8Array,
): SubsetAnswer {
  const macs = answers.map((a) => a.mac)
  for (const [start, end] of query.ranges) {
    if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start < end && end <= macs.length)) {
      throw invalidArgument('subset range is outside the member list', { field: 'ranges' })
    }
  }
  const values = query.ranges.map(([start, end]) => xorRange(macs, start, end))
  const proof = hmacSha256(agentAuthKey, subsetProofInput(challenge, agentId, query.round, query.ranges, values))
  return { challengeId: query.challengeId, round: query.round, values, proof }
}

/** Server-side ports of {@link verifyAggregate}. */
export interface VerifyAggregateOptions {
  /** HMAC-SHA256 under the entity's group-auth key, computed in the KMS. */
  readonly macFor: (entityId: string, data: Uint8Array) => Uint8Array | Promise<Uint8Array>
  /** One round trip to the agent (2 messages); only called after a mismatch. */
  readonly querySubsets: (query: SubsetQuery) => Promise<SubsetAnswer>
  /** Current time in ms (injected clock). */
  readonly now: () => number
  /** Membership of the group at verification time; others make the response invalid. */
  readonly isMember: (memberId: string) => boolean
  /** Parts per suspect range and round: 2 = bisection (default); more = fewer rounds. */
  readonly fanout?: number
  /** Largest member list accepted (default 100,000). */
  readonly maxMembers?: number
}

/** Outcome of {@link verifyAggregate}. */
export interface GroupAuthResult {
  readonly accepted: readonly string[]
  readonly rejected: readonly string[]
  readonly rejectedIndexes: readonly number[]
  /** Subset query rounds (0 when the aggregate matched). */
  readonly rounds: number
  /** Agent–server messages from message 2 to the verdict: 2 + 2·rounds. */
  readonly messages: number
  /** Calls to `macFor` (members, agent proof, one per subset answer). */
  readonly macComputations: number
}

function validateResponse(
  challenge: GroupChallenge,
  response: AggregateResponse,
  options: VerifyAggregateOptions,
): void {
  const max = options.maxMembers ?? DEFAULT_MAX_MEMBERS
  if (response.challengeId !== challenge.challengeId || response.groupId !== challenge.groupId) {
    throw invalidArgument('response does not answer this challenge', { field: 'challengeId' })
  }
  if (options.now() >= challenge.expiresAt) {
    throw new M2msecError('ERR_REPLAY', 'challenge has expired', { reason: 'challenge-expired' })
  }
  assertId(response.agentId, 'agentId')
  if (!Array.isArray(response.members) || response.members.length === 0 || response.members.length > max) {
    throw invalidArgument(`members must list 1..${max} entries`, { field: 'members' })
  }
  if (!(response.aggregate instanceof Uint8Array) || response.aggregate.length !== MAC_LENGTH) {
    throw invalidArgument('aggregate must be 32 bytes', { field: 'aggregate' })
  }
  if (!(response.proof instanceof Uint8Array) || response.proof.length !== MAC_LENGTH) {
    throw invalidArgument('proof must be 32 bytes', { field: 'proof' })
  }
  const seen = new Set<string>()
  for (const m of response.members) {
    assertId(m.memberId, 'members[].memberId')
    // A member listed twice would XOR its MAC away: reject, never deduplicate.
    if (seen.has(m.memberId)) throw invalidArgument('a member is listed twice', { field: 'members' })
    seen.add(m.memberId)
    if (!(m.nonce instanceof Uint8Array) || m.nonce.length !== NONCE_LENGTH) {
      throw invalidArgument('member nonce must be 16 bytes', { field: 'members[].nonce' })
    }
    if (!options.isMember(m.memberId))
      throw invalidArgument('a listed entity is not a group member', { field: 'members' })
  }
}

/** Splits [start, end) into at most `parts` contiguous non-empty ranges of near-equal size. */
function split(start: number, end: number, parts: number): [number, number][] {
  const n = end - start
  const count = Math.min(parts, n)
  const out: [number, number][] = []
  for (let i = 0; i < count; i++) {
    out.push([start + Math.floor((i * n) / count), start + Math.floor(((i + 1) * n) / count)])
  }
  return out
}

/**
 * Verifies message 2. All good: one comparison after n + 1 KMS MACs, no further message.
 * Mismatch: rounds of {@link SubsetQuery} narrow the failing members down (⌈log_fanout n⌉
 * rounds at most). Throws ERR_MAC_INVALID when the agent's own proof fails (nothing is
 * accepted), ERR_REPLAY for an expired challenge, ERR_INVALID_ARGUMENT for a malformed one.
 *
 * @example
 * ```ts
 * const result = await verifyAggregate(ch, response, {
 *   macFor: (id, data) => kms.mac(groupAuthKeyOf(id), data),
 *   querySubsets: (q) => agentLink.request(q),
 *   now: Date.now, isMember: (id) => group.has(id),
 * })
 * ```
 */
export async function verifyAggregate(
  challenge: GroupChallenge,
  response: AggregateResponse,
  options: VerifyAggregateOptions,
): Promise<GroupAuthResult> {
  const fanout = options.fanout ?? 2
  if (!Number.isSafeInteger(fanout) || fanout < 2 || fanout > 256) {
    throw invalidArgument('fanout must be an integer in 2..256', { field: 'fanout' })
  }
  validateResponse(challenge, response, options)
  let macComputations = 0
  const mac = async (entityId: string, data: Uint8Array): Promise<Uint8Array> => {
    macComputations++
    const out = await options.macFor(entityId, data)
    if (!(out instanceof Uint8Array) || out.length !== MAC_LENGTH) {
      throw new M2msecError('ERR_INTERNAL', 'macFor must return 32 bytes')
    }
    return out
  }
  const { members, agentId } = response
  const digest = membersDigest(members)
  const agentExpected = await mac(agentId, agentProofInput(challenge, agentId, digest, response.aggregate))
  if (!constantTimeEqual(agentExpected, response.proof)) {
    throw new M2msecError('ERR_MAC_INVALID', 'agent proof does not verify', { agentId })
  }
  const expected = await Promise.all(
    members.map((m) => mac(m.memberId, memberMacInput(challenge, m.memberId, m.nonce))),
  )

  const rejectedIndexes: number[] = []
  let rounds = 0
  let suspects: { start: number; end: number; value: Uint8Array }[] = []
  if (!constantTimeEqual(xorRange(expected, 0, members.length), response.aggregate)) {
    suspects = [{ start: 0, end: members.length, value: response.aggregate }]
  }
  while (suspects.length > 0) {
    const toSplit = suspects.filter((s) => s.end - s.start > 1)
    for (const s of suspects) if (s.end - s.start === 1) rejectedIndexes.push(s.start)
    if (toSplit.length === 0) break
    rounds++
    const parts = toSplit.map((s) => split(s.start, s.end, fanout))
    const ranges = parts.flatMap((p) => p.slice(0, -1))
    const query: SubsetQuery = { challengeId: challenge.challengeId, round: rounds, ranges }
    const answer = await options.querySubsets(query)
    if (
      answer.challengeId !== query.challengeId ||
      answer.round !== rounds ||
      answer.values.length !== ranges.length ||
      answer.values.some((v) => !(v instanceof Uint8Array) || v.length !== MAC_LENGTH) ||
      !(answer.proof instanceof Uint8Array)
    ) {
      throw invalidArgument('subset answer does not match the query', { field: 'values' })
    }
    const proofExpected = await mac(agentId, subsetProofInput(challenge, agentId, rounds, ranges, answer.values))
    if (!constantTimeEqual(proofExpected, answer.proof)) {
      throw new M2msecError('ERR_MAC_INVALID', 'agent proof over a subset answer does not verify', { agentId })
    }
    const next: typeof suspects = []
    let v = 0
    toSplit.forEach((s, i) => {
      const sParts = parts[i]!
      const last = new Uint8Array(s.value)
      sParts.forEach(([start, end], j) => {
        let value: Uint8Array
        if (j < sParts.length - 1) {
          value = answer.values[v++]!
          xorInto(last, value)
        } else {
          // The last part is implied: the parent's XOR minus the others.
          value = last
        }
        if (!constantTimeEqual(xorRange(expected, start, end), value)) next.push({ start, end, value })
      })
    })
    suspects = next
  }
  rejectedIndexes.sort((a, b) => a - b)
  const bad = new Set(rejectedIndexes)
  return {
    accepted: members.filter((_, i) => !bad.has(i)).map((m) => m.memberId),
    rejected: rejectedIndexes.map((i) => members[i]!.memberId),
    rejectedIndexes,
    rounds,
    messages: 2 + 2 * rounds,
    macComputations,
  }
}

function rejectedBitmap(count: number, rejected: readonly number[]): Uint8Array {
  const out = new Uint8Array(Math.ceil(count / 8))
  for (const i of rejected) out[i >> 3]! |= 0x80 >> (i & 7)
  return out
}

/** The bytes of the server's proof in the verdict. */
export function verdictProofInput(
  challenge: GroupChallenge,
  response: AggregateResponse,
  rejected: readonly number[],
  next: GroupChallenge | undefined,
): Uint8Array {
  return encodeFields(
    LABELS.serverVerdict,
    challenge.challenge,
    challenge.groupId,
    response.agentId,
    membersDigest(response.members),
    rejectedBitmap(response.members.length, rejected),
    next?.challengeId ?? '',
    next?.challenge ?? new Uint8Array(0),
    next?.expiresAt ?? 0,
  )
}

/**
 * Server: the verdict message, proven with the agent's key (one more KMS MAC).
 *
 * @example
 * ```ts
 * const verdict = await buildVerdict(ch, response, result, macFor, createGroupChallenge(...))
 * ```
 */
export async function buildVerdict(
  challenge: GroupChallenge,
  response: AggregateResponse,
  result: GroupAuthResult,
  macFor: VerifyAggregateOptions['macFor'],
  next?: GroupChallenge,
): Promise<Verdict> {
  const proof = await macFor(response.agentId, verdictProofInput(challenge, response, result.rejectedIndexes, next))
  const verdict = { challengeId: challenge.challengeId, rejected: [...result.rejectedIndexes], proof }
  return next === undefined ? verdict : { ...verdict, next }
}

/**
 * Agent: checks the server's proof on a verdict. Returns false when it does not verify.
 *
 * @example
 * ```ts
 * if (!checkVerdict(verdict, ch, response, agentAuthKey)) throw ...
 * ```
 */
export function checkVerdict(
  verdict: Verdict,
  challenge: GroupChallenge,
  response: AggregateResponse,
  agentAuthKey: Uint8Array,
): boolean {
  if (verdict.challengeId !== challenge.challengeId || !(verdict.proof instanceof Uint8Array)) return false
  if (verdict.rejected.some((i) => !Number.isInteger(i) || i < 0 || i >= response.members.length)) return false
  const expected = hmacSha256(agentAuthKey, verdictProofInput(challenge, response, verdict.rejected, verdict.next))
  return constantTimeEqual(expected, verdict.proof)
}

/**
 * HKDF parameters of a member's session key, for a KMS "derive" operation on the member's
 * group-auth key handle: salt = challenge, info = fields(label, groupId, memberId, nonce).
 */
export function groupSessionKeyDerivation(
  challenge: GroupChallenge,
  memberId: string,
  nonce: Uint8Array,
): { salt: Uint8Array; info: Uint8Array; length: 32 } {
  return {
    salt: challenge.challenge,
    info: encodeFields(LABELS.sessionKey, challenge.groupId, memberId, nonce),
    length: 32,
  }
}

/**
 * A member's session key for this authentication (member side, or the KMS with the key):
 * HKDF-SHA256(IKM = group-auth key, {@link groupSessionKeyDerivation}). The agent sees the
 * challenge, id and nonce but not the key, so it cannot compute it.
 *
 * @example
 * ```ts
 * const sk = deriveGroupSessionKey(authKey, ch, 'meter-7', answer.nonce)
 * ```
 */
export function deriveGroupSessionKey(
  authKey: Uint8Array,
  challenge: GroupChallenge,
  memberId: string,
  nonce: Uint8Array,
): Uint8Array {
  const { salt, info, length } = groupSessionKeyDerivation(challenge, memberId, nonce)
  return hkdfSha256(authKey, salt, info, length)
}
