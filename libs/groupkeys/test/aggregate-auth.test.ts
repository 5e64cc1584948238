/** Group authentication through the agent (docs/groups-protocol.md §6). */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { hkdfSha256 } from '@m2msec/crypto'
import {
  answerChallenge,
  answerSubsetQuery,
  buildAggregate,
  buildVerdict,
  checkVerdict,
  createGroupChallenge,
  deriveGroupSessionKey,
  deriveMemberAuthKey,
  groupSessionKeyDerivation,
  hmacSha256,
  memberMacInput,
  subsetProofInput,
  verifyAggregate,
  type AggregateResponse,
  type GroupChallenge,
  type MemberAnswer,
  type SubsetAnswer,
  type SubsetQuery,
  type VerifyAggregateOptions,
} from '../src/index.ts'
import { credentialOf, seededRandom } from './helpers.ts'

const GID = 'tenant-a/meters'
const AGENT = 'gw-1'
const NOW = 1_750_000_000_000
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

const authKeys = new Map<string, Uint8Array>()
function authKeyOf(id: string): Uint8Array {
  let k = authKeys.get(id)
  if (k === undefined) {
    k = deriveMemberAuthKey(credentialOf(id), GID)
    authKeys.set(id, k)
  }
  return k
}

interface Scenario {
  challenge: GroupChallenge
  answers: MemberAnswer[]
  response: AggregateResponse
  members: string[]
}

/** n members answer; the ones at `forged` indexes do not know their key and send random MACs. */
function scenario(n: number, forged: readonly number[] = [], seed = 'auth'): Scenario {
  const random = seededRandom(seed)
  const challenge = createGroupChallenge({ groupId: GID, random, now: () => NOW })
  const members = Array.from({ length: n }, (_, i) => `meter-${i}`)
  const answers = members.map((m, i) => {
    const a = answerChallenge(challenge, m, authKeyOf(m), random)
    return forged.includes(i) ? { ...a, mac: random(32) } : a
  })
  return { challenge, answers, members, response: buildAggregate(challenge, AGENT, answers, authKeyOf(AGENT)) }
}

/** The server's ports: KMS MACs (counted) and an honest agent link (queries counted). */
function serverPorts(
  s: Scenario,
  agent: (q: SubsetQuery) => SubsetAnswer = (q) =>
    answerSubsetQuery(s.challenge, AGENT, s.answers, q, authKeyOf(AGENT)),
): VerifyAggregateOptions & { kmsCalls: () => number; queries: () => number } {
  let kms = 0
  let queries = 0
  const group = new Set(s.members)
  return {
    macFor: (id, data) => {
      kms++
      return hmacSha256(authKeyOf(id), data)
    },
    querySubsets: (q) => {
      queries++
      return Promise.resolve(agent(q))
    },
    now: () => NOW,
    isMember: (id) => group.has(id),
    kmsCalls: () => kms,
    queries: () => queries,
  }
}

