/**
 * The groups domain on in-memory stores and a scripted fake KMS: who may do what, bad input
 * that changes nothing, retries when the KMS epoch moved, kept rekeys, single-use challenges,
 * broadcast sequence numbers and events. The cryptography itself is tested in the KMS
 * (services/kms/test/group-keys) and end to end (test/e2e/groups-*.test.ts).
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { admin, evil, gw, m1, rejects, setup, spec, stranger } from './fake-deps.ts'

describe('groups domain', () => {
  test('create, membership rekeys, kept rekeys, events', async () => {
    const { ops, events, rekeys } = setup()
    const created = await ops.createGroup(admin, {
      groupId: 'g',
      description: '',
      agent: spec('gw-1'),
      members: [spec('m1'), spec('m2')],
      arity: 0,
    })
    assert.equal(created.group.epoch, 1)
    assert.deepEqual(created.rekey?.joined, ['m1', 'm2'])
    await ops.addMembers(admin, { groupId: 'g', members: [spec('m3')] })
    const r = await ops.removeMembers(admin, { groupId: 'g', memberIds: ['m1'] })
    assert.deepEqual(r.group.members, ['m2', 'm3'])
    assert.equal(r.group.epoch, 3)
    assert.deepEqual(
      r.group.rekeys.map((k) => k.epoch),
      [2, 3],
    )
    assert.ok(!rekeys.has('acme/g/1/0'), 'the oldest rekey was dropped')
    assert.equal((await ops.getRekeyEnvelopes(gw, { groupId: 'g', epoch: 0 })).envelopes.length, 1)
    await rejects(ops.getRekeyEnvelopes(gw, { groupId: 'g', epoch: 1 }), 'ERR_NOT_FOUND')
    assert.deepEqual(
      events.map((e) => e.type),
      ['group.created', 'membership.changed', 'membership.changed', 'membership.changed'],
    )
  })

  test('authorization and bad input', async () => {
    const { ops } = setup()
    await ops.createGroup(admin, {
      groupId: 'g',
      description: '',
      agent: spec('gw-1'),
      members: [spec('m1')],
      arity: 2,
    })
    await rejects(
      ops.createGroup(m1, { groupId: 'h', description: '', agent: spec('gw-1'), members: [], arity: 2 }),
      'ERR_PERMISSION_DENIED',
    )
    await rejects(
      ops.createGroup(admin, { groupId: 'g', description: '', agent: spec('gw-1'), members: [], arity: 2 }),
      'ERR_ALREADY_EXISTS',
    )
    await rejects(
      ops.createGroup(admin, { groupId: 'bad id', description: '', agent: spec('gw-1'), members: [], arity: 2 }),
      'ERR_INVALID_ARGUMENT',
    )
    await rejects(
      ops.createGroup(admin, { groupId: 'h', description: '', agent: spec('gw-1'), members: [spec('gw-1')], arity: 2 }),
      'ERR_INVALID_ARGUMENT',
    )
    await rejects(ops.addMembers(admin, { groupId: 'g', members: [spec('m1')] }), 'ERR_ALREADY_EXISTS')
    await rejects(ops.addMembers(admin, { groupId: 'g', members: [spec('a'), spec('a')] }), 'ERR_INVALID_ARGUMENT')
    await rejects(ops.addMembers(admin, { groupId: 'g', members: [{ memberId: 'nocred' }] }), 'ERR_FAILED_PRECONDITION')
    await rejects(
      ops.addMembers(admin, { groupId: 'g', members: ['a', 'b', 'c', 'd', 'e'].map(spec) }),
      'ERR_FAILED_PRECONDITION',
    )
    await rejects(ops.removeMembers(admin, { groupId: 'g', memberIds: ['zz'] }), 'ERR_NOT_FOUND')
    await rejects(ops.addMembers(gw, { groupId: 'g', members: [spec('q')] }), 'ERR_PERMISSION_DENIED')
    await rejects(ops.getGroup(stranger, 'g'), 'ERR_NOT_FOUND')
    await rejects(ops.getGroup(evil, 'g'), 'ERR_NOT_FOUND')
    await rejects(ops.getEnvelopes(m1, { groupId: 'g', memberId: 'other' }), 'ERR_PERMISSION_DENIED')
    assert.equal((await ops.getEnvelopes(m1, { groupId: 'g', memberId: '' })).epoch, 1)
    await rejects(ops.sendBroadcast(gw, { groupId: 'g', payload: new Uint8Array(1) }), 'ERR_PERMISSION_DENIED')
    assert.equal((await ops.getGroup(admin, 'g')).epoch, 1)
  })

  test('a change made against a moved KMS epoch is retried on the fresh record', async () => {
    const { ops } = setup({ conflictOnce: true })
    await ops.createGroup(admin, {
      groupId: 'g',
      description: '',
      agent: spec('gw-1'),
      members: [spec('m1')],
      arity: 2,
    })
    assert.equal((await ops.getGroup(admin, 'g')).epoch, 1)
  })

  test('challenges are single use; the verdict carries the next one; broadcast seq grows', async () => {
    const { ops, authCalls } = setup()
    await ops.createGroup(admin, {
      groupId: 'g',
      description: '',
      agent: spec('gw-1'),
      members: [spec('m1'), spec('m2')],
      arity: 2,
    })
    const ch = await ops.issueChallenge(gw, 'g')
    const answer = {
      agentId: 'gw-1',
      members: [
        { memberId: 'm1', nonce: new Uint8Array(16) },
        { memberId: 'm2', nonce: new Uint8Array(16) },
      ],
      aggregate: new Uint8Array(32),
      proof: new Uint8Array(32),
    }
    await rejects(
      ops.submitAggregate(m1, { groupId: 'g', challengeId: ch.challengeId, answer }),
      'ERR_PERMISSION_DENIED',
    )
    const first = await ops.submitAggregate(gw, { groupId: 'g', challengeId: ch.challengeId, answer })
    assert.equal(first.kind, 'query')
    await rejects(ops.submitAggregate(gw, { groupId: 'g', challengeId: ch.challengeId, answer }), 'ERR_REPLAY')
    await rejects(
      ops.submitSubsetAnswer(gw, {
        groupId: 'g',
        challengeId: ch.challengeId,
        answer: { round: 2, values: [], proof: new Uint8Array(32) },
      }),
      'ERR_INVALID_ARGUMENT',
    )
    const verdict = await ops.submitSubsetAnswer(gw, {
      groupId: 'g',
      challengeId: ch.challengeId,
      answer: { round: 1, values: [new Uint8Array(32)], proof: new Uint8Array(32) },
    })
    assert.equal(verdict.kind, 'verdict')
    assert.ok(verdict.kind === 'verdict' && verdict.rejectedMemberIds[0] === 'm1')
    assert.equal(authCalls.length, 2)
    await rejects(
      ops.submitSubsetAnswer(gw, {
        groupId: 'g',
        challengeId: ch.challengeId,
        answer: { round: 2, values: [], proof: new Uint8Array(32) },
      }),
      'ERR_REPLAY',
    )
    if (verdict.kind !== 'verdict') return
    const again = await ops.submitAggregate(gw, {
      groupId: 'g',
      challengeId: verdict.next.challengeId,
      answer: { ...answer, members: answer.members.slice(0, 1) },
    })
    assert.equal(again.kind, 'verdict')
    await rejects(ops.submitAggregate(gw, { groupId: 'g', challengeId: 'nope', answer }), 'ERR_REPLAY')
    const b1 = await ops.sendBroadcast(admin, { groupId: 'g', payload: new Uint8Array([1]) })
    const b2 = await ops.sendBroadcast(admin, { groupId: 'g', payload: new Uint8Array([2]) })
    assert.deepEqual([b1.seq, b2.seq], [0, 1])
    await rejects(ops.sendBroadcast(admin, { groupId: 'g', payload: new Uint8Array(40_000) }), 'ERR_PAYLOAD_TOO_LARGE')
  })
})
