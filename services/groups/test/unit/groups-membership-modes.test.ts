/**
 * Static and dynamic membership: who may join, leave, add and remove, and that every such
 * change is the same rekey (new epoch, kept envelopes, a `membership.changed` event naming the
 * caller) as AddMembers/RemoveMembers.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { joinAllowed } from '../../src/domain/access.ts'
import type { Caller } from '../../src/domain/model.ts'
import { admin, evil, gw, m1, rejects, setup, spec, stranger } from './fake-deps.ts'

const car1: Caller = { tenant: 'acme', id: 'car-1', roles: [] }
const car2: Caller = { tenant: 'acme', id: 'car-2', roles: [] }
const bus: Caller = { tenant: 'acme', id: 'bus-9', roles: [] }
const evilCar: Caller = { tenant: 'evil', id: 'car-1', roles: [] }

async function withGroup(membership: 'STATIC' | 'DYNAMIC', joinAllow: string[] = []) {
  const s = setup()
  await s.ops.createGroup(admin, {
    groupId: 'g',
    description: '',
    agent: spec('gw-1'),
    members: [spec('m1')],
    arity: 2,
    membership,
    joinAllow,
  })
  return s
}

describe('join policy patterns', () => {
  test('exact ids and prefix* patterns; empty matches nobody', () => {
    assert.equal(joinAllowed(['car-*', 'bus-7'], 'car-42'), true)
    assert.equal(joinAllowed(['car-*', 'bus-7'], 'bus-7'), true)
    assert.equal(joinAllowed(['car-*', 'bus-7'], 'bus-70'), false)
    assert.equal(joinAllowed(['car-*'], 'scar-1'), false)
    assert.equal(joinAllowed([], 'car-1'), false)
  })

  test('creation refuses bad patterns and a policy on a static group', async () => {
    const { ops } = setup()
    const base = { description: '', agent: spec('gw-1'), members: [], arity: 2 }
    await rejects(
      ops.createGroup(admin, { ...base, groupId: 'a', membership: 'DYNAMIC', joinAllow: ['c*r'] }),
      'ERR_INVALID_ARGUMENT',
    )
    await rejects(
      ops.createGroup(admin, { ...base, groupId: 'b', membership: 'DYNAMIC', joinAllow: [''] }),
      'ERR_INVALID_ARGUMENT',
    )
    await rejects(
      ops.createGroup(admin, { ...base, groupId: 'c', membership: 'STATIC', joinAllow: ['car-*'] }),
      'ERR_INVALID_ARGUMENT',
    )
    const g = await ops.createGroup(admin, { ...base, groupId: 'd' })
    assert.equal(g.group.membership, 'STATIC')
  })
})

describe('static groups', () => {
  test('refuse self-join, self-leave and agent changes with PERMISSION_DENIED', async () => {
    const { ops, events } = await withGroup('STATIC')
    await rejects(ops.joinGroup(car1, { groupId: 'g', credentialKeyId: 'cred-car-1' }), 'ERR_PERMISSION_DENIED')
    await rejects(ops.leaveGroup(m1, { groupId: 'g' }), 'ERR_PERMISSION_DENIED')
    await rejects(ops.addMembers(gw, { groupId: 'g', members: [spec('car-1')] }), 'ERR_PERMISSION_DENIED')
    await rejects(ops.removeMembers(gw, { groupId: 'g', memberIds: ['m1'] }), 'ERR_PERMISSION_DENIED')
    const g = await ops.getGroup(admin, 'g')
    assert.equal(g.epoch, 1)
    assert.deepEqual(g.members, ['m1'])
    assert.equal(events.filter((e) => e.type === 'membership.changed').length, 1)
  })
})

describe('dynamic groups', () => {
  test('an allowed entity joins and leaves by itself; each is one rekey with an audited event', async () => {
    const { ops, events } = await withGroup('DYNAMIC', ['car-*'])
    const joined = await ops.joinGroup(car1, { groupId: 'g', credentialKeyId: 'cred-car-1' })
    assert.equal(joined.group.epoch, 2)
    assert.deepEqual(joined.rekey.joined, ['car-1'])
    assert.deepEqual(joined.group.members, ['m1', 'car-1'])
    assert.equal((await ops.getRekeyEnvelopes(gw, { groupId: 'g', epoch: 2 })).envelopes.length, 1)
    assert.equal((await ops.getGroup(car1, 'g')).epoch, 2, 'the new member sees the group')
    await rejects(ops.joinGroup(car1, { groupId: 'g', credentialKeyId: 'cred-car-1' }), 'ERR_ALREADY_EXISTS')

    const left = await ops.leaveGroup(car1, { groupId: 'g' })
    assert.equal(left.group.epoch, 3)
    assert.deepEqual(left.rekey.left, ['car-1'])
    assert.deepEqual(left.group.members, ['m1'])
    await rejects(ops.getGroup(car1, 'g'), 'ERR_NOT_FOUND')
    await rejects(ops.leaveGroup(car1, { groupId: 'g' }), 'ERR_NOT_FOUND')

    const changes = events.filter((e) => e.type === 'membership.changed')
    assert.deepEqual(
      changes.map((e) => [e.epoch, e.actor, e.via, e.joined, e.left]),
      [
        [1, 'ops', 'manage', ['m1'], []],
        [2, 'car-1', 'join', ['car-1'], []],
        [3, 'car-1', 'leave', [], ['car-1']],
      ],
    )
  })

  test('an entity the policy does not allow is refused; without a credential it needs authn', async () => {
    const { ops } = await withGroup('DYNAMIC', ['car-*'])
    await rejects(ops.joinGroup(bus, { groupId: 'g', credentialKeyId: 'cred-bus-9' }), 'ERR_PERMISSION_DENIED')
    await rejects(ops.joinGroup(car2, { groupId: 'g' }), 'ERR_FAILED_PRECONDITION')
    await rejects(ops.joinGroup(gw, { groupId: 'g', credentialKeyId: 'x' }), 'ERR_PERMISSION_DENIED')
    assert.equal((await ops.getGroup(admin, 'g')).epoch, 1)
  })

  test('an empty join policy lets nobody join', async () => {
    const { ops } = await withGroup('DYNAMIC')
    await rejects(ops.joinGroup(car1, { groupId: 'g', credentialKeyId: 'cred-car-1' }), 'ERR_PERMISSION_DENIED')
  })

  test('the agent adds and removes members; members and strangers cannot', async () => {
    const { ops, events } = await withGroup('DYNAMIC', ['car-*'])
    const added = await ops.addMembers(gw, { groupId: 'g', members: [spec('car-1'), spec('bus-9')] })
    assert.deepEqual(added.group.members, ['m1', 'car-1', 'bus-9'])
    const removed = await ops.removeMembers(gw, { groupId: 'g', memberIds: ['car-1'] })
    assert.equal(removed.group.epoch, 3)
    assert.deepEqual(removed.group.members, ['m1', 'bus-9'])
    const last = events.at(-1)
    assert.ok(last?.type === 'membership.changed' && last.actor === 'gw-1' && last.via === 'manage')

    await rejects(ops.removeMembers(m1, { groupId: 'g', memberIds: ['bus-9'] }), 'ERR_PERMISSION_DENIED')
    await rejects(ops.addMembers(m1, { groupId: 'g', members: [spec('car-3')] }), 'ERR_PERMISSION_DENIED')
    await rejects(ops.removeMembers(stranger, { groupId: 'g', memberIds: ['bus-9'] }), 'ERR_NOT_FOUND')
    await rejects(ops.leaveGroup(stranger, { groupId: 'g' }), 'ERR_NOT_FOUND')
    await rejects(ops.leaveGroup(gw, { groupId: 'g' }), 'ERR_NOT_FOUND')
    assert.equal((await ops.getGroup(admin, 'g')).epoch, 3)
  })

  test("another tenant's callers get NOT_FOUND for every change", async () => {
    const { ops } = await withGroup('DYNAMIC', ['car-*'])
    await rejects(ops.joinGroup(evilCar, { groupId: 'g', credentialKeyId: 'cred-car-1' }), 'ERR_NOT_FOUND')
    await rejects(ops.leaveGroup({ ...m1, tenant: 'evil' }, { groupId: 'g' }), 'ERR_NOT_FOUND')
    await rejects(ops.addMembers(evil, { groupId: 'g', members: [spec('car-1')] }), 'ERR_NOT_FOUND')
    await rejects(ops.removeMembers({ ...gw, tenant: 'evil' }, { groupId: 'g', memberIds: ['m1'] }), 'ERR_NOT_FOUND')
    await rejects(ops.joinGroup(car1, { groupId: 'nope', credentialKeyId: 'cred-car-1' }), 'ERR_NOT_FOUND')
  })
})