describe('verifyAggregate', () => {
  test('1,000 honest members: 2 messages, n + 1 server MACs, everyone accepted', async () => {
    const s = scenario(1000)
    const ports = serverPorts(s)
    const r = await verifyAggregate(s.challenge, s.response, ports)
    assert.equal(r.accepted.length, 1000)
    assert.deepEqual(r.rejected, [])
    assert.equal(r.rounds, 0)
    assert.equal(r.messages, 2)
    assert.equal(r.macComputations, 1001)
    assert.equal(ports.kmsCalls(), 1001)
    assert.equal(ports.queries(), 0)
    const next = createGroupChallenge({ groupId: GID, random: seededRandom('next'), now: () => NOW })
    const verdict = await buildVerdict(s.challenge, s.response, r, ports.macFor, next)
    assert.deepEqual(verdict.rejected, [])
    assert.equal(verdict.next, next)
    assert.ok(checkVerdict(verdict, s.challenge, s.response, authKeyOf(AGENT)))
  })

  test('one forged MAC among 1,000 is found by bisection and only that member fails', async () => {
    const s = scenario(1000, [537])
    const ports = serverPorts(s)
    const r = await verifyAggregate(s.challenge, s.response, ports)
    assert.deepEqual(r.rejected, ['meter-537'])
    assert.deepEqual(r.rejectedIndexes, [537])
    assert.equal(r.accepted.length, 999)
    assert.ok(!r.accepted.includes('meter-537'))
    assert.equal(r.rounds, Math.ceil(Math.log2(1000)))
    assert.equal(r.messages, 2 + 2 * 10)
    // n member MACs + agent proof + one agent proof per round; no member is MACed twice.
    assert.equal(r.macComputations, 1000 + 1 + 10)
    const verdict = await buildVerdict(s.challenge, s.response, r, ports.macFor)
    assert.deepEqual(verdict.rejected, [537])
    assert.ok(checkVerdict(verdict, s.challenge, s.response, authKeyOf(AGENT)))
    assert.ok(!checkVerdict({ ...verdict, rejected: [] }, s.challenge, s.response, authKeyOf(AGENT)))
    assert.ok(!checkVerdict(verdict, s.challenge, s.response, authKeyOf('someone-else')))
  })

  test('fanout 16 needs ⌈log16 n⌉ rounds; several forged members are all found', async () => {
    const s = scenario(1000, [3, 4, 500, 999], 'multi')
    const r16 = await verifyAggregate(s.challenge, s.response, { ...serverPorts(s), fanout: 16 })
    assert.deepEqual(r16.rejected, ['meter-3', 'meter-4', 'meter-500', 'meter-999'])
    assert.equal(r16.rounds, 3)
    assert.equal(r16.messages, 8)
    const r2 = await verifyAggregate(s.challenge, s.response, serverPorts(s))
    assert.deepEqual(r2.rejected, r16.rejected)
    assert.ok(r2.rounds <= 10)
  })

  test('a lying agent cannot get a forged member accepted (it can only blame good ones)', async () => {
    const s = scenario(64, [20], 'liar')
    const random = seededRandom('lies')
    const strategies: Record<string, (q: SubsetQuery) => SubsetAnswer> = {
      // Random sub-aggregates.
      random: (q) => {
        const values = q.ranges.map(() => random(32))
        return signedAnswer(s, q, values)
      },
      // Answer truthfully from what it holds (the forged MAC included).
      truthful: (q) => answerSubsetQuery(s.challenge, AGENT, s.answers, q, authKeyOf(AGENT)),
      // Corrupt every value it reports, trying to move the blame elsewhere.
      shift: (q) => {
        const honest = answerSubsetQuery(s.challenge, AGENT, s.answers, q, authKeyOf(AGENT))
        const values = honest.values.map((v) => {
          const w = new Uint8Array(v)
          w[0]! ^= 0xff
          return w
        })
        return signedAnswer(s, q, values)
      },
    }
    for (const [name, agent] of Object.entries(strategies)) {
      const r = await verifyAggregate(s.challenge, s.response, serverPorts(s, agent))
      assert.ok(r.rejected.includes('meter-20'), name)
      assert.ok(!r.accepted.includes('meter-20'), name)
    }
  })

  test('bad agent proofs: ERR_MAC_INVALID, and nothing else is computed for message 2', async () => {
    const s = scenario(50)
    const forgedAgent = buildAggregate(s.challenge, AGENT, s.answers, authKeyOf('not-the-agent'))
    const ports = serverPorts(s)
    await assert.rejects(verifyAggregate(s.challenge, forgedAgent, ports), { code: 'ERR_MAC_INVALID' })
    assert.equal(ports.kmsCalls(), 1)
    // A subset answer must carry the agent's proof too.
    const bad = scenario(50, [7], 'bad-sub')
    const unsigned = (q: SubsetQuery): SubsetAnswer => ({
      ...answerSubsetQuery(bad.challenge, AGENT, bad.answers, q, authKeyOf(AGENT)),
      proof: new Uint8Array(32),
    })
    await assert.rejects(verifyAggregate(bad.challenge, bad.response, serverPorts(bad, unsigned)), {
      code: 'ERR_MAC_INVALID',
    })
    const mismatched = (q: SubsetQuery): SubsetAnswer => ({
      ...answerSubsetQuery(bad.challenge, AGENT, bad.answers, q, authKeyOf(AGENT)),
      values: [],
    })
    await assert.rejects(verifyAggregate(bad.challenge, bad.response, serverPorts(bad, mismatched)), {
      code: 'ERR_INVALID_ARGUMENT',
    })
  })

  test('malformed, replayed and cancelling responses are refused before any MAC', async () => {
    const s = scenario(10)
    const ports = serverPorts(s)
    const agentKey = authKeyOf(AGENT)
    const forgedTwice = [...s.answers, s.answers[3]!] // same MAC twice would XOR away
    const cases: [string, AggregateResponse, string, Partial<VerifyAggregateOptions>?][] = [
      ['duplicate member', buildAggregate(s.challenge, AGENT, forgedTwice, agentKey), 'ERR_INVALID_ARGUMENT'],
      ['non-member', s.response, 'ERR_INVALID_ARGUMENT', { isMember: (id) => id !== 'meter-4' }],
      ['other challenge', { ...s.response, challengeId: 'x' }, 'ERR_INVALID_ARGUMENT'],
      ['other group', { ...s.response, groupId: 'other' }, 'ERR_INVALID_ARGUMENT'],
      ['empty', buildAggregate(s.challenge, AGENT, [], agentKey), 'ERR_INVALID_ARGUMENT'],
      [
        'short nonce',
        buildAggregate(s.challenge, AGENT, [{ ...s.answers[0]!, nonce: new Uint8Array(4) }], agentKey),
        'ERR_INVALID_ARGUMENT',
      ],
      ['short aggregate', { ...s.response, aggregate: new Uint8Array(8) }, 'ERR_INVALID_ARGUMENT'],
      ['too many', s.response, 'ERR_INVALID_ARGUMENT', { maxMembers: 5 }],
      ['expired', s.response, 'ERR_REPLAY', { now: () => s.challenge.expiresAt }],
      ['fanout', s.response, 'ERR_INVALID_ARGUMENT', { fanout: 1 }],
    ]
    for (const [name, response, code, over] of cases) {
      await assert.rejects(verifyAggregate(s.challenge, response, { ...ports, ...over }), { code }, name)
    }
    assert.equal(ports.kmsCalls(), 0)
  })
})

