/**
 * TR-0012 scenario, end to end on real processes (nats-server, the KMS as a child process, the
 * groups service): 1,000 smart meters behind a data aggregation point (DAP, the group agent).
 *
 * The DAP relays the first key distribution (each meter opens its path with its own
 * credential), then authenticates all meters with one challenge and one aggregate. One meter
 * answers with a forged MAC: bisection finds exactly that meter (10 rounds), every other meter
 * is accepted and confirms its session key. The DAP can open no envelope, and nothing it
 * receives contains the group key or a meter's session key. The next authentication uses the
 * challenge the verdict carried (2 messages), and the used challenge cannot be answered again.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createMemberKeyRing, type MemberAnswer } from '@m2msec/groupkeys'
import { CreateGroupRequest } from '@m2msec/proto/groups/v1'
import { fromGrpcError } from '@m2msec/runtime'
import {
  createGroupAgent,
  createGroupMember,
  envelopesForMember,
  memberWrapKey,
  type GroupAgent,
  type GroupMember,
  type GroupsApi,
} from '@m2msec/sdk/groups'
import { startGroupsPlatform, type Credential, type GroupsPlatform } from './groups-platform.ts'

const GROUP = 'meters-district-7'
const DAP = 'dap-7'
const N = 1000
const FORGER = 613

describe('groups e2e: smart meters behind a data aggregation point', () => {
  let platform: GroupsPlatform
  let creds: Map<string, Credential>
  let meters: GroupMember[]
  let agent: GroupAgent
  let dapApi: GroupsApi
  const ids = Array.from({ length: N }, (_, i) => `meter-${String(i).padStart(4, '0')}`)

  after(() => platform?.stop())
  before(async () => {
    platform = await startGroupsPlatform()
    creds = await platform.registerCredentials([...ids, DAP])
    dapApi = await platform.apiFor(DAP)
    meters = ids.map((id) =>
      createGroupMember({ groupId: GROUP, memberId: id, credential: creds.get(id)!.bytes, senderKey: () => undefined }),
    )
    agent = createGroupAgent({ groupId: GROUP, agentId: DAP, credential: creds.get(DAP)!.bytes, api: dapApi })
  })

  test('creating the group distributes epoch 1 through the DAP; the DAP opens nothing', async (t) => {
    const started = performance.now()
    const res = await platform.admin.createGroup(
      CreateGroupRequest.fromPartial({
        groupId: GROUP,
        description: 'district 7 meters',
        agent: { memberId: DAP, credentialKeyId: creds.get(DAP)!.keyId },
        members: ids.map((id) => ({ memberId: id, credentialKeyId: creds.get(id)!.keyId })),
      }),
      platform.adminCall(),
    )
    const createMs = performance.now() - started
    assert.equal(res.group?.memberCount, N)
    assert.equal(res.group?.epoch, 1)
    const rekey = await agent.rekeyEnvelopes()
    assert.equal(rekey.length, res.rekey?.envelopeCount)
    t.diagnostic(`create + first distribution of ${N}: ${rekey.length} envelopes, ${createMs.toFixed(0)} ms`)
    let maxPerMeter = 0
    for (const m of meters) {
      const mine = envelopesForMember(rekey, m.memberId)
      maxPerMeter = Math.max(maxPerMeter, mine.length)
      await m.accept(mine)
      assert.equal(m.epoch(), 1, m.memberId)
    }
    assert.ok(maxPerMeter <= 11, `a meter got ${maxPerMeter} envelopes`)
    // The DAP, with its own credential, opens none of them.
    const dapRing = createMemberKeyRing({
      groupId: GROUP,
      memberId: DAP,
      wrapKeyFor: (e) => memberWrapKey(creds.get(DAP)!.bytes, GROUP, e),
    })
    const opened = await dapRing.accept(rekey.map((e) => e.jwe))
    assert.deepEqual(opened, { opened: 0, rejected: 0 })
  })

  test('one aggregate authenticates 1,000 meters; the one forged MAC is found and only it fails', async (t) => {
    let seen: MemberAnswer[] = []
    const started = performance.now()
    const outcome = await agent.authenticate(async (challenge) => {
      seen = meters.map((m, i) => {
        const a = m.answer(challenge)
        return i === FORGER ? { ...a, mac: new Uint8Array(randomBytes(32)) } : a
      })
      return seen
    })
    const ms = performance.now() - started
    t.diagnostic(
      `1 forged of ${N}: ${outcome.rounds} rounds, ${outcome.messages} agent–service messages, ${ms.toFixed(0)} ms`,
    )
    assert.deepEqual(outcome.rejected, [ids[FORGER]])
    assert.equal(outcome.accepted.length, N - 1)
    assert.equal(outcome.rounds, 10)
    assert.equal(outcome.messages, 2 + 2 + 2 * 10)
    // Every accepted meter checks its own confirmation and ends up with a session key.
    const sessionKeys: Uint8Array[] = []
    for (const m of meters) {
      const tag = outcome.confirmations.get(m.memberId)
      if (m.memberId === ids[FORGER]) {
        assert.equal(tag, undefined)
        continue
      }
      const sk = m.confirmSession(outcome.challengeId, tag!)
      assert.ok(sk !== undefined, `${m.memberId} could not confirm its session key`)
      sessionKeys.push(sk)
    }
    // Nothing the DAP saw carries a session key (it lacks the meters' keys to derive them).
    const dapView = JSON.stringify({
      answers: seen.map((a) => [a.memberId, Buffer.from(a.nonce).toString('hex'), Buffer.from(a.mac).toString('hex')]),
      confirmations: [...outcome.confirmations].map(([id, tag]) => [id, Buffer.from(tag).toString('hex')]),
      envelopes: await agent.rekeyEnvelopes(),
    })
    for (const sk of sessionKeys.slice(0, 50)) assert.ok(!dapView.includes(Buffer.from(sk).toString('hex')))
  })

  test('the next authentication uses the verdict’s challenge (2 messages); a used challenge is refused', async () => {
    let challengeId = ''
    const outcome = await agent.authenticate(async (challenge) => {
      challengeId = challenge.challengeId
      return meters.slice(0, 100).map((m) => m.answer(challenge))
    })
    assert.equal(outcome.messages, 2)
    assert.equal(outcome.rounds, 0)
    assert.equal(outcome.accepted.length, 100)
    const replay = dapApi.submitAggregate(GROUP, challengeId, {
      agentId: DAP,
      members: [{ memberId: ids[0]!, nonce: Buffer.alloc(16) }],
      aggregate: Buffer.alloc(32),
      proof: Buffer.alloc(32),
    })
    await assert.rejects(replay, (err: unknown) => {
      assert.equal(fromGrpcError(err as never).code, 'ERR_REPLAY')
      return true
    })
  })

  test('a meter reads only its own envelopes; another tenant entity sees no group', async () => {
    const meterApi = await platform.apiFor(ids[1]!)
    const own = await meterApi.getEnvelopes(GROUP)
    assert.equal(own.epoch, 1)
    await assert.rejects(meterApi.getEnvelopes(GROUP, ids[2]!), (err: unknown) => {
      assert.equal(fromGrpcError(err as never).code, 'ERR_PERMISSION_DENIED')
      return true
    })
    const stranger = await platform.apiFor('not-in-the-group')
    await assert.rejects(stranger.getGroup(GROUP), (err: unknown) => {
      assert.equal(fromGrpcError(err as never).code, 'ERR_NOT_FOUND')
      return true
    })
  })
})