describe('session keys and vectors', () => {
  const V = JSON.parse(readFileSync(new URL('./vectors/groups-v1.json', import.meta.url), 'utf8')) as {
    credentialHex: string
    groupId: string
    memberAuthKeyHex: string
    groupAuth: { challengeHex: string; memberId: string; nonceHex: string; macHex: string; sessionKeyHex: string }
  }
  const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'))
  const ch: GroupChallenge = {
    challengeId: 'c1',
    groupId: V.groupId,
    challenge: bytes(V.groupAuth.challengeHex),
    expiresAt: 0,
  }

  test('pinned vectors: auth key, member MAC, session key', () => {
    const authKey = deriveMemberAuthKey(bytes(V.credentialHex), V.groupId)
    assert.equal(hex(authKey), V.memberAuthKeyHex)
    const nonce = bytes(V.groupAuth.nonceHex)
    assert.equal(hex(hmacSha256(authKey, memberMacInput(ch, V.groupAuth.memberId, nonce))), V.groupAuth.macHex)
    assert.equal(hex(deriveGroupSessionKey(authKey, ch, V.groupAuth.memberId, nonce)), V.groupAuth.sessionKeyHex)
  })

  test('member and KMS derive the same session key; it differs per member and per challenge', () => {
    const s = scenario(3)
    const [a, b] = s.answers
    const memberSide = deriveGroupSessionKey(authKeyOf(a!.memberId), s.challenge, a!.memberId, a!.nonce)
    const d = groupSessionKeyDerivation(s.challenge, a!.memberId, a!.nonce)
    const kmsSide = hkdfSha256(authKeyOf(a!.memberId), d.salt, d.info, d.length)
    assert.equal(hex(memberSide), hex(kmsSide))
    assert.notEqual(
      hex(deriveGroupSessionKey(authKeyOf(b!.memberId), s.challenge, b!.memberId, b!.nonce)),
      hex(memberSide),
    )
    const other = scenario(3, [], 'other-challenge')
    assert.notEqual(
      hex(deriveGroupSessionKey(authKeyOf(a!.memberId), other.challenge, a!.memberId, a!.nonce)),
      hex(memberSide),
    )
    // Everything the agent holds (its own key, the MACs, challenge, ids, nonces) does not give it.
    const agentGuess = hkdfSha256(authKeyOf(AGENT), d.salt, d.info, 32)
    const macGuess = hkdfSha256(a!.mac, d.salt, d.info, 32)
    assert.notEqual(hex(agentGuess), hex(memberSide))
    assert.notEqual(hex(macGuess), hex(memberSide))
  })
})

/** The agent signs whatever it claims: lies are authenticated lies. */
function signedAnswer(s: Scenario, q: SubsetQuery, values: Uint8Array[]): SubsetAnswer {
  const proof = hmacSha256(authKeyOf(AGENT), subsetProofInput(s.challenge, AGENT, q.round, q.ranges, values))
  return { challengeId: q.challengeId, round: q.round, values, proof }
}
